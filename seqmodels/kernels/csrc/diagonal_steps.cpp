// The time walk of a diagonal (elementwise) recurrence, compiled: IndRNN (seqmodels/kernels/indrnn.py).
//
//   forward   z_t = a_t + w * h_{t-1};  h_t = act(z_t)                  act = relu or tanh
//   backward  dz_t = (G_t + w * dz_{t+1} + [t last] dL/dh_n) * act'(z_t)
//             dL/dw = sum_{t,n} dz_t * h_{t-1},  dL/dh_0 = w * dz_first
//
// Each unit (n, j) depends only on its own past, so each direction is ONE pass over the
// (T, N, H) sequence with a plain inner loop over the units of a row, which the compiler
// vectorises for whatever instruction set compiled.py builds for (no intrinsics here).
// One thread: a pass costs well under a nanosecond per element and is bound by memory
// traffic once the sequence leaves the caches. Two threads, each walking half of the units
// (at::parallel_for over 64-byte blocks, no synchronisation per step), measured slower than
// one on a two-core machine at every size tried, 0.4 M to 6.5 M elements per call.
//
// Layouts: a, out, dz (T, N, H) contiguous, time-major; h0, h_n, dh0 (N, H); w (H,);
// `last` (N,) int64: the time index of each sequence's last processed step, where dL/dh_n
// enters (T - 1, or 0 with `reverse`; lengths - 1 with padding, never reversed). Steps after
// `last` are padding: their outputs and deltas are zero, so nothing flows through them.
// The input projection a_t (biases included) and its gradients stay in Python (autograd).
//
// Regularised walk (recurrent dropout and zoneout, seqmodels/kernels/regularisation.py): with
// m (N, H) the recurrent dropout mask and d_t (N, H) zoneout's keep at time t (the masks as
// every compiled loop reads them: Regularised, loops_common.h),
//
//   forward   h~_t = act(a_t + w * m * h_{t-1});  h_t = h~_t + d_t * (h_{t-1} - h~_t)
//   backward  dh_t = G_t + [t last] dL/dh_n + c_t;  dz_t = (1 - d_t) * dh_t * act'(h~_t)
//             c_{t-1} = d_t * dh_t + w * m * dz_t;  dL/dw = sum dz_t * m * h_{t-1};  dL/dh0 = c_0
//
// Backward recomputes h~_t from a_t (one more pass of arithmetic, where keeping h~ would cost
// a (T, N, H) buffer written forward and read back). Without a mask m is ones; without
// zoneout d is zeros. The plain walk above is the same with m = 1 and d = 0, and runs when
// neither acts.
//
// float32 tanh is a branch-free rational approximation the compiler vectorises (error
// under 3e-7, absolute and relative); float64 (gradcheck) uses libm's.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "loops_common.h"

