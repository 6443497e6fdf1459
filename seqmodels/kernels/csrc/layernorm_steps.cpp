// The time walk of the LayerNorm LSTM, compiled (seqmodels/kernels/layernorm.py holds the maths
// and the whole-sequence work; seqmodels/cells/layernorm.py the definition).
//
//   forward   r_t = h_{t-1} W_hh^T                      one ATen GEMM per step
//             x_t = (r_t - mean(r_t)) * rstd_t         LN_hh's normalised input, saved
//             z_t = a_t + g_hh * x_t                   a_t = LN_ih(W_ih x_t) + b, from Python
//             i, f, o = sigmoid(z_t), g = tanh(z_t)    torch's gate order
//             c_t = f c_{t-1} + i g;  y_t = LN_c(c_t);  h_t = o tanh(y_t)
//   with recurrent dropout r_t reads m * h_{t-1}; with zoneout h_t = d_t h_{t-1} + (1 - d_t) h~_t
//   backward  the same step differentiated, with dL/dh_{t-1} = W_hh^T dL/dr_t (one GEMM per
//             step) and dL/dW_hh = sum_t dL/dr_t^T h_{t-1} added every `chunk` steps as one
//             GEMM, so no (T, N, 4H) buffer of dL/dr is ever held.
//
// A step's element-wise work is one pass over each row, the rows split over torch's threads;
// each thread keeps its own sums of the parameter gradients.
// The gates are not saved: backward recomputes them from a_t and x_t (four passes over 4H
// values, against a (T, N, 4H) buffer more of training memory).
//
// Layouts (contiguous, time-major): a, xhat (T, N, 4H); out, cells (T, N, H); stats (T, N, 3)
// holds each row's rstd of r_t, mean and rstd of c_t. `last` (N,) int64: each sequence's last
// processed step, where dL/dh_n and dL/dc_n enter (steps after it are padding: zero deltas).
// `reverse` walks time from the last step.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "loops_common.h"

namespace {

// The reductions are `omp simd` loops: allowed to reassociate, they vectorise; written plainly,
// each is one chain of dependent adds, and those chains cost more than the rest of a row.
template <typename T>
inline T row_mean(const T* __restrict x, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += x[j];
  return s / T(n);
}

// 1 / sqrt(var + eps) of x (n values) about `mean`: LayerNorm's biased variance.
template <typename T>
inline T row_rstd(const T* __restrict x, int64_t n, T mean, T eps) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += (x[j] - mean) * (x[j] - mean);
  return T(1) / std::sqrt(s / T(n) + eps);
}

// LayerNorm's input gradient from the gradient of its normalised output `dx` (in place) and
// that output `x`: dx <- rstd * (dx - mean(dx) - x * mean(dx * x)).
template <typename T>
inline void layer_norm_back(T* __restrict dx, const T* __restrict x, int64_t n, T rstd) {
  T m1 = 0, m2 = 0;
#pragma omp simd reduction(+ : m1, m2)
  for (int64_t j = 0; j < n; ++j) m1 += dx[j], m2 += dx[j] * x[j];
  m1 /= T(n), m2 /= T(n);
  for (int64_t j = 0; j < n; ++j) dx[j] = rstd * (dx[j] - m1 - x[j] * m2);
}

