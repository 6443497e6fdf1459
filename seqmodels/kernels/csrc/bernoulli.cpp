// Bernoulli masks for the regularisers (seqmodels/kernels/regularisation.py), from a seed.
//
// Zoneout draws one value per step, row and unit: at the benchmark's sizes torch's CPU
// bernoulli_ (one Mersenne Twister draw per element) costs as much as IndRNN's whole walk
// and a large share of a gated layer's step (`seqmodels-bench cell=indrnn zoneout=0.1`). Here
// each element's value is a function of (seed, index): a counter-based generator, so the
// loop vectorises, threads split it without changing a single value, and one seed, drawn from
// torch's generator by the caller, reproduces the mask.
//
//   u_i = mix(mix(lo(i) ^ k0) + mix(hi(i) ^ k1))      (k0, k1 the seed's halves)
//   mask_i = value if u_i < p * 2^32 else 0
//
// mix is the "lowbias32" integer hash (C. Wellons, hash-prospector), a bijection of 32-bit
// integers whose output bits each flip with probability ~1/2 for any flipped input bit.
// p is quantised to 2^-32.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstdint>

namespace {

inline uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// out[0, len) for the indices [start, start + len), all with the same high half.
template <typename T>
void fill_block(T* __restrict out, uint64_t start, int64_t len, uint32_t k0, uint32_t k1,
                uint32_t threshold, bool always, T value) {
  const uint32_t high = mix(static_cast<uint32_t>(start >> 32) ^ k1);
  const uint32_t low = static_cast<uint32_t>(start);
  for (int64_t j = 0; j < len; ++j) {
    const uint32_t u = mix(mix((low + static_cast<uint32_t>(j)) ^ k0) + high);
    out[j] = (always || u < threshold) ? value : T(0);
  }
}

// A tensor of `like`'s dtype and device (CPU) and shape `size`: `value` with probability p,
// else 0.
at::Tensor bernoulli_mask(at::IntArrayRef size, double p, int64_t seed, double value,
                          const at::Tensor& like) {
  TORCH_CHECK(like.device().is_cpu(), "bernoulli_mask: a CPU tensor");
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "bernoulli_mask: p in [0, 1], got ", p);
  at::Tensor out = at::empty(size, like.options());
  const uint64_t bits = static_cast<uint64_t>(seed);
  const uint32_t k0 = static_cast<uint32_t>(bits), k1 = static_cast<uint32_t>(bits >> 32);
  const bool always = p >= 1.0;
  const uint32_t threshold = always ? 0U : static_cast<uint32_t>(p * 4294967296.0);
  const int64_t n = out.numel();
  constexpr int64_t kBlock = int64_t(1) << 16;  // a divisor of 2^32: one high half per block
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "bernoulli_mask", [&] {
    scalar_t* po = out.data_ptr<scalar_t>();
    const auto v = static_cast<scalar_t>(value);
    at::parallel_for(0, (n + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t start = b * kBlock, len = std::min(kBlock, n - start);
        fill_block(po + start, static_cast<uint64_t>(start), len, k0, k1, threshold, always, v);
      }
    });
  });
  return out;
}

}  // namespace

// Called from gated_steps.cpp's module definition: every source builds into one extension.
void register_bernoulli(pybind11::module_& m) {
  namespace py = pybind11;
  m.def("bernoulli_mask", &bernoulli_mask, py::arg("size"), py::arg("p"), py::arg("seed"),
        py::arg("value"), py::arg("like"));
}