namespace {

// tanh for float: a 13/6 rational function of x (Eigen's fast tanh), clamped where tanh
// rounds to +-1; x itself near 0. Branch-free selects: vectorisable. NaN stays NaN.
inline float rational_tanh(float x) {
  constexpr float bound = 7.90531110763549805f;
  const float c = x > bound ? bound : (x < -bound ? -bound : x);
  const float x2 = c * c;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  const float r = p * c / q;
  return std::fabs(x) < 0.0004f ? x : r;
}

inline float tanh_of(float x) { return rational_tanh(x); }
inline double tanh_of(double x) { return std::tanh(x); }

// relu keeps NaN (as torch.relu): z < 0 is false for NaN.
template <typename T, bool Relu>
inline T activate(T z) {
  if constexpr (Relu) {
    return z < T(0) ? T(0) : z;
  } else {
    return tanh_of(z);
  }
}

// One row of a step: o = act(a + w * hp) over `len` units.
template <typename T, bool Relu>
inline void forward_row(int64_t len, const T* __restrict__ a, const T* __restrict__ w,
                        const T* __restrict__ hp, T* __restrict__ o) {
  for (int64_t j = 0; j < len; ++j) o[j] = activate<T, Relu>(a[j] + w[j] * hp[j]);
}

// One row of a backward step: dz = (g + w * dl + gh) * act'(h), acc += dz * hp. `GS` is the
// stride of g over units: 1, or 0 for a gradient expanded from one value (out.sum()).
template <typename T, bool Relu, int GS>
inline void backward_row(int64_t len, const T* __restrict__ g, const T* __restrict__ w,
                         const T* __restrict__ dl, const T* __restrict__ gh,
                         const T* __restrict__ h, const T* __restrict__ hp,
                         T* __restrict__ dz, T* __restrict__ acc) {
  for (int64_t j = 0; j < len; ++j) {
    const T total = g[j * GS] + w[j] * dl[j] + gh[j];
    T d;
    if constexpr (Relu) {
      d = h[j] > T(0) ? total : T(0);  // a select: inf or NaN at h = 0 passes nothing
    } else {
      d = total - total * h[j] * h[j];  // tanh' = 1 - h^2
    }
    dz[j] = d;
    acc[j] += d * hp[j];
  }
}

// One row of a regularised step (see the top): o = h.
template <typename T, bool Relu>
inline void forward_row_reg(int64_t len, const T* __restrict__ a, const T* __restrict__ w,
                            const T* __restrict__ hp, const T* __restrict__ m,
                            const T* __restrict__ d, T* __restrict__ o) {
  for (int64_t j = 0; j < len; ++j) {
    const T h_new = activate<T, Relu>(a[j] + w[j] * (m[j] * hp[j]));
    o[j] = h_new + d[j] * (hp[j] - h_new);
  }
}

// One row of a regularised backward step: c holds dL/dh from the later step in and the
// carry to the earlier step out.
template <typename T, bool Relu, int GS>
inline void backward_row_reg(int64_t len, const T* __restrict__ g, const T* __restrict__ w,
                             const T* __restrict__ gh, const T* __restrict__ a,
                             const T* __restrict__ hp, const T* __restrict__ m,
                             const T* __restrict__ d, T* __restrict__ c, T* __restrict__ dz,
                             T* __restrict__ acc) {
  for (int64_t j = 0; j < len; ++j) {
    const T dh = g[j * GS] + c[j] + gh[j];
    const T through = dh - d[j] * dh;  // (1 - d) dh: what reaches h~
    const T hm = m[j] * hp[j];
    const T ht = activate<T, Relu>(a[j] + w[j] * hm);  // h~, as forward computed it
    T delta;
    if constexpr (Relu) {
      delta = ht > T(0) ? through : T(0);
    } else {
      delta = through - through * ht * ht;
    }
    dz[j] = delta;
    acc[j] += delta * hm;
    c[j] = d[j] * dh + w[j] * (m[j] * delta);
  }
}

template <typename T>
const T* ptr(const at::Tensor& t) {
  return t.data_ptr<T>();
}

// Time index of the k-th processed step.
inline int64_t at_step(int64_t k, int64_t steps, bool reverse) {
  return reverse ? steps - 1 - k : k;
}

// The forward walk in processing order: row(t, n, a_row, h_prev_row, out_row) computes one
// row of time step t; padded steps get zeros; h_n is read at each sequence's last step.
template <typename T, typename Row>
void walk_forward(const at::Tensor& a, const at::Tensor& h0, const at::Tensor& last,
                  bool reverse, at::Tensor& out, at::Tensor& h_n, const Row& row) {
  const int64_t steps = a.size(0), batch = a.size(1), hidden = a.size(2);
  const T *pa = ptr<T>(a), *ph0 = ptr<T>(h0);
  const int64_t* pl = last.data_ptr<int64_t>();
  T *po = out.data_ptr<T>(), *phn = h_n.data_ptr<T>();
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = at_step(k, steps, reverse);
    const int64_t before = k == 0 ? -1 : at_step(k - 1, steps, reverse);
    for (int64_t n = 0; n < batch; ++n) {
      T* o = po + (t * batch + n) * hidden;
      if (!reverse && t > pl[n]) {  // padding: zero output, nothing computed
        std::fill(o, o + hidden, T(0));
        continue;
      }
      const T* hp = before < 0 ? ph0 + n * hidden : po + (before * batch + n) * hidden;
      row(t, n, pa + (t * batch + n) * hidden, hp, o);
    }
  }
  for (int64_t n = 0; n < batch; ++n) {
    const T* o = po + (pl[n] * batch + n) * hidden;
    std::copy(o, o + hidden, phn + n * hidden);
  }
}

template <typename T, bool Relu>
void forward_impl(const at::Tensor& a, const at::Tensor& w, const at::Tensor& h0,
                  const at::Tensor& last, bool reverse, at::Tensor& out, at::Tensor& h_n) {
  const int64_t hidden = a.size(2);
  const T* pw = ptr<T>(w);
  walk_forward<T>(a, h0, last, reverse, out, h_n,
                  [&](int64_t, int64_t, const T* ar, const T* hp, T* o) {
                    forward_row<T, Relu>(hidden, ar, pw, hp, o);
                  });
}

