// The time walk of the Elman cell, compiled (seqmodels/kernels/elman.py holds the maths and
// the whole-sequence work: the input projection and the weight gradients).
//
//   forward   h~_t = act(a_t + (m h_{t-1}) W_hh^T)          a_t = W_ih x_t + b, in `out`
//             h_t = h~_t + d_t (h_{t-1} - h~_t)               zoneout
//   backward  dh_t = G_t + [t last] dL/dh_n + c_t             c: what step t+1 passed back
//             δ_t = (1 - d_t) dh_t act'(h~_t)                 act' = 1 - h~^2, or [h~ > 0]
//             c_{t-1} = m (δ_t W_hh) + d_t dh_t;   dL/dh_0 = c_0
//
// m is recurrent dropout's mask and d_t zoneout's (seqmodels/kernels/regularisation.py); the
// plain walk has m = 1 and d = 0. Backward's act' reads h~ off the outputs where training's d
// is 0 or 1 (h~ = h where d = 0; where d = 1 nothing reaches h~, δ = 0); with one fractional
// d for every step (eval's p) the forward walk writes h~ to `htilde` (T, N, H) for it. With
// recurrent dropout dL/dW_hh = sum_t δ_t^T (m h_{t-1}) is added here, a chunk of steps at a
// time from a small buffer of m h_{t-1} rows (the caller's one GEMM over the outputs reads
// h_{t-1} unmasked), so no (T, N, H) copy of m h is made. An Elman step is one GEMM
// and one activation: in Python each step dispatches a few ops, and the regularisers double
// that, so the walk is here, one ATen GEMM per step each way plus one pass over the step's
// rows (split over torch's threads when there are enough of them).
//
// Layouts (contiguous, time-major): out, htilde, delta (T, N, H). `last` (N,) int64: each
// sequence's last processed step, where dL/dh_n enters; later steps are padding (zero deltas).
// `reverse` walks time from the last step.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "loops_common.h"

