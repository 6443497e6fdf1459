// What the compiled loops (gated_steps.cpp, layernorm_steps.cpp) share: the activations
// (float32 branch-free exp/tanh/sigmoid that the compiler vectorises, absolute error ~1e-7, far
// below float32 RNN tolerances; float64, for gradcheck, the exact libm ones), the argument
// check, the processing order of time steps, the fewest rows worth a thread, the masks of the
// regularisers and the output gradient's rows of a step.
#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace {

// exp(x) for float, Cephes' polynomial after x = n ln2 + r; no branches, no libm call.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// The activations of each dtype: float32 fast, float64 (gradcheck) exact.
template <typename T>
struct Act;

template <>
struct Act<float> {
  static inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
  static inline float tanh(float x) { return 1.0f - 2.0f / (1.0f + fast_exp(2.0f * x)); }
};

template <>
struct Act<double> {
  static inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
  static inline double tanh(double x) { return std::tanh(x); }
};

// ---- the loops' plumbing ---------------------------------------------------------------

// Fewer rows than this per thread cost more in synchronisation than they gain.
constexpr int64_t kMinRowsPerThread = 8;

void check(const at::Tensor& t, const char* name, bool contiguous = true) {
  TORCH_CHECK(t.device().is_cpu() && (t.is_contiguous() || !contiguous), name, " must be a ",
              contiguous ? "contiguous " : "", "CPU tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
}

// Recurrent dropout's mask m (N, H) and zoneout's d (K, N, H), each optional
// (seqmodels/kernels/regularisation.py): d in time order (K = T, training's per-step draws)
// or one d for every step (K = 1, eval's p).
template <typename T>
struct Regularised {
  const T* mask = nullptr;
  const T* keep = nullptr;
  int64_t keep_step = 0;  // between steps' d: N H, or 0 for one d at every step
  int64_t H = 0;

  Regularised(const std::optional<at::Tensor>& m, const std::optional<at::Tensor>& k,
              int64_t steps, int64_t N, int64_t hidden)
      : H(hidden) {
    if (m.has_value() && m->defined()) {
      check(*m, "recurrent dropout mask");
      TORCH_CHECK(m->dim() == 2 && m->size(0) == N && m->size(1) == H, "mask (N, H)");
      mask = m->data_ptr<T>();
    }
    if (k.has_value() && k->defined()) {
      check(*k, "zoneout keep");
      TORCH_CHECK(k->dim() == 3 && (k->size(0) == steps || k->size(0) == 1) && k->size(1) == N &&
                      k->size(2) == H,
                  "keep (T or 1, N, H)");
      keep = k->data_ptr<T>();
      keep_step = k->size(0) == 1 ? 0 : N * H;
    }
  }
  const T* mask_rows(int64_t n0) const { return mask ? mask + n0 * H : nullptr; }
  const T* keep_rows(int64_t t, int64_t n0) const {
    return keep ? keep + t * keep_step + n0 * H : nullptr;
  }
};

// dh (N, H) = dL/dh_t from outside the recursion for rows [n0, n0 + N): the output gradient
// at t, or zero. The output gradient may have any strides (`out.sum()` gives an expanded
// one): no copy of it.
template <typename T>
void start_dh(T* dh, const at::Tensor& grad_out, int64_t t, int64_t n0, int64_t N, int64_t H) {
  if (!grad_out.defined()) {
    std::memset(dh, 0, N * H * sizeof(T));
    return;
  }
  const T* g = grad_out.data_ptr<T>() + t * grad_out.stride(0) + n0 * grad_out.stride(1);
  const int64_t sn = grad_out.stride(1), sh = grad_out.stride(2);
  if (sh == 1 && sn == H) {
    std::memcpy(dh, g, N * H * sizeof(T));
    return;
  }
  if (sh == 1) {  // rows apart: one direction's half of a bidirectional layer's gradient
    for (int64_t n = 0; n < N; ++n) std::memcpy(dh + n * H, g + n * sn, H * sizeof(T));
    return;
  }
  if (sh == 0 && sn == 0) {  // one value broadcast (the gradient of a sum)
    std::fill(dh, dh + N * H, g[0]);
    return;
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < H; ++j) dh[n * H + j] = g[n * sn + j * sh];
}

// Time indices in processing order.
std::vector<int64_t> processing_order(int64_t steps, bool reverse) {
  std::vector<int64_t> order(steps);
  for (int64_t i = 0; i < steps; ++i) order[i] = reverse ? steps - 1 - i : i;
  return order;
}

}  // namespace