// The gates (i, f, g, o) of a row from a_t and x_t: act = (σ, σ, tanh, σ)(a + g_hh * x).
template <typename T>
inline void gates_row(int64_t H, const T* __restrict a, const T* __restrict x,
                      const T* __restrict g_hh, T* __restrict act) {
  for (int64_t j = 0; j < 4 * H; ++j) act[j] = a[j] + g_hh[j] * x[j];
  for (int64_t j = 0; j < 2 * H; ++j) act[j] = Act<T>::sigmoid(act[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) act[j] = Act<T>::tanh(act[j]);
  for (int64_t j = 3 * H; j < 4 * H; ++j) act[j] = Act<T>::sigmoid(act[j]);
}

// One row of a forward step. x: r_t in, x_t out; st: (rstd of r_t, mean of c_t, rstd of c_t).
template <typename T>
inline void forward_row(int64_t H, T eps, const T* __restrict a, T* __restrict x,
                        const T* __restrict g_hh, const T* __restrict g_c,
                        const T* __restrict b_c, const T* __restrict cp, T* __restrict c,
                        T* __restrict h, T* __restrict st, T* __restrict act) {
  const T mean = row_mean(x, 4 * H);
  const T rstd = row_rstd(x, 4 * H, mean, eps);
  for (int64_t j = 0; j < 4 * H; ++j) x[j] = (x[j] - mean) * rstd;
  gates_row(H, a, x, g_hh, act);
  const T *__restrict i = act, *__restrict f = act + H, *__restrict g = act + 2 * H,
          *__restrict o = act + 3 * H;
  for (int64_t j = 0; j < H; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
  const T mean_c = row_mean(c, H);
  const T rstd_c = row_rstd(c, H, mean_c, eps);
  for (int64_t j = 0; j < H; ++j)
    h[j] = o[j] * Act<T>::tanh((c[j] - mean_c) * rstd_c * g_c[j] + b_c[j]);
  st[0] = rstd, st[1] = mean_c, st[2] = rstd_c;
}

// One row of a backward step. dh: the total dL/dh_t; dc: dL/dc_t from the later step in,
// dL/dc_{t-1} out; da: dL/da_t out, written last (it may be x's own row: x is read before);
// dr: dL/dr_t out; sums: dL/dg_hh (4H), dL/dg_c, dL/db_c (H each), added to. scratch: 10H.
template <typename T>
inline void backward_row(int64_t H, const T* __restrict a, const T* x, const T* __restrict g_hh,
                         const T* __restrict g_c, const T* __restrict b_c,
                         const T* __restrict cp, const T* __restrict c,
                         const T* __restrict st, const T* __restrict dh, T* __restrict dc,
                         T* da, T* __restrict dr, T* __restrict sum_g_hh,
                         T* __restrict sum_g_c, T* __restrict sum_b_c, T* __restrict scratch) {
  T* __restrict dz = scratch + 4 * H;
  T* __restrict chat = scratch + 8 * H;
  T* __restrict dy = chat + H;
  T* __restrict act = scratch;
  gates_row(H, a, x, g_hh, act);
  const T *__restrict i = act, *__restrict f = act + H, *__restrict g = act + 2 * H,
          *__restrict o = act + 3 * H;
  const T rstd = st[0], mean_c = st[1], rstd_c = st[2];
  for (int64_t j = 0; j < H; ++j) chat[j] = (c[j] - mean_c) * rstd_c;
  T *__restrict dzi = dz, *__restrict dzf = dz + H, *__restrict dzg = dz + 2 * H,
    *__restrict dzo = dz + 3 * H;
  for (int64_t j = 0; j < H; ++j) {
    const T ty = Act<T>::tanh(chat[j] * g_c[j] + b_c[j]);
    dzo[j] = dh[j] * ty * o[j] * (T(1) - o[j]);
    dy[j] = dh[j] * o[j] * (T(1) - ty * ty);
  }
  for (int64_t j = 0; j < H; ++j) sum_g_c[j] += dy[j] * chat[j];
  for (int64_t j = 0; j < H; ++j) sum_b_c[j] += dy[j];
  for (int64_t j = 0; j < H; ++j) dy[j] *= g_c[j];  // dL/d(LN_c's normalised c)
  layer_norm_back(dy, chat, H, rstd_c);
  for (int64_t j = 0; j < H; ++j) dc[j] += dy[j];  // dL/dc_t in full
  for (int64_t j = 0; j < H; ++j) dzi[j] = dc[j] * g[j] * i[j] * (T(1) - i[j]);
  for (int64_t j = 0; j < H; ++j) dzf[j] = dc[j] * cp[j] * f[j] * (T(1) - f[j]);
  for (int64_t j = 0; j < H; ++j) dzg[j] = dc[j] * i[j] * (T(1) - g[j] * g[j]);
  for (int64_t j = 0; j < H; ++j) dc[j] *= f[j];  // dL/dc_{t-1}
  for (int64_t j = 0; j < 4 * H; ++j) sum_g_hh[j] += dz[j] * x[j];  // x, then da, in place
  for (int64_t j = 0; j < 4 * H; ++j) dr[j] = dz[j] * g_hh[j];
  layer_norm_back(dr, x, 4 * H, rstd);
  for (int64_t j = 0; j < 4 * H; ++j) da[j] = dz[j];
}

// f(n0, n1, thread) over rows [0, N): a step's element-wise pass, split over torch's threads
// (static blocks, so each row's thread is the same on every run) when there are rows enough.

template <typename F>
void over_rows(int64_t N, const F& f) {
  if (N < 2 * kMinRowsPerThread || at::get_num_threads() == 1) {
    f(0, N, 0);
    return;
  }
  at::parallel_for(0, N, kMinRowsPerThread,
                   [&](int64_t n0, int64_t n1) { f(n0, n1, at::get_thread_num()); });
}

// Zoneout's d at the k-th processed step: `keep` (T, N, H) in processing order in training,
// the 0-d p in eval.
at::Tensor keep_at(const at::Tensor& keep, int64_t k) {
  return keep.dim() == 0 ? keep : keep.select(0, k);
}

// -> (out, cells, xhat, stats). mask (N, H): recurrent dropout's, scaled; keep: zoneout's d
// (keep_at).
std::vector<at::Tensor> lnlstm_forward(at::Tensor a, at::Tensor h0, at::Tensor c0,
                                       at::Tensor w_hh_t, at::Tensor g_hh, at::Tensor g_c,
                                       at::Tensor b_c, double eps, bool reverse,
                                       std::optional<at::Tensor> mask_,
                                       std::optional<at::Tensor> keep_) {
  for (auto* t : {&a, &h0, &c0, &w_hh_t, &g_hh, &g_c, &b_c}) check(*t, "lnlstm_forward argument");
  const at::Tensor mask = mask_.value_or(at::Tensor()), keep = keep_.value_or(at::Tensor());
  at::Tensor masked = mask.defined() ? at::empty_like(h0) : at::Tensor();  // m * h_{t-1}
  const int64_t steps = a.size(0), N = a.size(1), H = a.size(2) / 4;
  at::Tensor out = at::empty({steps, N, H}, a.options());
  at::Tensor cells = at::empty({steps, N, H}, a.options());
  at::Tensor xhat = at::empty({steps, N, 4 * H}, a.options());
  at::Tensor stats = at::empty({steps, N, 3}, a.options());
  const std::vector<int64_t> order = processing_order(steps, reverse);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lnlstm_forward", [&] {
    std::vector<scalar_t> act(at::get_num_threads() * 4 * H);
    const scalar_t *gh = g_hh.data_ptr<scalar_t>(), *gc = g_c.data_ptr<scalar_t>(),
                   *bc = b_c.data_ptr<scalar_t>();
    at::Tensor h_prev = h0, c_prev = c0;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = order[k];
      at::Tensor x_t = xhat.select(0, t);
      if (mask.defined()) at::mul_out(masked, h_prev, mask);
      at::mm_out(x_t, mask.defined() ? masked : h_prev, w_hh_t);  // r_t = (m h_{t-1}) W_hh^T
      const scalar_t* at_ = a.data_ptr<scalar_t>() + t * N * 4 * H;
      scalar_t* xt = x_t.data_ptr<scalar_t>();
      const scalar_t* cp = c_prev.data_ptr<scalar_t>();
      scalar_t* ct = cells.data_ptr<scalar_t>() + t * N * H;
      scalar_t* ht = out.data_ptr<scalar_t>() + t * N * H;
      scalar_t* st = stats.data_ptr<scalar_t>() + t * N * 3;
      over_rows(N, [&](int64_t n0, int64_t n1, int64_t thread) {
        scalar_t* scratch = act.data() + thread * 4 * H;
        for (int64_t n = n0; n < n1; ++n)
          forward_row<scalar_t>(H, scalar_t(eps), at_ + n * 4 * H, xt + n * 4 * H, gh, gc, bc,
                                cp + n * H, ct + n * H, ht + n * H, st + n * 3, scratch);
      });
      // zoneout: h_t = d_t h_{t-1} + (1 - d_t) h~_t
      if (keep.defined()) out.select(0, t).lerp_(h_prev, keep_at(keep, k));
      h_prev = out.select(0, t), c_prev = cells.select(0, t);
    }
  });
  return {out, cells, xhat, stats};
}

