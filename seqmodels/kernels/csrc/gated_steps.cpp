// The time loops of the LSTM and GRU BPTT kernels, compiled (seqmodels/kernels/gated.py).
//
// Only the loops live here: the whole-sequence work (input projection, padding, final
// states, weight gradients) stays in Python, and so does the maths' documentation. Each
// step is one GEMM (ATen's, so MKL/OpenBLAS) plus one pass over the step's gates that does
// all of its element-wise arithmetic, where the Python loop dispatches ~7 ops per step.
//
// Layouts (all contiguous, time-major): gates (T, N, G*H) in the cell's gate order, states
// (T, N, H). `reverse` walks time from the last step. `last` (N,) int64 is the time index
// of each sequence's last processed step: where dL/dh_n (and dL/dc_n) enter backward.
//
// float32 uses branch-free exp/tanh/sigmoid that the compiler vectorises (absolute error
// ~1e-7, far below float32 RNN tolerances); float64 (gradcheck) uses the exact libm ones.
// The build targets the instruction set torch's own CPU kernels use on this machine
// (compiled.py); GCC's target_clones, tried first, fell back to SSE2 inside the extension.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "loops_common.h"

// MKL's packed GEMM (cblas_sgemm_pack / _compute), exported by torch's own libtorch_cpu
// where torch was built with MKL (x86). Weak: without MKL they resolve to null and the
// step GEMMs stay on ATen's addmm_. MKL_INT is 32-bit (LP64) in torch's build. Linux/GCC
// only: other linkers reject (or do not know) weak undefined symbols.
#if defined(__linux__) && defined(__GNUC__)
#define SEQMODELS_MKL_PACKED 1
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                      const float* src, int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c,
                         int ldc) __attribute__((weak));
}
#endif

