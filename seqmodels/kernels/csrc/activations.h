// Activations shared by the compiled loops (gated_steps.cpp, layernorm_steps.cpp): float32
// branch-free exp/tanh/sigmoid that the compiler vectorises (absolute error ~1e-7, far below
// float32 RNN tolerances); float64 (gradcheck) the exact libm ones.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

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

}  // namespace