// -> (grad_a, grad_w_hh, grad_h0, grad_c0, grad_g_hh, grad_g_c, grad_b_c). grad_a (T, N, 4H)
// is filled step by step; it may be xhat itself (each step reads its x rows before writing).
std::vector<at::Tensor> lnlstm_backward(at::Tensor a, at::Tensor xhat, at::Tensor stats,
                                        at::Tensor out, at::Tensor cells, at::Tensor h0,
                                        at::Tensor c0, at::Tensor w_hh, at::Tensor g_hh,
                                        at::Tensor g_c, at::Tensor b_c,
                                        std::optional<at::Tensor> grad_out_,
                                        std::optional<at::Tensor> grad_h_n_,
                                        std::optional<at::Tensor> grad_c_n_, at::Tensor last,
                                        bool reverse, int64_t chunk, at::Tensor grad_a,
                                        std::optional<at::Tensor> mask_,
                                        std::optional<at::Tensor> keep_) {
  for (auto* t : {&a, &xhat, &stats, &out, &cells, &h0, &c0, &w_hh, &g_hh, &g_c, &b_c})
    check(*t, "lnlstm_backward argument");
  const at::Tensor mask = mask_.value_or(at::Tensor()), keep = keep_.value_or(at::Tensor());
  // zoneout's direct path: dL/dh_{t-1} += d_t dL/dh_t, from the step walked before
  at::Tensor zoned = keep.defined() ? at::zeros_like(h0) : at::Tensor();
  const at::Tensor grad_out = grad_out_.value_or(at::Tensor());
  const at::Tensor grad_h_n = grad_h_n_.value_or(at::Tensor());
  const at::Tensor grad_c_n = grad_c_n_.value_or(at::Tensor());
  for (const auto* t : {&grad_h_n, &grad_c_n})
    if (t->defined()) check(*t, "lnlstm_backward gradient");
  // grad_out may have any strides: the gradient of output.sum() is one value, expanded.
  TORCH_CHECK(!grad_out.defined() || grad_out.scalar_type() == a.scalar_type(),
              "grad_out must have a's dtype");
  TORCH_CHECK(last.scalar_type() == at::kLong && last.is_contiguous(), "last must be int64");
  TORCH_CHECK(chunk >= 2, "chunk must be at least 2 steps");
  const int64_t steps = a.size(0), N = a.size(1), H = a.size(2) / 4;
  check(grad_a, "grad_a");
  TORCH_CHECK(grad_a.sizes() == a.sizes(), "grad_a must have a's shape");
  at::Tensor grad_w = at::zeros_like(w_hh);
  at::Tensor grad_g_hh = at::zeros_like(g_hh), grad_g_c = at::zeros_like(g_c);
  at::Tensor grad_b_c = at::zeros_like(b_c);
  at::Tensor dh = at::empty_like(h0), dc = at::zeros_like(c0);
  const int64_t k_chunk = std::min(chunk, std::max<int64_t>(steps, 2));
  at::Tensor dr = at::empty({k_chunk, N, 4 * H}, a.options());  // dL/dr of a chunk of steps
  at::Tensor prev = at::empty({k_chunk, N, H}, a.options());    // their h_{t-1}
  const std::vector<int64_t> order = processing_order(steps, reverse);
  const int64_t* lst = last.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lnlstm_backward", [&] {
    using T = scalar_t;
    // Each thread's sums of the parameter gradients (added in thread order at the end, so
    // the same on every run with the same thread count) and its scratch.
    const int64_t threads = at::get_num_threads();
    std::vector<T> per_thread(threads * 16 * H, T(0));
    const T *gh = g_hh.data_ptr<T>(), *gc = g_c.data_ptr<T>(), *bc = b_c.data_ptr<T>();
    // dW_hh += the chunk's dL/dr^T h_{t-1}, over its first `filled` slots.
    auto flush = [&](int64_t filled) {
      at::Tensor d = dr.narrow(0, 0, filled).view({filled * N, 4 * H});
      grad_w.addmm_(d.t(), prev.narrow(0, 0, filled).view({filled * N, H}));
    };
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t t = order[k];
      const int64_t slot = (steps - 1 - k) % k_chunk;
      const at::Tensor h_prev = k == 0 ? h0 : out.select(0, order[k - 1]);
      const at::Tensor c_prev = k == 0 ? c0 : cells.select(0, order[k - 1]);
      if (k == steps - 1) {
        dh.zero_();
      } else {  // W_hh^T dL/dr of the step processed after this one
        const int64_t later = (slot + k_chunk - 1) % k_chunk;
        at::mm_out(dh, dr.select(0, later), w_hh);
        if (mask.defined()) dh.mul_(mask);  // the projection read m h_{t-1}
      }
      T* dhp = dh.data_ptr<T>();
      T* dcp = dc.data_ptr<T>();
      if (grad_out.defined()) {
        const int64_t s0 = grad_out.stride(0), s1 = grad_out.stride(1), s2 = grad_out.stride(2);
        const T* g = grad_out.data_ptr<T>() + t * s0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t j = 0; j < H; ++j) dhp[n * H + j] += g[n * s1 + j * s2];
      }
      for (int64_t n = 0; n < N; ++n) {
        if (lst[n] != t) continue;
        if (grad_h_n.defined())
          for (int64_t j = 0; j < H; ++j) dhp[n * H + j] += grad_h_n.data_ptr<T>()[n * H + j];
        if (grad_c_n.defined())
          for (int64_t j = 0; j < H; ++j) dcp[n * H + j] += grad_c_n.data_ptr<T>()[n * H + j];
      }
      if (keep.defined()) {  // dL/dh_t in full: the kept units pass d_t of it to h_{t-1}
        dh.add_(zoned);
        at::mul_out(zoned, dh, keep_at(keep, k));
        dh.sub_(zoned);  // dL/dh~_t = (1 - d_t) dL/dh_t
      }
      const T* at_ = a.data_ptr<T>() + t * N * 4 * H;
      const T* xt = xhat.data_ptr<T>() + t * N * 4 * H;
      const T* st = stats.data_ptr<T>() + t * N * 3;
      const T* ct = cells.data_ptr<T>() + t * N * H;
      const T* cp = c_prev.data_ptr<T>();
      T* gat = grad_a.data_ptr<T>() + t * N * 4 * H;
      T* drt = dr.data_ptr<T>() + slot * N * 4 * H;
      over_rows(N, [&](int64_t n0, int64_t n1, int64_t thread) {
        T* sums = per_thread.data() + thread * 16 * H;  // (4H g_hh, H g_c, H b_c, 10H scratch)
        for (int64_t n = n0; n < n1; ++n)
          backward_row<T>(H, at_ + n * 4 * H, xt + n * 4 * H, gh, gc, bc, cp + n * H,
                          ct + n * H, st + n * 3, dhp + n * H, dcp + n * H, gat + n * 4 * H,
                          drt + n * 4 * H, sums, sums + 4 * H, sums + 5 * H, sums + 6 * H);
      });
      prev.select(0, slot).copy_(h_prev);
      if (mask.defined()) prev.select(0, slot).mul_(mask);
      if (slot == k_chunk - 1 || k == 0) flush(slot + 1);
    }
    T *sgh = grad_g_hh.data_ptr<T>(), *sgc = grad_g_c.data_ptr<T>(), *sbc = grad_b_c.data_ptr<T>();
    for (int64_t p = 0; p < threads; ++p) {
      const T* sums = per_thread.data() + p * 16 * H;
      for (int64_t j = 0; j < 4 * H; ++j) sgh[j] += sums[j];
      for (int64_t j = 0; j < H; ++j) sgc[j] += sums[4 * H + j];
      for (int64_t j = 0; j < H; ++j) sbc[j] += sums[5 * H + j];
    }
    if (steps > 0) {
      const int64_t first = (steps - 1) % k_chunk;  // the slot of the first processed step
      at::mm_out(dh, dr.select(0, first), w_hh);
      if (mask.defined()) dh.mul_(mask);
    }
    if (keep.defined()) dh.add_(zoned);
  });
  return {grad_a, grad_w, dh, dc, grad_g_hh, grad_g_c, grad_b_c};
}

}  // namespace

void register_layernorm_steps(pybind11::module_& m) {
  namespace py = pybind11;
  m.def("lnlstm_forward", &lnlstm_forward, py::arg("a"), py::arg("h0"), py::arg("c0"),
        py::arg("w_hh_t"), py::arg("g_hh"), py::arg("g_c"), py::arg("b_c"), py::arg("eps"),
        py::arg("reverse"), py::arg("mask") = py::none(), py::arg("keep") = py::none());
  m.def("lnlstm_backward", &lnlstm_backward, py::arg("a"), py::arg("xhat"), py::arg("stats"),
        py::arg("out"), py::arg("cells"), py::arg("h0"), py::arg("c0"), py::arg("w_hh"),
        py::arg("g_hh"), py::arg("g_c"), py::arg("b_c"), py::arg("grad_out"),
        py::arg("grad_h_n"), py::arg("grad_c_n"), py::arg("last"), py::arg("reverse"),
        py::arg("chunk"), py::arg("grad_a"), py::arg("mask") = py::none(),
        py::arg("keep") = py::none());
}