namespace {

// CBLAS enumerations used below (mkl_cblas.h).
constexpr int kRowMajor = 101, kNoTrans = 111, kPacked = 151, kBMatrix = 162;

bool packed_gemm_available() {
#ifdef SEQMODELS_MKL_PACKED
  return cblas_sgemm_pack_get_size && cblas_sgemm_pack && cblas_sgemm_compute;
#else
  return false;
#endif
}

// Each row's arithmetic is a few simple loops over at most four arrays, not one loop doing
// it all: GCC vectorises loops of this shape and gives up on the fused one ("complicated
// access pattern"). A row's gates (<= 4H values) stay in L1 across the passes.

// row (H) += grad's row n where that sequence ends at this step: dL/dh_n or dL/dc_n enters.
template <typename T>
inline void add_if_last(bool ends, const T* grad, int64_t n, int64_t H, T* __restrict row) {
  if (!ends || !grad) return;
  const T* __restrict g = grad + n * H;
  for (int64_t j = 0; j < H; ++j) row[j] += g[j];
}

// ---- LSTM: one step's element-wise work over rows [0, N) -------------------------------

// gates: pre-activations less the bias (W_ih x + W_hh h) in, activations (i, f, g, o) out;
// bias (4H): b_ih + b_hh (zeros without one), added here: no pass of its own over the step.
template <typename T>
inline void lstm_forward_rows(int64_t rows, int64_t H, T* gates, const T* bias, const T* c_prev,
                              T* c, T* h) {
  const T* __restrict bi = bias;
  const T* __restrict bf = bias + H;
  const T* __restrict bg = bias + 2 * H;
  const T* __restrict bo = bias + 3 * H;
  for (int64_t n = 0; n < rows; ++n) {
    // Each gate is written only through its own (restrict) pointer.
    T* __restrict i = gates + n * 4 * H;
    T* __restrict f = i + H;
    T* __restrict g = i + 2 * H;
    T* __restrict o = i + 3 * H;
    const T* __restrict cp = c_prev + n * H;
    T* __restrict cn = c + n * H;
    T* __restrict hn = h + n * H;
    for (int64_t j = 0; j < H; ++j) i[j] = Act<T>::sigmoid(i[j] + bi[j]);
    for (int64_t j = 0; j < H; ++j) f[j] = Act<T>::sigmoid(f[j] + bf[j]);
    for (int64_t j = 0; j < H; ++j) g[j] = Act<T>::tanh(g[j] + bg[j]);
    for (int64_t j = 0; j < H; ++j) o[j] = Act<T>::sigmoid(o[j] + bo[j]);
    for (int64_t j = 0; j < H; ++j) cn[j] = f[j] * cp[j] + i[j] * g[j];
    for (int64_t j = 0; j < H; ++j) hn[j] = o[j] * Act<T>::tanh(cn[j]);
  }
}

// dh: total dL/dh_t; dc: dL/dc_t from step t+1 in, dL/dc_{t-1} out; d: the gate deltas;
// tc: scratch (H). Rows whose sequence ends at this step first take dL/dh_n, dL/dc_n.
// With zoneout (keep: d_t's rows, else null), dh is split first: zc = d dh, the part that
// passes straight to h_{t-1}, and (1 - d) dh, the part that reaches this step's h~.
template <typename T>
inline void lstm_backward_rows(int64_t rows, int64_t H, const T* act, const T* c, const T* c_prev,
                               T* dh, T* dc, T* d, const uint8_t* ends, const T* gh_n,
                               const T* gc_n, T* tc, const T* keep = nullptr, T* zc = nullptr) {
  for (int64_t n = 0; n < rows; ++n) {
    const T* __restrict i = act + n * 4 * H;
    const T* __restrict f = i + H;
    const T* __restrict g = i + 2 * H;
    const T* __restrict o = i + 3 * H;
    const T* __restrict cn = c + n * H;
    const T* __restrict cp = c_prev + n * H;
    T* __restrict dhn = dh + n * H;
    T* __restrict dcn = dc + n * H;
    T* __restrict di = d + n * 4 * H;
    T* __restrict df = di + H;
    T* __restrict dg = di + 2 * H;
    T* __restrict d_o = di + 3 * H;
    add_if_last(ends[n], gh_n, n, H, dhn);
    add_if_last(ends[n], gc_n, n, H, dcn);
    if (keep) {
      const T* __restrict kn = keep + n * H;
      T* __restrict zn = zc + n * H;
      for (int64_t j = 0; j < H; ++j) zn[j] = kn[j] * dhn[j];
      for (int64_t j = 0; j < H; ++j) dhn[j] -= zn[j];
    }
    for (int64_t j = 0; j < H; ++j) tc[j] = Act<T>::tanh(cn[j]);
    for (int64_t j = 0; j < H; ++j) d_o[j] = dhn[j] * tc[j] * o[j] * (T(1) - o[j]);
    for (int64_t j = 0; j < H; ++j) dcn[j] += dhn[j] * o[j] * (T(1) - tc[j] * tc[j]);
    for (int64_t j = 0; j < H; ++j) di[j] = dcn[j] * g[j] * i[j] * (T(1) - i[j]);
    for (int64_t j = 0; j < H; ++j) df[j] = dcn[j] * cp[j] * f[j] * (T(1) - f[j]);
    for (int64_t j = 0; j < H; ++j) dg[j] = dcn[j] * i[j] * (T(1) - g[j] * g[j]);
    for (int64_t j = 0; j < H; ++j) dcn[j] *= f[j];  // dL/dc_{t-1}
  }
}

// ---- GRU -------------------------------------------------------------------------------

// gates: input half (W_ih x + b_ih) in, activations (r, z, n) out; gh: W_hh h + b_hh.
template <typename T>
inline void gru_forward_rows(int64_t rows, int64_t H, T* gates, const T* gh, const T* h_prev,
                             T* h, T* hidden_n) {
  for (int64_t n = 0; n < rows; ++n) {
    // Each gate is written only through its own (restrict) pointer.
    T* __restrict r = gates + n * 3 * H;
    T* __restrict z = r + H;
    T* __restrict a = r + 2 * H;
    const T* __restrict ghr = gh + n * 3 * H;
    const T* __restrict ghz = ghr + H;
    const T* __restrict ghn = ghr + 2 * H;
    const T* __restrict hp = h_prev + n * H;
    T* __restrict hn = h + n * H;
    T* __restrict hid = hidden_n + n * H;
    for (int64_t j = 0; j < H; ++j) r[j] = Act<T>::sigmoid(r[j] + ghr[j]);
    for (int64_t j = 0; j < H; ++j) z[j] = Act<T>::sigmoid(z[j] + ghz[j]);
    for (int64_t j = 0; j < H; ++j) hid[j] = ghn[j];
    for (int64_t j = 0; j < H; ++j) a[j] = Act<T>::tanh(a[j] + r[j] * ghn[j]);
    for (int64_t j = 0; j < H; ++j) hn[j] = a[j] + z[j] * (hp[j] - a[j]);
  }
}

// dh: dL/dh_t (from the outputs and W_hh^T of the later step's deltas) in, plus the direct
// path through the later step's z; d_in: the deltas of the input half (r, z, n); d_hn: of
// the hidden half's n part (its r and z parts are d_in's). dh_later: out, what reaches this
// step's h~ (all of dh without zoneout). With zoneout (keep: d_t's rows, else null) dh is
// split first: zc = d dh passes straight to h_{t-1}, (1 - d) dh reaches h~.
template <typename T>
inline void gru_backward_rows(int64_t rows, int64_t H, const T* act, const T* hidden_n,
                              const T* h_prev, T* dh, T* dh_later, const T* z_later, T* d_in,
                              T* d_hn, const uint8_t* ends, const T* gh_n,
                              const T* keep = nullptr, T* zc = nullptr) {
  for (int64_t n = 0; n < rows; ++n) {
    const T* __restrict r = act + n * 3 * H;
    const T* __restrict z = r + H;
    const T* __restrict a = r + 2 * H;
    const T* __restrict hid = hidden_n + n * H;
    const T* __restrict hp = h_prev + n * H;
    T* __restrict dhn = dh + n * H;
    T* __restrict dl = dh_later + n * H;
    T* __restrict dir = d_in + n * 3 * H;
    T* __restrict diz = dir + H;
    T* __restrict din = dir + 2 * H;
    T* __restrict dhh = d_hn + n * H;
    add_if_last(ends[n], gh_n, n, H, dhn);
    if (z_later) {
      const T* __restrict zl = z_later + n * 3 * H;
      for (int64_t j = 0; j < H; ++j) dhn[j] += dl[j] * zl[j];
    }
    if (keep) {
      const T* __restrict kn = keep + n * H;
      T* __restrict zn = zc + n * H;
      for (int64_t j = 0; j < H; ++j) zn[j] = kn[j] * dhn[j];
      for (int64_t j = 0; j < H; ++j) dhn[j] -= zn[j];
    }
    for (int64_t j = 0; j < H; ++j) din[j] = dhn[j] * (T(1) - z[j]) * (T(1) - a[j] * a[j]);
    for (int64_t j = 0; j < H; ++j) diz[j] = dhn[j] * (hp[j] - a[j]) * z[j] * (T(1) - z[j]);
    for (int64_t j = 0; j < H; ++j) dir[j] = din[j] * hid[j] * r[j] * (T(1) - r[j]);
    for (int64_t j = 0; j < H; ++j) dhh[j] = din[j] * r[j];
    for (int64_t j = 0; j < H; ++j) dl[j] = dhn[j];
  }
}

// ---- the time loops --------------------------------------------------------------------

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Register blocks of the hand-written GEMMs: R rows x NV vectors of the output held in vector
// registers over all of K, NV = 3, 2 or 1 (the widest that fits the columns left):
// each load of b's row feeds R rows, each broadcast of a feeds C columns. 8 x 3 vectors
// (24 of AVX-512's 32 registers) is the widest block that leaves registers for the loads;
// it beat 8 x 2 (seqmodels-bench cell=lstm; docs/dev/performance.md). AVX2 has 16.
#ifdef __AVX512F__
constexpr int64_t kVectorBytes = 64, kBlockRows = 8;
#else
constexpr int64_t kVectorBytes = 32, kBlockRows = 4;
#endif

// GCC's vector of kVectorBytes of T (the attribute needs a concrete type, not a template's).
template <typename T>
struct VectorOf;
template <>
struct VectorOf<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VectorOf<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};