template <typename T, bool Relu, int GS>
void backward_impl(const at::Tensor& out, const at::Tensor& w, const at::Tensor& h0,
                   const at::Tensor& last, bool reverse, const T* pg, int64_t g_t, int64_t g_n,
                   const T* pgh, at::Tensor& dz, at::Tensor& dw, at::Tensor& dh0) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const T *po = ptr<T>(out), *pw = ptr<T>(w), *ph0 = ptr<T>(h0);
  const int64_t* pl = last.data_ptr<int64_t>();
  T *pd = dz.data_ptr<T>(), *pdw = dw.data_ptr<T>(), *pdh0 = dh0.data_ptr<T>();
  const std::vector<T> zeros(hidden, T(0));  // a missing term: no G_t, no later step, no dL/dh_n
  std::fill(pdw, pdw + hidden, T(0));
  for (int64_t k = steps - 1; k >= 0; --k) {
    const int64_t t = at_step(k, steps, reverse);
    const int64_t later = k == steps - 1 ? -1 : at_step(k + 1, steps, reverse);
    const int64_t before = k == 0 ? -1 : at_step(k - 1, steps, reverse);
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t row = (t * batch + n) * hidden;
      if (!reverse && t > pl[n]) {  // padding passes nothing
        std::fill(pd + row, pd + row + hidden, T(0));
        continue;
      }
      const T* g = pg == nullptr ? zeros.data() : pg + t * g_t + n * g_n;
      const T* dl = later < 0 ? zeros.data() : pd + (later * batch + n) * hidden;
      const T* gh = pgh != nullptr && t == pl[n] ? pgh + n * hidden : zeros.data();
      const T* hp = before < 0 ? ph0 + n * hidden : po + (before * batch + n) * hidden;
      backward_row<T, Relu, GS>(hidden, g, pw, dl, gh, po + row, hp, pd + row, pdw);
    }
  }
  const T* d = pd + at_step(0, steps, reverse) * batch * hidden;  // the first step's deltas
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t j = 0; j < hidden; ++j) pdh0[n * hidden + j] = pw[j] * d[n * hidden + j];
  }
}

// The regularised walks read m and d through `reg`; one that is absent reads ones (m) or
// zeros (d) from `Filled`.
template <typename T>
struct Filled {
  std::vector<T> ones, zeros;
  const T* mask;  // (N, H)
  Filled(const Regularised<T>& reg, int64_t batch, int64_t hidden)
      : ones(reg.mask ? 0 : batch * hidden, T(1)), zeros(reg.keep ? 0 : batch * hidden, T(0)),
        mask(reg.mask ? reg.mask : ones.data()) {}
  // d's rows at time t, (N, H)
  const T* keep(const Regularised<T>& reg, int64_t t) const {
    return reg.keep ? reg.keep_rows(t, 0) : zeros.data();
  }
};

template <typename T, bool Relu>
void forward_reg_impl(const at::Tensor& a, const at::Tensor& w, const at::Tensor& h0,
                      const at::Tensor& last, bool reverse, const Regularised<T>& reg,
                      at::Tensor& out, at::Tensor& h_n) {
  const int64_t batch = a.size(1), hidden = a.size(2);
  const T* pw = ptr<T>(w);
  const Filled<T> filled(reg, batch, hidden);
  walk_forward<T>(a, h0, last, reverse, out, h_n,
                  [&](int64_t t, int64_t n, const T* ar, const T* hp, T* o) {
                    forward_row_reg<T, Relu>(hidden, ar, pw, hp, filled.mask + n * hidden,
                                             filled.keep(reg, t) + n * hidden, o);
                  });
}