namespace {

// f(r0, r1) over the rows [0, N), split over torch's threads when there are enough.
template <typename F>
void over_rows(int64_t N, const F& f) {
  if (N < 2 * kMinRowsPerThread) {
    f(0, N);
    return;
  }
  at::parallel_for(0, N, kMinRowsPerThread, f);
}

// tanh within ~2 ulp, branch-free so that the row loop vectorises: Cephes' odd polynomial
// below |x| = 0.625, 1 - 2 / (1 + e^{2|x|}) above it (fast_exp: relative error ~1e-7, which
// that form shrinks). The gated loops' tanh (Act<float>) is a few times less exact near 0,
// and an Elman layer's float32 outputs and gradients must stay within the parity tests'
// tolerances of nn.RNN's (ATen's tanh), stacked and bidirectional; calling ATen's tanh_ per
// step instead cost the walk its lead over the Python one at A and B (seqmodels-bench).
inline float exact_tanh(float x) {
  const float a = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float big = 1.0f - 2.0f / (1.0f + fast_exp(2.0f * a));
  const float signed_big = x < 0.0f ? -big : big;
  return a < 0.625f ? small : signed_big;
}
inline double exact_tanh(double x) { return std::tanh(x); }

template <typename T, bool Relu>
void forward_impl(at::Tensor& out, const at::Tensor& h0, const at::Tensor& w_hh_t, bool reverse,
                  const Regularised<T>& reg, T* htilde) {
  const int64_t N = out.size(1), H = out.size(2);
  at::Tensor masked = reg.mask ? at::empty({N, H}, out.options()) : at::Tensor();
  at::Tensor prev = h0;
  for (int64_t t : processing_order(out.size(0), reverse)) {
    at::Tensor o = out.select(0, t);
    if (reg.mask) {  // what the step reads: m h_{t-1}
      T* pm = masked.data_ptr<T>();
      const T* hp = prev.data_ptr<T>();
      for (int64_t j = 0; j < N * H; ++j) pm[j] = reg.mask[j] * hp[j];
    }
    o.addmm_(reg.mask ? masked : prev, w_hh_t);  // (N, H) += (N, H) @ (H, H)
    T* po = o.data_ptr<T>();
    const T* hp = prev.data_ptr<T>();
    const T* d = reg.keep_rows(t, 0);
    T* ht = htilde ? htilde + t * N * H : nullptr;
    over_rows(N, [&](int64_t r0, int64_t r1) {
      if constexpr (Relu) {  // NaN stays NaN, as torch.relu
        for (int64_t j = r0 * H; j < r1 * H; ++j) po[j] = po[j] < T(0) ? T(0) : po[j];
      } else {
        for (int64_t j = r0 * H; j < r1 * H; ++j) po[j] = exact_tanh(po[j]);
      }
      if (ht)
        for (int64_t j = r0 * H; j < r1 * H; ++j) ht[j] = po[j];
      if (d)  // zoneout: h = h~ + d (h_{t-1} - h~)
        for (int64_t j = r0 * H; j < r1 * H; ++j) po[j] += d[j] * (hp[j] - po[j]);
    });
    prev = o;
  }
}

// Bytes of m h_{t-1} rows gathered for one chunk's dL/dW_hh GEMM: small enough to stay in
// the caches and in malloc's heap (a per-call (T, N, H) buffer is page-faulted on every call).
constexpr int64_t kGatherBytes = 256 * 1024;

template <typename T, bool Relu>
void backward_impl(const T* htilde, const at::Tensor& out, const at::Tensor& h0,
                   const at::Tensor& weight_hh, const at::Tensor& grad_out,
                   const at::Tensor& grad_h_n, const at::Tensor& last, bool reverse,
                   const Regularised<T>& reg, at::Tensor& delta, at::Tensor& carry,
                   at::Tensor& grad_w_hh) {
  const int64_t steps = delta.size(0), N = delta.size(1), H = delta.size(2);
  // dL/dW_hh by chunks of steps (with recurrent dropout): the chunk's steps are contiguous
  // in time, so its deltas are one (k N, H) block of `delta`, and its m h_{t-1} rows go to
  // `gathered` in the same order.
  const bool weight_grad = grad_w_hh.defined();
  const int64_t chunk = std::max<int64_t>(1, kGatherBytes / std::max<int64_t>(1, N * H * sizeof(T)));
  std::vector<T> gathered(weight_grad ? std::min(chunk, steps) * N * H : 0);
  std::vector<T> dh(N * H), zc(reg.keep ? N * H : 0);
  at::Tensor through = reg.mask ? at::empty({N, H}, delta.options()) : at::Tensor();
  const int64_t* pl = last.data_ptr<int64_t>();
  const T* gh = grad_h_n.defined() ? grad_h_n.data_ptr<T>() : nullptr;
  T* pc = carry.data_ptr<T>();
  const std::vector<int64_t> order = processing_order(steps, reverse);
  int64_t chunk_end = steps;  // the chunk of processing indices [k_lo, chunk_end) being walked
  for (int64_t k = steps - 1; k >= 0; --k) {
    const int64_t t = order[k];
    start_dh(dh.data(), grad_out, t, 0, N, H);
    const T* ht = htilde + t * N * H;
    const T* d = reg.keep_rows(t, 0);
    at::Tensor delta_t = delta.select(0, t);
    T* pd = delta_t.data_ptr<T>();
    over_rows(N, [&](int64_t r0, int64_t r1) {
      for (int64_t n = r0; n < r1; ++n) {
        T* __restrict g = dh.data() + n * H;
        T* __restrict dn = pd + n * H;
        if (!reverse && t > pl[n]) {  // padding passes nothing
          std::fill(dn, dn + H, T(0));
          if (d) std::fill(zc.data() + n * H, zc.data() + (n + 1) * H, T(0));
          continue;
        }
        const T* __restrict c = pc + n * H;
        for (int64_t j = 0; j < H; ++j) g[j] += c[j];
        if (gh && t == pl[n])
          for (int64_t j = 0; j < H; ++j) g[j] += gh[n * H + j];
        const T* __restrict h = ht + n * H;
        if (d) {
          T* __restrict z = zc.data() + n * H;
          const T* __restrict dd = d + n * H;
          for (int64_t j = 0; j < H; ++j) z[j] = dd[j] * g[j];
          for (int64_t j = 0; j < H; ++j) g[j] -= z[j];
        }
        if constexpr (Relu) {
          for (int64_t j = 0; j < H; ++j) dn[j] = h[j] > T(0) ? g[j] : T(0);
        } else {
          for (int64_t j = 0; j < H; ++j) dn[j] = g[j] - g[j] * h[j] * h[j];
        }
      }
    });
    // c_{t-1} = m (δ_t W_hh) + d_t dh_t: (N, H) = (N, H) @ (H, H)
    at::mm_out(reg.mask ? through : carry, delta_t, weight_hh);
    if (reg.mask) {
      const T* pt = through.data_ptr<T>();
      for (int64_t j = 0; j < N * H; ++j) pc[j] = reg.mask[j] * pt[j];
    }
    if (reg.keep)
      for (int64_t j = 0; j < N * H; ++j) pc[j] += zc[j];
    if (weight_grad) {
      const int64_t k_lo = std::max<int64_t>(0, chunk_end - chunk);
      const int64_t t_lo = std::min(order[k_lo], order[chunk_end - 1]);
      const T* hp = k == 0 ? h0.data_ptr<T>() : out.data_ptr<T>() + order[k - 1] * N * H;
      T* row = gathered.data() + (t - t_lo) * N * H;
      for (int64_t j = 0; j < N * H; ++j) row[j] = reg.mask[j] * hp[j];
      if (k == k_lo) {  // the chunk is walked: dW_hh += δ^T (m h_prev) over its steps
        const int64_t rows = (chunk_end - k_lo) * N;
        auto options = delta.options();
        at::Tensor d_chunk = delta.narrow(0, t_lo, chunk_end - k_lo).view({rows, H});
        at::Tensor h_chunk = at::from_blob(gathered.data(), {rows, H}, options);
        grad_w_hh.addmm_(d_chunk.t(), h_chunk);
        chunk_end = k_lo;
      }
    }
  }
}

// out (T, N, H): the input projection a in, h out. htilde: with one d for every step, a
// (T, N, H) buffer for each step's h~.
void elman_forward(at::Tensor out, at::Tensor h0, at::Tensor w_hh_t, bool reverse, bool relu,
                   std::optional<at::Tensor> mask, std::optional<at::Tensor> keep,
                   std::optional<at::Tensor> htilde_) {
  for (auto* t : {&out, &h0, &w_hh_t}) check(*t, "elman_forward argument");
  const at::Tensor htilde = htilde_.value_or(at::Tensor());
  TORCH_CHECK(out.dim() == 3 && h0.sizes() == at::IntArrayRef({out.size(1), out.size(2)}) &&
                  w_hh_t.sizes() == at::IntArrayRef({out.size(2), out.size(2)}),
              "elman_forward: out (T, N, H), h0 (N, H), w_hh_t (H, H)");
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "elman_forward", [&] {
    const Regularised<scalar_t> reg(mask, keep, out.size(0), out.size(1), out.size(2));
    TORCH_CHECK(!reg.keep || reg.keep_step != 0 || htilde.defined(),
                "elman_forward: one d for every step needs htilde");
    scalar_t* ht = nullptr;
    if (htilde.defined()) {
      check(htilde, "elman_forward htilde");
      TORCH_CHECK(htilde.sizes() == out.sizes(), "elman_forward: htilde (T, N, H)");
      ht = htilde.data_ptr<scalar_t>();
    }
    if (relu) {
      forward_impl<scalar_t, true>(out, h0, w_hh_t, reverse, reg, ht);
    } else {
      forward_impl<scalar_t, false>(out, h0, w_hh_t, reverse, reg, ht);
    }
  });
}