// One register block: out rows [n, n + R) x columns [j0, j0 + NV vectors) += a (rows lda
// apart) @ b (K, M), its accumulators in vector registers over all of K. GCC's vector types,
// not loops left to the auto-vectoriser: given `for j < 16`, it vectorised across the rows
// instead, with permutes, an order of magnitude slower.
template <typename T, int64_t R, int64_t NV>
inline void matmul_block(int64_t n, int64_t j0, int64_t K, int64_t M, const T* a, int64_t lda,
                         const T* b, T* out) {
  using Vec = typename VectorOf<T>::type;
  constexpr int64_t V = kVectorBytes / sizeof(T);
  Vec acc[R][NV];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t v = 0; v < NV; ++v)
      std::memcpy(&acc[r][v], out + (n + r) * M + j0 + v * V, sizeof(Vec));
  for (int64_t k = 0; k < K; ++k) {
    const T* bk = b + k * M + j0;
    Vec bv[NV];
    for (int64_t v = 0; v < NV; ++v) std::memcpy(&bv[v], bk + v * V, sizeof(Vec));
    for (int64_t r = 0; r < R; ++r) {
      const T s = a[(n + r) * lda + k];
      for (int64_t v = 0; v < NV; ++v) acc[r][v] += bv[v] * s;
    }
  }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t v = 0; v < NV; ++v)
      std::memcpy(out + (n + r) * M + j0 + v * V, &acc[r][v], sizeof(Vec));
}

// The columns [j0, M) of out += a @ b in blocks NV vectors wide; returns where the columns
// it could not fill start.
template <typename T, int64_t NV>
int64_t matmul_blocks(int64_t j0, int64_t N, int64_t K, int64_t M, const T* a, int64_t lda,
                      const T* b, T* out) {
  constexpr int64_t C = NV * (kVectorBytes / sizeof(T));
  for (; j0 + C <= M; j0 += C) {
    int64_t n = 0;
    for (; n + kBlockRows <= N; n += kBlockRows)
      matmul_block<T, kBlockRows, NV>(n, j0, K, M, a, lda, b, out);
    for (; n < N; ++n)  // the last rows, one at a time
      matmul_block<T, 1, NV>(n, j0, K, M, a, lda, b, out);
  }
  return j0;
}

// out (N, M) += a (N, K; rows lda apart) @ b (K, M) in register blocks 3, 2, then 1 vector
// wide, and the last, narrower columns one row at a time. Single-threaded: it is what each
// row-block thread runs (over_row_blocks).
template <typename T>
void matmul_panels(int64_t N, int64_t K, int64_t M, const T* a, int64_t lda, const T* b,
                   T* out) {
  int64_t j0 = matmul_blocks<T, 3>(0, N, K, M, a, lda, b, out);
  j0 = matmul_blocks<T, 2>(j0, N, K, M, a, lda, b, out);
  j0 = matmul_blocks<T, 1>(j0, N, K, M, a, lda, b, out);
  for (int64_t n = 0; n < N && j0 < M; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const T s = a[n * lda + k];
      for (int64_t j = j0; j < M; ++j) out[n * M + j] += s * b[k * M + j];
    }
}

// out (N, M) += a (N, K; rows lda apart) @ b (K, M), K in slices of kPanelDepth so that a
// slice of b's block columns stays in L1 across the row blocks.
constexpr int64_t kPanelDepth = 256;

template <typename T>
void add_matmul_panels(int64_t N, int64_t K, int64_t M, const T* a, int64_t lda, const T* b,
                       T* out) {
  for (int64_t k0 = 0; k0 < K; k0 += kPanelDepth)
    matmul_panels<T>(N, std::min(kPanelDepth, K - k0), M, a + k0, lda, b + k0 * M, out);
}

// out (N, M) += a (N, K; rows lda apart) @ b (K, M), row-major. Small products (batch 1,
// say) run as plain loops: a BLAS call's fixed cost (with the tensor views it needs) is
// more than the product itself. Larger ones go to ATen's addmm_ (MKL/OpenBLAS), or to
// MKL's packed GEMM when b comes `packed` (pack_step_weight), except inside a row-block
// thread (`own`): BLAS there would start its own thread team on cores that are already
// busy, so those run the panel loops above, K in slices of kPanelDepth.
constexpr int64_t kBlasMinProduct = 65536;  // N K M above which a product leaves plain loops

template <typename T>
void add_matmul(int64_t N, int64_t K, int64_t M, const T* a, int64_t lda, const T* b, T* out,
                bool own = false, const at::Tensor& packed = at::Tensor()) {
  if (own && N * K * M > kBlasMinProduct) {
    add_matmul_panels(N, K, M, a, lda, b, out);
    return;
  }
  if (N * K * M <= kBlasMinProduct) {
    // Column blocks of 64: a block's accumulators stay in vector registers over all of K,
    // so `out` is read and written once instead of K times.
    constexpr int64_t C = 64;
    for (int64_t n = 0; n < N; ++n) {
      const T* __restrict an = a + n * lda;
      T* __restrict o = out + n * M;
      int64_t j0 = 0;
      for (; j0 + C <= M; j0 += C) {
        T acc[C];
        for (int64_t j = 0; j < C; ++j) acc[j] = o[j0 + j];
        for (int64_t k = 0; k < K; ++k) {
          const T s = an[k];
          const T* __restrict bk = b + k * M + j0;
          for (int64_t j = 0; j < C; ++j) acc[j] += s * bk[j];
        }
        for (int64_t j = 0; j < C; ++j) o[j0 + j] = acc[j];
      }
      for (int64_t k = 0; k < K && j0 < M; ++k) {  // the last, narrower block
        const T s = an[k];
        const T* __restrict bk = b + k * M;
        for (int64_t j = j0; j < M; ++j) o[j] += s * bk[j];
      }
    }
    return;
  }
#ifdef SEQMODELS_MKL_PACKED
  if constexpr (std::is_same_v<T, float>) {
    if (packed.defined()) {  // b, packed once by pack_step_weight: MKL skips packing it again
      cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, N, M, K, a, lda, packed.data_ptr<float>(),
                          M, 1.0f, out, M);
      return;
    }
  }
#endif
  auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor o = at::from_blob(out, {N, M}, options);
  o.addmm_(at::from_blob(const_cast<T*>(a), {N, K}, {lda, 1}, options),
           at::from_blob(const_cast<T*>(b), {K, M}, options));
}

// ---- threads over independent rows ------------------------------------------------------