template <typename T, bool Relu, int GS>
void backward_reg_impl(const at::Tensor& a, const at::Tensor& out, const at::Tensor& w,
                       const at::Tensor& h0, const at::Tensor& last, bool reverse, const T* pg,
                       int64_t g_t, int64_t g_n, const T* pgh, const Regularised<T>& reg,
                       at::Tensor& dz, at::Tensor& dw, at::Tensor& dh0) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const T *pa = ptr<T>(a), *po = ptr<T>(out), *pw = ptr<T>(w), *ph0 = ptr<T>(h0);
  const Filled<T> filled(reg, batch, hidden);
  const int64_t* pl = last.data_ptr<int64_t>();
  T *pd = dz.data_ptr<T>(), *pdw = dw.data_ptr<T>(), *pc = dh0.data_ptr<T>();
  const std::vector<T> zeros(hidden, T(0));  // a missing term: no G_t, no dL/dh_n
  std::fill(pdw, pdw + hidden, T(0));
  std::fill(pc, pc + batch * hidden, T(0));  // the carry; after the walk, dL/dh0
  for (int64_t k = steps - 1; k >= 0; --k) {
    const int64_t t = at_step(k, steps, reverse);
    const int64_t before = k == 0 ? -1 : at_step(k - 1, steps, reverse);
    const T* d = filled.keep(reg, t);
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t row = (t * batch + n) * hidden;
      if (!reverse && t > pl[n]) {  // padding passes nothing
        std::fill(pd + row, pd + row + hidden, T(0));
        std::fill(pc + n * hidden, pc + (n + 1) * hidden, T(0));
        continue;
      }
      const T* g = pg == nullptr ? zeros.data() : pg + t * g_t + n * g_n;
      const T* gh = pgh != nullptr && t == pl[n] ? pgh + n * hidden : zeros.data();
      const T* hp = before < 0 ? ph0 + n * hidden : po + (before * batch + n) * hidden;
      backward_row_reg<T, Relu, GS>(hidden, g, pw, gh, pa + row, hp, filled.mask + n * hidden,
                                    d + n * hidden, pc + n * hidden, pd + row, pdw);
    }
  }
}

void check_inputs(const at::Tensor& seq, const at::Tensor& w, const at::Tensor& h0,
                  const at::Tensor& last) {
  TORCH_CHECK(seq.dim() == 3 && seq.size(0) > 0, "a sequence (T, N, H) with T > 0");
  TORCH_CHECK(w.dim() == 1 && w.size(0) == seq.size(2), "weight_hh (H,)");
  TORCH_CHECK(h0.sizes() == at::IntArrayRef({seq.size(1), seq.size(2)}), "h0 (N, H)");
  TORCH_CHECK(last.scalar_type() == at::kLong && last.numel() == seq.size(1), "last (N,) int64");
  TORCH_CHECK(w.scalar_type() == seq.scalar_type() && h0.scalar_type() == seq.scalar_type(),
              "one dtype");
}

// -> (out (T, N, H), h_n (N, H)). With recurrent dropout's mask (N, H) or zoneout's d
// (T or 1, N, H; time order), the regularised walk.
std::vector<at::Tensor> diagonal_forward(const at::Tensor& a_in, const at::Tensor& w_in,
                                         const at::Tensor& h0_in, const at::Tensor& last_in,
                                         bool reverse, bool relu,
                                         const std::optional<at::Tensor>& mask,
                                         const std::optional<at::Tensor>& keep) {
  const at::Tensor a = a_in.contiguous(), w = w_in.contiguous(), h0 = h0_in.contiguous();
  const at::Tensor last = last_in.contiguous();
  check_inputs(a, w, h0, last);
  at::Tensor out = at::empty_like(a), h_n = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "diagonal_forward", [&] {
    const Regularised<scalar_t> reg(mask, keep, a.size(0), a.size(1), a.size(2));
    const bool plain = !reg.mask && !reg.keep;
    if (relu) {
      plain ? forward_impl<scalar_t, true>(a, w, h0, last, reverse, out, h_n)
            : forward_reg_impl<scalar_t, true>(a, w, h0, last, reverse, reg, out, h_n);
    } else {
      plain ? forward_impl<scalar_t, false>(a, w, h0, last, reverse, out, h_n)
            : forward_reg_impl<scalar_t, false>(a, w, h0, last, reverse, reg, out, h_n);
    }
  });
  return {out, h_n};
}

// The gradients from outside the walk, checked: the output's (read in place: any strides over
// time and batch; over units stride 1 or 0, else copied) and the final state's.
struct OutsideGrads {
  at::Tensor g, gh;
};

OutsideGrads outside_grads(const at::Tensor& out, const at::Tensor& h0,
                           const std::optional<at::Tensor>& grad_out,
                           const std::optional<at::Tensor>& grad_h_n) {
  OutsideGrads grads;
  if (grad_out.has_value()) {
    grads.g = *grad_out;
    TORCH_CHECK(grads.g.sizes() == out.sizes() && grads.g.scalar_type() == out.scalar_type(),
                "grad_out");
    if (grads.g.stride(2) != 0 && grads.g.stride(2) != 1) grads.g = grads.g.contiguous();
  }
  if (grad_h_n.has_value()) {
    grads.gh = grad_h_n->contiguous();
    TORCH_CHECK(grads.gh.sizes() == h0.sizes() && grads.gh.scalar_type() == out.scalar_type(),
                "grad_h_n");
  }
  return grads;
}