// -> (δ (T, N, H), dL/dh0 (N, H), and with recurrent dropout and `weight_grad`, dL/dW_hh
// (H, H); else an undefined tensor there). htilde: each step's h~, the outputs where d is 0
// or 1; grad_out may have any strides (it is read in place).
std::vector<at::Tensor> elman_backward(at::Tensor htilde, at::Tensor out, at::Tensor h0,
                                       at::Tensor weight_hh,
                                       std::optional<at::Tensor> grad_out,
                                       std::optional<at::Tensor> grad_h_n, at::Tensor last,
                                       bool reverse, bool relu, std::optional<at::Tensor> mask,
                                       std::optional<at::Tensor> keep, bool weight_grad) {
  for (auto* t : {&htilde, &out, &h0, &weight_hh}) check(*t, "elman_backward argument");
  const at::Tensor g = grad_out.value_or(at::Tensor());
  const at::Tensor gh = grad_h_n.value_or(at::Tensor());
  if (g.defined()) check(g, "elman_backward output gradient", false);
  if (gh.defined()) check(gh, "elman_backward gradient");
  const int64_t N = htilde.size(1), H = htilde.size(2);
  TORCH_CHECK(last.scalar_type() == at::kLong && last.numel() == N, "last (N,) int64");
  at::Tensor delta = at::empty_like(htilde), carry = at::zeros({N, H}, htilde.options());
  at::Tensor grad_w_hh;
  AT_DISPATCH_FLOATING_TYPES(htilde.scalar_type(), "elman_backward", [&] {
    const Regularised<scalar_t> reg(mask, keep, htilde.size(0), N, H);
    if (weight_grad && reg.mask) grad_w_hh = at::zeros({H, H}, htilde.options());
    const scalar_t* ht = htilde.data_ptr<scalar_t>();
    auto run = [&](auto relu_tag) {
      backward_impl<scalar_t, decltype(relu_tag)::value>(ht, out, h0, weight_hh, g, gh, last,
                                                         reverse, reg, delta, carry, grad_w_hh);
    };
    relu ? run(std::true_type{}) : run(std::false_type{});
  });
  return {delta, carry, grad_w_hh};
}

}  // namespace

// Called from gated_steps.cpp's module definition: every source builds into one extension.
void register_elman_steps(pybind11::module_& m) {
  namespace py = pybind11;
  m.def("elman_forward", &elman_forward, py::arg("out"), py::arg("h0"), py::arg("w_hh_t"),
        py::arg("reverse"), py::arg("relu"), py::arg("mask") = py::none(),
        py::arg("keep") = py::none(), py::arg("htilde") = py::none());
  m.def("elman_backward", &elman_backward, py::arg("htilde"), py::arg("out"), py::arg("h0"),
        py::arg("weight_hh"),
        py::arg("grad_out") = py::none(), py::arg("grad_h_n") = py::none(), py::arg("last"),
        py::arg("reverse"), py::arg("relu"), py::arg("mask") = py::none(),
        py::arg("keep") = py::none(), py::arg("weight_grad") = false);
}