// Each sequence's recursion reads only its own rows, so the batch splits into row blocks
// that run the WHOLE time loop each, on their own thread, with no synchronisation per step
// (a per-step parallel GEMM synchronises twice a step, and leaves the element-wise pass on
// one core). The threads are torch's own OpenMP team (at::parallel_for; the build links the
// libgomp that torch loaded), so they never compete with torch's threads spinning after a
// GEMM. This pays while each thread's copy of W_hh stays in its core's L2; a larger W_hh, a
// small batch or one thread runs as one block with ATen's (parallel) GEMM (kMinRowsPerThread:
// loops_common.h).
constexpr int64_t kMaxThreadedWeightBytes = 512 * 1024;

// Rows per block of a batch of N with this recurrent weight: N (one block, not threaded)
// unless the loops run in row blocks on torch's threads.
int64_t rows_per_block(int64_t N, int64_t weight_bytes) {
  const int64_t parts = std::min<int64_t>(at::get_num_threads(), N / kMinRowsPerThread);
  if (parts < 2 || weight_bytes > kMaxThreadedWeightBytes || at::in_parallel_region()) return N;
  // Blocks of whole register blocks (8 rows) where the batch allows: fewer leftover rows.
  return ((N + parts - 1) / parts + 7) / 8 * 8;
}

// The step GEMM's weight b (K, M), row-major, packed once into MKL's internal layout, for
// add_matmul: every step multiplies by the same b, and MKL's sgemm otherwise packs it
// again on each call (a 4 MB copy per step at hidden 512). Undefined (nothing to
// gain) where the steps do not run on BLAS (row blocks, or small products), for float64,
// without MKL, and for weights under kMaxThreadedWeightBytes: MKL's packed copy carries
// ~7.5 MiB of its own, which costs a small weight more memory and time than packing saves
// (seqmodels-bench cell=gru; docs/dev/performance.md, "Packed step weights").
// `row_blocks`: whether the loop may split the batch (the LSTM's; the GRU's never does).
at::Tensor pack_step_weight(at::Tensor b, int64_t N, bool row_blocks) {
  check(b, "pack_step_weight weight");
  TORCH_CHECK(b.dim() == 2, "pack_step_weight: weight must be 2-D, got ", b.dim(), "-D");
  const int64_t K = b.size(0), M = b.size(1), weight_bytes = b.numel() * b.element_size();
  const bool one_block = !row_blocks || rows_per_block(N, weight_bytes) >= N;
  const bool blas_steps = one_block && N * K * M > kBlasMinProduct;  // as add_matmul decides
  const bool large = weight_bytes >= kMaxThreadedWeightBytes;
  if (b.scalar_type() != at::kFloat || !packed_gemm_available() || !blas_steps || !large)
    return {};
#ifdef SEQMODELS_MKL_PACKED
  const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, N, M, K);
  at::Tensor packed = at::empty({static_cast<int64_t>((bytes + 3) / 4)}, b.options());
  cblas_sgemm_pack(kRowMajor, kBMatrix, kNoTrans, N, M, K, 1.0f, b.data_ptr<float>(), M,
                   packed.data_ptr<float>());
  return packed;
#else
  return {};
#endif
}

// How many blocks of `rows` rows cover a batch of N (one for an empty batch).
int64_t block_count(int64_t N, int64_t rows) { return rows >= N ? 1 : (N + rows - 1) / rows; }

// body(p, n0, n1, own): block p, rows [n0, n1); own = on a row-block thread (add_matmul).
template <typename F>
void over_row_blocks(int64_t N, int64_t weight_bytes, const F& body) {
  const int64_t rows = rows_per_block(N, weight_bytes);
  const int64_t blocks = block_count(N, rows);
  if (blocks == 1) {
    body(0, 0, N, false);
    return;
  }
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t stop) {
    for (int64_t p = first; p < stop; ++p) body(p, p * rows, std::min(N, (p + 1) * rows), true);
  });
}

// f(n0, n1) over rows [0, N): one step's element-wise pass, split over torch's threads when
// the step runs as one block (its GEMM was ATen's, on all threads) and has rows enough.
template <typename F>
void parallel_rows(int64_t N, bool own, const F& f) {
  if (own || N < 2 * kMinRowsPerThread) {
    f(0, N);
    return;
  }
  at::parallel_for(0, N, kMinRowsPerThread, f);
}

// Rows [0, N) of `ends`: whose sequence's last processed step is t (last: the same rows).
void ends_at(const int64_t* last, int64_t N, int64_t t, uint8_t* ends) {
  for (int64_t n = 0; n < N; ++n) ends[n] = last[n] == t;
}

// rows (N, M) += bias (M) in every row; nothing without a bias.
template <typename T>
void add_bias(int64_t N, int64_t M, const T* bias, T* rows) {
  if (!bias) return;
  for (int64_t n = 0; n < N; ++n) {
    T* r = rows + n * M;
    for (int64_t j = 0; j < M; ++j) r[j] += bias[j];
  }
}