// body(relu_tag, stride_tag, pg, g_t, g_n, pgh) for out's dtype, the activation and whether
// the output gradient is one value broadcast over units (stride 0) or not (stride 1).
template <typename F>
void dispatch_backward(const at::Tensor& out, bool relu, const OutsideGrads& grads,
                       const F& body) {
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "diagonal_backward", [&] {
    const at::Tensor &g = grads.g, &gh = grads.gh;
    const scalar_t* pg = g.defined() ? g.data_ptr<scalar_t>() : nullptr;
    const scalar_t* pgh = gh.defined() ? gh.data_ptr<scalar_t>() : nullptr;
    const int64_t g_t = g.defined() ? g.stride(0) : 0, g_n = g.defined() ? g.stride(1) : 0;
    const bool broadcast = g.defined() && g.stride(2) == 0;
    auto run = [&](auto relu_tag, auto gs_tag) { body(relu_tag, gs_tag, pg, g_t, g_n, pgh); };
    using One = std::integral_constant<int, 1>;
    using Zero = std::integral_constant<int, 0>;
    if (relu) {
      broadcast ? run(std::true_type{}, Zero{}) : run(std::true_type{}, One{});
    } else {
      broadcast ? run(std::false_type{}, Zero{}) : run(std::false_type{}, One{});
    }
  });
}

// -> (dL/da = dz (T, N, H), dL/dw (H,), dL/dh0 (N, H)). `grad_out` may have any strides over
// time and batch (it is read in place); over units, stride 1 or 0 (else it is copied). With
// a mask or d (as diagonal_forward's), the regularised walk's, which recomputes each step's
// h~ from `a`.
std::vector<at::Tensor> diagonal_backward(const at::Tensor& out_in, const at::Tensor& w_in,
                                          const at::Tensor& h0_in, const at::Tensor& last_in,
                                          bool reverse, bool relu,
                                          const std::optional<at::Tensor>& grad_out,
                                          const std::optional<at::Tensor>& grad_h_n,
                                          const std::optional<at::Tensor>& a_in,
                                          const std::optional<at::Tensor>& mask,
                                          const std::optional<at::Tensor>& keep) {
  const at::Tensor out = out_in.contiguous(), w = w_in.contiguous(), h0 = h0_in.contiguous();
  const at::Tensor last = last_in.contiguous();
  check_inputs(out, w, h0, last);
  const OutsideGrads grads = outside_grads(out, h0, grad_out, grad_h_n);
  const at::Tensor a = a_in.has_value() ? a_in->contiguous() : at::Tensor();
  at::Tensor dz = at::empty_like(out), dw = at::empty_like(w), dh0 = at::empty_like(h0);
  dispatch_backward(out, relu, grads, [&](auto relu_tag, auto gs_tag, auto pg, int64_t g_t,
                                          int64_t g_n, auto pgh) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(pg)>>;
    constexpr bool kRelu = decltype(relu_tag)::value;
    constexpr int kStride = decltype(gs_tag)::value;
    const Regularised<T> reg(mask, keep, out.size(0), out.size(1), out.size(2));
    if (!reg.mask && !reg.keep) {
      backward_impl<T, kRelu, kStride>(out, w, h0, last, reverse, pg, g_t, g_n, pgh, dz, dw,
                                       dh0);
      return;
    }
    TORCH_CHECK(a.defined() && a.sizes() == out.sizes() && a.scalar_type() == out.scalar_type(),
                "diagonal_backward: a regularised walk needs a (T, N, H)");
    backward_reg_impl<T, kRelu, kStride>(a, out, w, h0, last, reverse, pg, g_t, g_n, pgh, reg,
                                         dz, dw, dh0);
  });
  return {dz, dw, dh0};
}

}  // namespace

// Called from gated_steps.cpp's module definition: both sources build into one extension.
void register_diagonal_steps(pybind11::module_& m) {
  namespace py = pybind11;
  m.def("diagonal_forward", &diagonal_forward, py::arg("a"), py::arg("weight"), py::arg("h0"),
        py::arg("last"), py::arg("reverse"), py::arg("relu"), py::arg("mask") = py::none(),
        py::arg("keep") = py::none());
  m.def("diagonal_backward", &diagonal_backward, py::arg("out"), py::arg("weight"),
        py::arg("h0"), py::arg("last"), py::arg("reverse"), py::arg("relu"),
        py::arg("grad_out") = py::none(), py::arg("grad_h_n") = py::none(),
        py::arg("a") = py::none(), py::arg("mask") = py::none(), py::arg("keep") = py::none());
}