// gates (T,N,4H) W_ih x without bias -> activations; fills out and cells (T,N,H). The bias
// (b_ih + b_hh, or none) is added in each step's activation pass: a bias in the
// whole-sequence projection, or a pass of its own per step, costs a pass over the gates.
// With recurrent dropout the step GEMM reads m h_{t-1}; with zoneout each step's h is
// mixed with h_{t-1} in place, h = h~ + d (h_{t-1} - h~) (backward reads no h~).
void lstm_forward(at::Tensor gates, at::Tensor h0, at::Tensor c0, at::Tensor w_hh_t,
                  std::optional<at::Tensor> bias_, at::Tensor out, at::Tensor cells,
                  bool reverse, std::optional<at::Tensor> packed_,
                  std::optional<at::Tensor> mask_, std::optional<at::Tensor> keep_) {
  at::Tensor bias = bias_.value_or(at::Tensor());
  const at::Tensor packed = packed_.value_or(at::Tensor());  // w_hh_t's, or undefined
  for (auto* t : {&gates, &h0, &c0, &w_hh_t, &out, &cells}) check(*t, "lstm_forward argument");
  if (bias.defined()) check(bias, "lstm_forward bias");
  const int64_t N = out.size(1), H = out.size(2);
  const std::vector<int64_t> order = processing_order(out.size(0), reverse);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    const scalar_t* w = ptr<scalar_t>(w_hh_t);
    std::vector<scalar_t> zeros(bias.defined() ? 0 : 4 * H, scalar_t(0));
    const scalar_t* b_sum = bias.defined() ? ptr<scalar_t>(bias) : zeros.data();
    const Regularised<scalar_t> reg(mask_, keep_, out.size(0), N, H);
    over_row_blocks(N, w_hh_t.numel() * sizeof(scalar_t), [&](int64_t, int64_t n0, int64_t n1, bool own) {
      const int64_t rows = n1 - n0;
      const scalar_t *h = ptr<scalar_t>(h0) + n0 * H, *c = ptr<scalar_t>(c0) + n0 * H;
      const scalar_t* m = reg.mask_rows(n0);
      std::vector<scalar_t> masked(m ? rows * H : 0);  // m h_{t-1}, what the GEMM reads
      for (int64_t t : order) {
        scalar_t* g = ptr<scalar_t>(gates) + (t * N + n0) * 4 * H;
        scalar_t* h_t = ptr<scalar_t>(out) + (t * N + n0) * H;
        scalar_t* c_t = ptr<scalar_t>(cells) + (t * N + n0) * H;
        const scalar_t* h_in = h;
        if (m) {
          for (int64_t j = 0; j < rows * H; ++j) masked[j] = m[j] * h[j];
          h_in = masked.data();
        }
        add_matmul(rows, H, 4 * H, h_in, H, w, g, own, packed);  // (rows, 4H) += (rows, H) @ (H, 4H)
        const scalar_t* d = reg.keep_rows(t, n0);
        parallel_rows(rows, own, [&](int64_t a, int64_t b) {
          lstm_forward_rows<scalar_t>(b - a, H, g + a * 4 * H, b_sum, c + a * H, c_t + a * H,
                                      h_t + a * H);
          if (d)  // zoneout: h = h~ + d (h_{t-1} - h~)
            for (int64_t j = a * H; j < b * H; ++j) h_t[j] += d[j] * (h[j] - h_t[j]);
        });
        h = h_t, c = c_t;
      }
    });
  });
}

// One chunk of the LSTM's backward: the steps t in [s, e), walked backwards through the
// forward pass (e-1 down to s; s up to e-1 when `reverse`), and their terms of every
// gradient. `carry` (N, H): in, W_hh^T δ of the step walked just before this chunk (zeros
// for the first chunk); out, W_hh^T δ of this chunk's last walked step (after the last
// chunk: dL/dh_0). `dc` (N, H): dL/dc, in and out.
//
// Each row block (over_row_blocks) keeps its deltas, and the rows of x and of h_{t-1} they
// multiply, in its own contiguous (k rows, .) region of `deltas` / its gather buffers, so
// after its walk it adds its terms as single-threaded BLAS GEMMs on data its own core just
// wrote (in its L2 when the chunk is small), not as one parallel GEMM that reads every
// delta back across cores: grad_w_ih += δ^T x, grad_w_hh += δ^T h_prev, grad_x rows = δ W_ih.
// grad_b += Σ δ is summed inside the walk. The blocks' weight terms are added in block
// order, so the sums are the same on every run. Padded steps' (after a sequence's `last`
// step) deltas are exactly zero. `deltas`: scratch of at least (e-s) N 4H values.
//
// With recurrent dropout (m) and zoneout (d_t), as lstm_forward runs them: the recurrent
// path to h_{t-1} is m W_hh^T δ_t and zoneout's is d_t dh_t, so `carry` holds their sum;
// dW_hh multiplies the deltas by m h_{t-1}; the gates see (1 - d_t) dh_t.
void lstm_backward_chunk(at::Tensor act, at::Tensor cells, at::Tensor c0, at::Tensor weight_hh,
                         std::optional<at::Tensor> grad_out_, std::optional<at::Tensor> grad_h_n_,
                         std::optional<at::Tensor> grad_c_n_, at::Tensor last, bool reverse,
                         int64_t s, int64_t e, at::Tensor deltas, at::Tensor carry,
                         at::Tensor dc, at::Tensor x, at::Tensor states, at::Tensor h0,
                         at::Tensor weight_ih, std::optional<at::Tensor> grad_x_,
                         std::optional<at::Tensor> grad_w_ih_,
                         std::optional<at::Tensor> grad_w_hh_, std::optional<at::Tensor> grad_b_,
                         std::optional<at::Tensor> packed_, std::optional<at::Tensor> mask_,
                         std::optional<at::Tensor> keep_) {
  auto get = [](const std::optional<at::Tensor>& t) { return t.value_or(at::Tensor()); };
  const at::Tensor packed = get(packed_);  // weight_hh's (pack_step_weight), or undefined
  at::Tensor grad_out = get(grad_out_), grad_h_n = get(grad_h_n_), grad_c_n = get(grad_c_n_);
  at::Tensor grad_x = get(grad_x_), grad_w_ih = get(grad_w_ih_), grad_w_hh = get(grad_w_hh_);
  at::Tensor grad_b = get(grad_b_);
  for (auto* t : {&act, &cells, &c0, &weight_hh, &deltas, &carry, &dc, &x, &states, &h0,
                  &weight_ih})
    check(*t, "lstm_backward_chunk argument");
  for (auto* t : {&grad_h_n, &grad_c_n, &grad_x, &grad_w_ih, &grad_w_hh, &grad_b})
    if (t->defined()) check(*t, "lstm_backward_chunk gradient");
  if (grad_out.defined()) check(grad_out, "lstm_backward_chunk output gradient", false);
  const int64_t T = cells.size(0), N = cells.size(1), H = cells.size(2), G = 4 * H;
  const int64_t I = x.size(2), k = e - s;
  TORCH_CHECK(0 <= s && s < e && e <= T && deltas.numel() >= k * N * G,
              "lstm_backward_chunk: steps [", s, ", ", e, ") do not fit ", T, " steps and ",
              deltas.numel(), " delta values");
  const int64_t walk = reverse ? 1 : -1;  // direction of the backward walk in t
  const int64_t first = reverse ? s : e - 1, initial = reverse ? T - 1 : 0;
  const int64_t weight_bytes = weight_hh.numel() * weight_hh.element_size();
  const int64_t blocks = block_count(N, rows_per_block(N, weight_bytes));
  // Each block's terms of grad_w_ih, grad_w_hh (its own GEMMs' results) and grad_b.
  std::vector<at::Tensor> ih_terms(blocks), hh_terms(blocks);
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "lstm_backward_chunk", [&] {
    const scalar_t* w = ptr<scalar_t>(weight_hh);
    std::vector<std::vector<scalar_t>> bias_sums(blocks);
    const Regularised<scalar_t> reg(mask_, keep_, T, N, H);
    over_row_blocks(N, weight_bytes, [&](int64_t p, int64_t n0, int64_t n1, bool own) {
      // The ATen calls below compute values only. Grad mode is per thread and on in a fresh
      // OpenMP thread: without this guard an mm with a parameter records a graph node there,
      // and under detect_anomaly that node waits for the GIL that the caller holds (a hang).
      at::AutoDispatchBelowADInplaceOrView values_only;
      const int64_t rows = n1 - n0;
      std::vector<uint8_t> ends(rows);
      // This block's (k, rows, .) regions: step t's rows at (t - s) * rows.
      scalar_t* d = ptr<scalar_t>(deltas) + k * n0 * G;
      // x_t and h_{t-1} rows, gathered only for the weight gradient that multiplies them.
      at::Tensor xs = grad_w_ih.defined() ? at::empty({k * rows, I}, x.options()) : at::Tensor();
      at::Tensor hs = grad_w_hh.defined() ? at::empty({k * rows, H}, x.options()) : at::Tensor();
      scalar_t *xs_p = ptr<scalar_t>(xs), *hs_p = ptr<scalar_t>(hs);
      scalar_t* carry_rows = ptr<scalar_t>(carry) + n0 * H;
      std::vector<scalar_t> dh(rows * H);  // dL/dh_t of this block's rows
      scalar_t* dhp = dh.data();
      scalar_t* dcp = ptr<scalar_t>(dc) + n0 * H;
      const scalar_t *a = ptr<scalar_t>(act) + n0 * G, *c = ptr<scalar_t>(cells) + n0 * H;
      const scalar_t* gh_n = grad_h_n.defined() ? ptr<scalar_t>(grad_h_n) + n0 * H : nullptr;
      const scalar_t* gc_n = grad_c_n.defined() ? ptr<scalar_t>(grad_c_n) + n0 * H : nullptr;
      const int64_t* last_rows = last.data_ptr<int64_t>() + n0;
      std::vector<scalar_t>& bias_sum = bias_sums[p];
      bias_sum.assign(grad_b.defined() ? G : 0, scalar_t(0));
      const scalar_t* m = reg.mask_rows(n0);
      std::vector<scalar_t> through(m ? rows * H : 0);  // W_hh^T δ, before the mask
      std::vector<scalar_t> zc(reg.keep ? rows * H : 0);  // d dh of the later step
      // dL/dh_{t-1} from step t: m W_hh^T δ_t (+ d_t dh_t, zc, with zoneout) into `to`.
      auto add_recurrent = [&](const scalar_t* delta, scalar_t* to) {
        if (!m) {
          add_matmul(rows, G, H, delta, G, w, to, own, packed);  // (rows, H) += (rows, 4H) @ (4H, H)
        } else {
          std::fill(through.begin(), through.end(), scalar_t(0));
          add_matmul(rows, G, H, delta, G, w, through.data(), own, packed);
          for (int64_t j = 0; j < rows * H; ++j) to[j] += m[j] * through[j];
        }
        if (!zc.empty())
          for (int64_t j = 0; j < rows * H; ++j) to[j] += zc[j];
      };
      for (int64_t t = first; t >= s && t < e; t += walk) {
        start_dh(dhp, grad_out, t, n0, rows, H);
        if (t == first) {  // + what the later step passed back, from the previous chunk
          for (int64_t j = 0; j < rows * H; ++j) dhp[j] += carry_rows[j];
        } else {
          add_recurrent(d + (t - walk - s) * rows * G, dhp);
        }
        const scalar_t* c_prev = t == initial ? ptr<scalar_t>(c0) + n0 * H : c + (t + walk) * N * H;
        ends_at(last_rows, rows, t, ends.data());
        const scalar_t *a_t = a + t * N * G, *c_t = c + t * N * H;
        scalar_t* d_t = d + (t - s) * rows * G;
        const scalar_t* keep_t = reg.keep_rows(t, n0);
        parallel_rows(rows, own, [&](int64_t r0, int64_t r1) {
          std::vector<scalar_t> scratch(H);
          lstm_backward_rows<scalar_t>(r1 - r0, H, a_t + r0 * G, c_t + r0 * H, c_prev + r0 * H,
                                       dhp + r0 * H, dcp + r0 * H, d_t + r0 * G,
                                       ends.data() + r0, gh_n ? gh_n + r0 * H : nullptr,
                                       gc_n ? gc_n + r0 * H : nullptr, scratch.data(),
                                       keep_t ? keep_t + r0 * H : nullptr,
                                       keep_t ? zc.data() + r0 * H : nullptr);
        });
        if (!reverse)  // padded steps (after a sequence's last) pass nothing
          for (int64_t r = 0; r < rows; ++r)
            if (t > last_rows[r]) std::memset(d_t + r * G, 0, G * sizeof(scalar_t));
        if (!bias_sum.empty()) {  // columns split over torch's threads outside row blocks
          auto add_columns = [&](int64_t j0, int64_t j1) {
            for (int64_t r = 0; r < rows; ++r)
              add_bias(1, j1 - j0, d_t + r * G + j0, bias_sum.data() + j0);
          };
          if (own || rows * G < 16384) {
            add_columns(0, G);
          } else {
            at::parallel_for(0, G, 256, add_columns);
          }
        }
        // The rows the step's deltas multiply in the weight gradients, next to its deltas.
        if (xs_p)
          std::memcpy(xs_p + (t - s) * rows * I, ptr<scalar_t>(x) + (t * N + n0) * I,
                      rows * I * sizeof(scalar_t));
        if (hs_p) {
          const scalar_t* h_prev = t == initial ? ptr<scalar_t>(h0) + n0 * H
                                                : ptr<scalar_t>(states) + ((t + walk) * N + n0) * H;
          scalar_t* hs_t = hs_p + (t - s) * rows * H;
          if (m) {  // what the step GEMM read: m h_{t-1}
            for (int64_t j = 0; j < rows * H; ++j) hs_t[j] = m[j] * h_prev[j];
          } else {
            std::memcpy(hs_t, h_prev, rows * H * sizeof(scalar_t));
          }
        }
      }
      // carry out: what the last walked step (the one nearest the sequence start) passes to
      // the step before it, W_hh^T delta (masked, plus zoneout's part).
      const int64_t last_walked = reverse ? e - 1 : s;
      std::memset(carry_rows, 0, rows * H * sizeof(scalar_t));
      add_recurrent(d + (last_walked - s) * rows * G, carry_rows);
      // This block's weight terms: BLAS, single-threaded on a row-block thread.
      at::Tensor d_block = at::from_blob(d, {k * rows, G}, x.options());
      if (grad_w_ih.defined()) ih_terms[p] = at::mm(d_block.t(), xs);
      if (grad_w_hh.defined()) hh_terms[p] = at::mm(d_block.t(), hs);
      if (grad_x.defined()) {  // rows of dx = δ W_ih, back into grad_x's time-major rows
        at::Tensor dx = at::mm(d_block, weight_ih);  // (k rows, I)
        const scalar_t* dx_p = ptr<scalar_t>(dx);
        for (int64_t t = s; t < e; ++t)
          std::memcpy(ptr<scalar_t>(grad_x) + (t * N + n0) * I, dx_p + (t - s) * rows * I,
                      rows * I * sizeof(scalar_t));
      }
    });
    if (grad_b.defined())  // in block order: the same sum on every run
      for (const auto& part : bias_sums) add_bias(1, G, part.data(), ptr<scalar_t>(grad_b));
  });
  for (int64_t p = 0; p < blocks; ++p) {
    if (grad_w_ih.defined() && ih_terms[p].defined()) grad_w_ih.add_(ih_terms[p]);
    if (grad_w_hh.defined() && hh_terms[p].defined()) grad_w_hh.add_(hh_terms[p]);
  }
}

// gates (T,N,3H) W_ih x without bias -> activations (r, z, n); fills out and hidden_n
// (T,N,H). Both biases are added here, per step (see lstm_forward). With recurrent dropout
// the step GEMM reads m h_{t-1} (z's direct path reads h_{t-1}); with zoneout h is mixed
// with h_{t-1} in place, as lstm_forward does.
void gru_forward(at::Tensor gates, at::Tensor h0, at::Tensor w_hh_t,
                 std::optional<at::Tensor> bias_ih_, std::optional<at::Tensor> bias_hh_,
                 at::Tensor out, at::Tensor hidden_n, bool reverse,
                 std::optional<at::Tensor> packed_, std::optional<at::Tensor> mask_,
                 std::optional<at::Tensor> keep_) {
  at::Tensor bias_ih = bias_ih_.value_or(at::Tensor());
  at::Tensor bias_hh = bias_hh_.value_or(at::Tensor());
  const at::Tensor packed = packed_.value_or(at::Tensor());  // w_hh_t's, or undefined
  for (auto* t : {&gates, &h0, &w_hh_t, &out, &hidden_n}) check(*t, "gru_forward argument");
  for (auto* t : {&bias_ih, &bias_hh})
    if (t->defined()) check(*t, "gru_forward bias");
  const int64_t N = out.size(1), H = out.size(2);
  at::Tensor gh_buffer = at::empty({N, 3 * H}, gates.options());
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_forward", [&] {
    const scalar_t *h = ptr<scalar_t>(h0), *w = ptr<scalar_t>(w_hh_t);
    const scalar_t* b = ptr<scalar_t>(bias_hh);
    scalar_t* gh = ptr<scalar_t>(gh_buffer);
    const Regularised<scalar_t> reg(mask_, keep_, out.size(0), N, H);
    std::vector<scalar_t> masked(reg.mask ? N * H : 0);  // m h_{t-1}, what the GEMM reads
    for (int64_t t : processing_order(out.size(0), reverse)) {
      for (int64_t n = 0; n < N; ++n) {  // gh = b_hh, then += (N, H) @ (H, 3H)
        if (b) {
          std::memcpy(gh + n * 3 * H, b, 3 * H * sizeof(scalar_t));
        } else {
          std::memset(gh + n * 3 * H, 0, 3 * H * sizeof(scalar_t));
        }
      }
      const scalar_t* h_in = h;
      if (reg.mask) {
        for (int64_t j = 0; j < N * H; ++j) masked[j] = reg.mask[j] * h[j];
        h_in = masked.data();
      }
      add_matmul(N, H, 3 * H, h_in, H, w, gh, false, packed);
      scalar_t* g = ptr<scalar_t>(gates) + t * N * 3 * H;
      add_bias(N, 3 * H, ptr<scalar_t>(bias_ih), g);
      scalar_t* h_t = ptr<scalar_t>(out) + t * N * H;
      gru_forward_rows<scalar_t>(N, H, g, gh, h, h_t, ptr<scalar_t>(hidden_n) + t * N * H);
      if (const scalar_t* d = reg.keep_rows(t, 0))  // zoneout: h = h~ + d (h_{t-1} - h~)
        for (int64_t j = 0; j < N * H; ++j) h_t[j] += d[j] * (h[j] - h_t[j]);
      h = h_t;
    }
  });
}

// Fills d_in (T,N,3H; the caller's buffer, huge-page advised when large): the deltas of
// the input half. Returns (d_in, the deltas of the hidden half's n part (T,N,H): its r and
// z parts are the input half's, so they are not stored twice; dL/dh of the first step
// processed before its direct path through z: the caller adds that; zoneout's share of
// dL/dh_0, d dh of that step, zeros without zoneout). With recurrent dropout, W_hh^T δ
// reaches h_{t-1} through m (the caller's weight gradients read m h_{t-1} likewise).
std::vector<at::Tensor> gru_backward(at::Tensor act, at::Tensor hidden_n, at::Tensor out,
                                     at::Tensor h0, at::Tensor weight_hh,
                                     std::optional<at::Tensor> grad_out_,
                                     std::optional<at::Tensor> grad_h_n_, at::Tensor last,
                                     bool reverse, at::Tensor d_in,
                                     std::optional<at::Tensor> packed_rz_,
                                     std::optional<at::Tensor> packed_n_,
                                     std::optional<at::Tensor> mask_,
                                     std::optional<at::Tensor> keep_) {
  // weight_hh's r, z rows (2H, H) and n rows (H, H), each packed, or undefined
  const at::Tensor packed_rz = packed_rz_.value_or(at::Tensor());
  const at::Tensor packed_n = packed_n_.value_or(at::Tensor());
  at::Tensor grad_out = grad_out_.value_or(at::Tensor());
  at::Tensor grad_h_n = grad_h_n_.value_or(at::Tensor());
  for (auto* t : {&act, &hidden_n, &out, &h0, &weight_hh, &d_in})
    check(*t, "gru_backward argument");
  TORCH_CHECK(d_in.sizes() == act.sizes() && d_in.scalar_type() == act.scalar_type(),
              "gru_backward: d_in must be like act ", act.sizes(), ", got ", d_in.sizes());
  if (grad_h_n.defined()) check(grad_h_n, "gru_backward gradient");
  if (grad_out.defined()) check(grad_out, "gru_backward output gradient", false);
  const int64_t T = out.size(0), N = out.size(1), H = out.size(2);
  at::Tensor d_hn = at::empty_like(out);
  at::Tensor dh = at::empty_like(h0), dh_later = at::zeros_like(h0), zc = at::zeros_like(h0);
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "gru_backward", [&] {
    const Regularised<scalar_t> reg(mask_, keep_, T, N, H);
    std::vector<scalar_t> through(reg.mask ? N * H : 0);  // W_hh^T δ, before the mask
    scalar_t* zcp = ptr<scalar_t>(zc);
    std::vector<uint8_t> ends(N);
    std::vector<int64_t> order = processing_order(T, reverse);
    scalar_t *di = ptr<scalar_t>(d_in), *dhn = ptr<scalar_t>(d_hn), *dhp = ptr<scalar_t>(dh);
    const scalar_t *a = ptr<scalar_t>(act), *o = ptr<scalar_t>(out), *w = ptr<scalar_t>(weight_hh);
    for (int64_t k = T - 1; k >= 0; --k) {
      const int64_t t = order[k];
      const scalar_t* z_later = nullptr;
      start_dh(dhp, grad_out, t, 0, N, H);
      if (k < T - 1) {  // + W_hh^T delta_{t+1}: (N, H) += (N, 3H) @ (3H, H), by parts
        const int64_t later = order[k + 1];
        scalar_t* to = reg.mask ? through.data() : dhp;
        if (reg.mask) std::fill(through.begin(), through.end(), scalar_t(0));
        add_matmul(N, 2 * H, H, di + later * N * 3 * H, 3 * H, w, to, false, packed_rz);
        add_matmul(N, H, H, dhn + later * N * H, H, w + 2 * H * H, to, false, packed_n);
        if (reg.mask)
          for (int64_t j = 0; j < N * H; ++j) dhp[j] += reg.mask[j] * through[j];
        if (reg.keep)  // + d_{t+1} dh_{t+1}: zoneout's path
          for (int64_t j = 0; j < N * H; ++j) dhp[j] += zcp[j];
        z_later = a + later * N * 3 * H + H;  // rows of 3H: r, z, n
      }
      const scalar_t* h_prev = k == 0 ? ptr<scalar_t>(h0) : o + order[k - 1] * N * H;
      ends_at(last.data_ptr<int64_t>(), N, t, ends.data());
      gru_backward_rows<scalar_t>(N, H, a + t * N * 3 * H, ptr<scalar_t>(hidden_n) + t * N * H,
                                  h_prev, dhp, ptr<scalar_t>(dh_later), z_later,
                                  di + t * N * 3 * H, dhn + t * N * H, ends.data(),
                                  ptr<scalar_t>(grad_h_n), reg.keep_rows(t, 0),
                                  reg.keep ? zcp : nullptr);
    }
  });
  return {d_in, d_hn, dh, zc};
}

}  // namespace

void register_bernoulli(pybind11::module_& m);         // bernoulli.cpp (regularisers' masks)
void register_diagonal_steps(pybind11::module_& m);   // diagonal_steps.cpp (IndRNN)
void register_elman_steps(pybind11::module_& m);      // elman_steps.cpp (Elman)
void register_layernorm_steps(pybind11::module_& m);  // layernorm_steps.cpp (LayerNorm LSTM)

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() =
      "seqmodels: compiled time loops of the Elman, LSTM, GRU, IndRNN and LayerNorm LSTM BPTT "
      "kernels";
  namespace py = pybind11;
  register_bernoulli(m);
  register_diagonal_steps(m);
  register_elman_steps(m);
  register_layernorm_steps(m);
  m.def("lstm_forward", &lstm_forward, py::arg("gates"), py::arg("h0"), py::arg("c0"),
        py::arg("w_hh_t"), py::arg("bias"), py::arg("out"), py::arg("cells"), py::arg("reverse"),
        py::arg("packed") = py::none(), py::arg("mask") = py::none(),
        py::arg("keep") = py::none());
  m.def("lstm_backward_chunk", &lstm_backward_chunk, py::arg("act"), py::arg("cells"),
        py::arg("c0"), py::arg("weight_hh"), py::arg("grad_out"), py::arg("grad_h_n"),
        py::arg("grad_c_n"), py::arg("last"), py::arg("reverse"), py::arg("s"), py::arg("e"),
        py::arg("deltas"), py::arg("carry"), py::arg("dc"), py::arg("x"), py::arg("states"),
        py::arg("h0"), py::arg("weight_ih"), py::arg("grad_x"), py::arg("grad_w_ih"),
        py::arg("grad_w_hh"), py::arg("grad_b"), py::arg("packed") = py::none(),
        py::arg("mask") = py::none(), py::arg("keep") = py::none());
  m.def("pack_step_weight", &pack_step_weight, py::arg("weight"), py::arg("batch"),
        py::arg("row_blocks") = true);
  m.def("gru_forward", &gru_forward, py::arg("gates"), py::arg("h0"), py::arg("w_hh_t"),
        py::arg("bias_ih"), py::arg("bias_hh"), py::arg("out"), py::arg("hidden_n"),
        py::arg("reverse"), py::arg("packed") = py::none(), py::arg("mask") = py::none(),
        py::arg("keep") = py::none());
  m.def("gru_backward", &gru_backward, py::arg("act"), py::arg("hidden_n"), py::arg("out"),
        py::arg("h0"), py::arg("weight_hh"), py::arg("grad_out"), py::arg("grad_h_n"),
        py::arg("last"), py::arg("reverse"), py::arg("d_in"), py::arg("packed_rz") = py::none(),
        py::arg("packed_n") = py::none(), py::arg("mask") = py::none(),
        py::arg("keep") = py::none());
}
