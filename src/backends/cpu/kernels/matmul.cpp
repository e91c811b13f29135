// matmul (OpenBLAS sgemm/dgemm; f16/bf16 through f32 panels), linear with plain or
// block-quantized weights, embedding.
//
// linear with a quantized weight never materializes the f32 weight matrix: for few rows of
// x (decode) each thread owns a range of output features and dots every weight row with the
// int8-quantized activations (M == 1: fused decode + dot per block; M > 1: the weight row
// decoded once into L1, reused for every activation row); for many rows, weight tiles of kTileN rows are
// dequantized into a buffer and multiplied with sgemm. Accumulation is f32 (FMA).
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/quant_blocks.h"
#include "backends/cpu/kernels/quant_dot.h"
#include "backends/cpu/kernels/quant_dot_rows.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

using namespace flagos::quant;

// OpenBLAS runs its own pool: call it from the calling thread only, sized like ours.
void blas_threads() {
  static int current = 0;
  const int n = num_threads();
  if (n != current) {
    openblas_set_num_threads(n);
    current = n;
  }
}

// ---------------------------------------------------------------- GEMM on strided 2-D views

struct View2 {
  const char* p;
  int64_t rows, cols, rs, cs;  // byte strides
};

// Describes a strided matrix as a BLAS operand (no copy) when possible.
template <typename T>
bool as_blas(const View2& v, CBLAS_TRANSPOSE& tr, int64_t& ld) {
  const int64_t sz = sizeof(T);
  const int64_t rs = v.rows == 1 ? v.cols * sz : v.rs, cs = v.cols == 1 ? sz : v.cs;
  if (cs == sz && rs % sz == 0 && rs / sz >= std::max<int64_t>(1, v.cols)) {
    tr = CblasNoTrans;
    ld = rs / sz;
    return true;
  }
  const int64_t rs2 = v.rows == 1 ? sz : v.rs, cs2 = v.cols == 1 ? v.rows * sz : v.cs;
  if (rs2 == sz && cs2 % sz == 0 && cs2 / sz >= std::max<int64_t>(1, v.rows)) {
    tr = CblasTrans;
    ld = cs2 / sz;
    return true;
  }
  return false;
}

template <typename S, typename T>
void pack(const View2& v, T* dst) {  // row-major contiguous copy, converted
  using C = typename Io<S>::compute;
  for (int64_t i = 0; i < v.rows; ++i)
    for (int64_t j = 0; j < v.cols; ++j) dst[i * v.cols + j] = static_cast<T>(static_cast<C>(Io<S>::load(v.p + i * v.rs + j * v.cs)));
}

template <typename T>
void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
               const T* B, int64_t ldb, T* C, int64_t ldc, T beta = T(0)) {
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, 1.f, A, (blasint)lda, B, (blasint)ldb, beta,
                C, (blasint)ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, 1.0, A, (blasint)lda, B, (blasint)ldb, beta,
                C, (blasint)ldc);
}

// C[M,N] = A[M,K] @ B[K,N], S the storage type, T the BLAS type (float for f16/bf16).
template <typename S, typename T>
void gemm2d(const View2& A, const View2& B, char* c, int64_t crs, int64_t ccs, std::vector<T>& scratch) {
  const int64_t M = A.rows, K = A.cols, N = B.cols;
  CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
  int64_t lda = K, ldb = N;
  const T* pa;
  const T* pb;
  size_t need = 0;
  const bool native = std::is_same_v<S, T>;
  const bool da = native && as_blas<T>(A, ta, lda), db = native && as_blas<T>(B, tb, ldb);
  if (!da) need += static_cast<size_t>(M * K);
  if (!db) need += static_cast<size_t>(K * N);
  CBLAS_TRANSPOSE tc;
  int64_t ldc = N;
  const View2 Cv{c, M, N, crs, ccs};
  const bool dc = native && as_blas<T>(Cv, tc, ldc) && tc == CblasNoTrans;
  if (!dc) need += static_cast<size_t>(M * N);
  if (scratch.size() < need) scratch.resize(need);
  T* s = scratch.data();
  if (da) {
    pa = reinterpret_cast<const T*>(A.p);
  } else {
    pack<S, T>(A, s);
    pa = s;
    s += M * K;
    ta = CblasNoTrans;
    lda = K;
  }
  if (db) {
    pb = reinterpret_cast<const T*>(B.p);
  } else {
    pack<S, T>(B, s);
    pb = s;
    s += K * N;
    tb = CblasNoTrans;
    ldb = N;
  }
  T* pc = dc ? reinterpret_cast<T*>(c) : s;
  if (!dc) ldc = N;
  blas_gemm<T>(ta, tb, M, N, K, pa, lda, pb, ldb, pc, ldc);
  if (!dc)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) Io<S>::store(c + i * crs + j * ccs, static_cast<typename Io<S>::compute>(pc[i * N + j]));
}

template <DType D>
void matmul_kernel(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using T = std::conditional_t<D == DType::f64, double, float>;
  const Tensor& A = *a.in[0];
  const Tensor& B = *a.in[1];
  Tensor& C = *a.out[0];
  blas_threads();
  const int nd = C.dim();
  const int64_t M = C.size(-2), N = C.size(-1), K = A.size(-1);
  int64_t nbatch = 1;
  for (int i = 0; i < nd - 2; ++i) nbatch *= C.size(i);
  std::vector<T> scratch;
  for (int64_t bi = 0; bi < nbatch; ++bi) {
    const char* pa = static_cast<const char*>(A.data());
    const char* pb = static_cast<const char*>(B.data());
    char* pc = static_cast<char*>(C.data());
    int64_t r = bi;
    for (int i = nd - 3; i >= 0; --i) {
      const int64_t k = r % C.size(i);
      r /= C.size(i);
      pa += k * A.stride(i);
      pb += k * B.stride(i);
      pc += k * C.stride(i);
    }
    gemm2d<S, T>(View2{pa, M, K, A.stride(-2), A.stride(-1)}, View2{pb, K, N, B.stride(-2), B.stride(-1)}, pc,
                 C.stride(-2), C.stride(-1), scratch);
  }
}

// ---------------------------------------------------------------- dequantize / dot helpers

template <DType W>
constexpr bool is_quant_v() {
  return static_cast<int>(W) >= static_cast<int>(DType::q8_0) && W != DType::count_;
}

#if defined(__AVX2__)
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

inline float dot_f32(const float* a, const float* b, int64_t n) {
#if defined(__AVX2__)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#else
  float s[8] = {};
  const int64_t n8 = n - n % 8;
  for (int64_t i = 0; i < n8; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  float t = 0;
  for (int64_t i = n8; i < n; ++i) t += a[i] * b[i];
  return t + ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
#endif
}

// One row of a weight matrix in f32 (plain or quantized).
template <DType W>
void dequant_weight_row(const char* row, int64_t rstride_el, float* y, int64_t K) {
  if constexpr (W == DType::f32) {
    std::memcpy(y, row, static_cast<size_t>(K) * 4);
  } else if constexpr (W == DType::f16) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= K; i += 8)
      _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i))));
#endif
    for (; i < K; ++i) y[i] = Io<f16>::load(row + 2 * i);
  } else if constexpr (W == DType::bf16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
    uint32_t* o = reinterpret_cast<uint32_t*>(y);
    for (int64_t i = 0; i < K; ++i) o[i] = static_cast<uint32_t>(h[i]) << 16;
  } else {
    visit_block_type(W, [&]<typename B>() { dequant_row<B>(row, y, K); });
  }
}

// Fused dot of one quantized weight row with f32 activations (M == 1 decode path).
template <DType W>
float dot_weight_row(const char* row, const float* x, int64_t K, float* tmp) {
#if defined(__AVX2__)
  if constexpr (W == DType::q8_0) {
    const int64_t nb = K / 32;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const char* blk = row + b * 34;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
      const float* xb = x + b * 32;
      __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)))),
                               _mm256_loadu_ps(xb));
      for (int k = 8; k < 32; k += 8)
        s = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + k)))),
            _mm256_loadu_ps(xb + k), s);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(dh)), s, acc);
    }
    return hsum(acc);
  } else if constexpr (W == DType::q4_k) {
    const int64_t nb = K / 256;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi32(0xF);
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ4K* blk = reinterpret_cast<const BlockQ4K*>(row + b * 144);
      const float d = h2f(blk->d), dmin = h2f(blk->dmin);
      const float* xb = x + b * 256;
      for (int c = 0; c < 4; ++c) {
        uint8_t sc0, m0, sc1, m1;
        qb_scale_min_k4(2 * c, blk->scales, &sc0, &m0);
        qb_scale_min_k4(2 * c + 1, blk->scales, &sc1, &m1);
        const uint8_t* q = blk->qs + 32 * c;
        const float* x0 = xb + 64 * c;
        const float* x1 = x0 + 32;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), xs0 = s0, xs1 = s0;
        for (int k = 0; k < 32; k += 8) {
          const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + k)));
          const __m256 a0 = _mm256_loadu_ps(x0 + k), a1 = _mm256_loadu_ps(x1 + k);
          s0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, m4)), a0, s0);
          s1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), a1, s1);
          xs0 = _mm256_add_ps(xs0, a0);
          xs1 = _mm256_add_ps(xs1, a1);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc0), s0, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc1), s1, acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * m0), xs0, acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * m1), xs1, acc);
      }
    }
    return hsum(acc);
  } else if constexpr (W == DType::q6_k) {
    const int64_t nb = K / 256;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi32(0xF), m3 = _mm256_set1_epi32(3), o32 = _mm256_set1_epi32(32);
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ6K* blk = reinterpret_cast<const BlockQ6K*>(row + b * 210);
      const float d = h2f(blk->d);
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = blk->ql + 64 * h;
        const uint8_t* qh = blk->qh + 32 * h;
        const int8_t* sc = blk->scales + 8 * h;
        const float* xb = x + b * 256 + 128 * h;
        for (int l = 0; l < 32; l += 8) {
          const int is = l / 16;
          const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l)));
          const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ql + l + 32)));
          const __m256i hh = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qh + l)));
          const __m256i q1 = _mm256_sub_epi32(
              _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi32(_mm256_and_si256(hh, m3), 4)), o32);
          const __m256i q2 = _mm256_sub_epi32(
              _mm256_or_si256(_mm256_and_si256(c, m4),
                              _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hh, 2), m3), 4)), o32);
          const __m256i q3 = _mm256_sub_epi32(
              _mm256_or_si256(_mm256_srli_epi32(a, 4),
                              _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hh, 4), m3), 4)), o32);
          const __m256i q4 = _mm256_sub_epi32(
              _mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_slli_epi32(_mm256_srli_epi32(hh, 6), 4)), o32);
          __m256 t = _mm256_mul_ps(_mm256_set1_ps(d * sc[is]), _mm256_cvtepi32_ps(q1));
          acc = _mm256_fmadd_ps(t, _mm256_loadu_ps(xb + l), acc);
          t = _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 2]), _mm256_cvtepi32_ps(q2));
          acc = _mm256_fmadd_ps(t, _mm256_loadu_ps(xb + l + 32), acc);
          t = _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 4]), _mm256_cvtepi32_ps(q3));
          acc = _mm256_fmadd_ps(t, _mm256_loadu_ps(xb + l + 64), acc);
          t = _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 6]), _mm256_cvtepi32_ps(q4));
          acc = _mm256_fmadd_ps(t, _mm256_loadu_ps(xb + l + 96), acc);
        }
      }
    }
    return hsum(acc);
  }
#endif
  // Generic: one block at a time through a small buffer.
  float s = 0.f;
  if constexpr (is_quant_v<W>()) {
    visit_block_type(W, [&]<typename B>() {
      constexpr int BN = BlockTraits<B>::n;
      for (int64_t b = 0; b < K / BN; ++b) {
        dequant_row<B>(row + b * static_cast<int64_t>(sizeof(B)), tmp, BN);
        s += dot_f32(tmp, x + b * BN, BN);
      }
    });
  } else {
    dequant_weight_row<W>(row, 1, tmp, K);
    s = dot_f32(tmp, x, K);
  }
  return s;
}

// ---------------------------------------------------------------- linear

constexpr int64_t kInt8M = 64;   // quantized weights, up to this many rows: int8 dots
constexpr int64_t kSmallM = 8;   // up to this many activation rows: per-row dot products
constexpr int64_t kTileN = 256;  // weight rows dequantized per sgemm call otherwise

// y[m, n] = dot(w[n], x[m]) with x quantized to int8 blocks once per call (quant_dot.h). Each
// thread owns a range of output features; every weight row is read from memory once. One row
// of x: fused decode + dot per block (vec_dot). More rows: the weight row is decoded once into
// L1 (quant_dot_rows.h) and dotted with kRowBlock activation rows per level load.
template <DType WD>
void linear_q8(const float* xf, int64_t ldx, int64_t M, int64_t K, const char* wbase, int64_t wrs, int64_t N,
               float* yf) {
  visit_block_type(WD, [&]<typename B>() {
    using A = typename qdot::ActOf<B>::type;
    constexpr int BN = BlockTraits<B>::n;
    constexpr int RB = qdot::kRowBlock;
    static_assert(RB == 4, "the switch below dispatches 1..4 rows");
    const int64_t nb = K / BN;
    std::vector<A> act(static_cast<size_t>(M * nb));
    parallel_for(M, std::max<int64_t>(1, 65536 / K), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) qdot::quantize_act(xf + m * ldx, act.data() + m * nb, nb);
    });
    const A* ap = act.data();
    const int64_t grain = std::max<int64_t>(1, 65536 / (K * M));
    parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
      if (M == 1) {
        for (int64_t n = n0; n < n1; ++n) yf[n] = qdot::vec_dot<B>(wbase + n * wrs, ap, nb);
        return;
      }
      qdot::RowDot<B> row(nb);
      const A* rows[RB];
      float out[RB];
      for (int64_t n = n0; n < n1; ++n) {
        row.load(wbase + n * wrs);
        for (int64_t m0 = 0; m0 < M; m0 += RB) {
          const int r = static_cast<int>(std::min<int64_t>(RB, M - m0));
          for (int i = 0; i < r; ++i) rows[i] = ap + (m0 + i) * nb;
          switch (r) {
            case 4: row.template dot<4>(rows, out); break;
            case 3: row.template dot<3>(rows, out); break;
            case 2: row.template dot<2>(rows, out); break;
            default: row.template dot<1>(rows, out); break;
          }
          for (int i = 0; i < r; ++i) yf[(m0 + i) * N + n] = out[i];
        }
      }
    });
  });
}

template <DType XD, DType WD>
void linear_kernel(const KernelArgs& a) {
  const Tensor& X = *a.in[0];  // [M, K], unit inner stride
  const Tensor& W = *a.in[1];  // [N, K]
  const Tensor& bias = *a.in[2];  // [N] f32 contiguous or undefined
  Tensor& Y = *a.out[0];       // [M, N] contiguous
  const int64_t M = X.size(0), K = X.size(1), N = W.size(0);
  const float* bp = bias.defined() ? bias.data_as<float>() : nullptr;

  // Activations as f32 rows.
  std::vector<float> xbuf;
  const float* xf;
  int64_t ldx;
  if constexpr (XD == DType::f32) {
    xf = X.data_as<float>();
    ldx = M > 1 ? X.stride(0) / 4 : K;
  } else {
    xbuf.resize(static_cast<size_t>(M * K));
    for (int64_t m = 0; m < M; ++m)
      dequant_weight_row<XD>(static_cast<const char*>(X.data()) + m * X.stride(0), 1, xbuf.data() + m * K, K);
    xf = xbuf.data();
    ldx = K;
  }
  // Output as f32 rows.
  std::vector<float> ybuf;
  float* yf;
  if constexpr (XD == DType::f32) {
    yf = Y.data_as<float>();
  } else {
    ybuf.resize(static_cast<size_t>(M * N));
    yf = ybuf.data();
  }
  const char* wbase = static_cast<const char*>(W.data());
  const int64_t wrs = W.stride(0);

  if (K == 0) {
    for (int64_t i = 0; i < M * N; ++i) yf[i] = 0.f;
  } else if constexpr (WD == DType::f32) {
    blas_threads();
    const View2 wv{wbase, N, K, W.stride(0), W.stride(1)};
    CBLAS_TRANSPOSE tw = CblasNoTrans;
    int64_t ldw = K;
    as_blas<float>(wv, tw, ldw);  // the op layer guarantees one of the two layouts
    // y = x @ w^T: flip w's orientation (gemv for one row: OpenBLAS gemm with M == 1 is slow)
    if (M == 1) {
      cblas_sgemv(CblasRowMajor, tw, (blasint)(tw == CblasNoTrans ? N : K), (blasint)(tw == CblasNoTrans ? K : N),
                  1.f, W.data_as<float>(), (blasint)ldw, xf, 1, 0.f, yf, 1);
    } else {
      blas_gemm<float>(CblasNoTrans, tw == CblasNoTrans ? CblasTrans : CblasNoTrans, M, N, K, xf, ldx,
                       W.data_as<float>(), ldw, yf, N);
    }
  } else if (is_quant_v<WD>() && M <= kInt8M) {
    if constexpr (is_quant_v<WD>()) linear_q8<WD>(xf, ldx, M, K, wbase, wrs, N, yf);
  } else if (M <= kSmallM) {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(K, 1));
    parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
      std::vector<float> tmp(static_cast<size_t>(std::max<int64_t>(K, 256)));
      for (int64_t n = n0; n < n1; ++n) {
        const char* wr = wbase + n * wrs;
        if (M == 1) {
          yf[n] = dot_weight_row<WD>(wr, xf, K, tmp.data());
        } else {
          dequant_weight_row<WD>(wr, 1, tmp.data(), K);
          for (int64_t m = 0; m < M; ++m) yf[m * N + n] = dot_f32(tmp.data(), xf + m * ldx, K);
        }
      }
    });
  } else {
    blas_threads();
    const int64_t tile = std::min(kTileN, N);
    std::vector<float> wt(static_cast<size_t>(tile * K));
    for (int64_t n0 = 0; n0 < N; n0 += tile) {
      const int64_t nt = std::min(tile, N - n0);
      parallel_for(nt, std::max<int64_t>(1, 16384 / K), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) dequant_weight_row<WD>(wbase + (n0 + r) * wrs, 1, wt.data() + r * K, K);
      });
      blas_gemm<float>(CblasNoTrans, CblasTrans, M, nt, K, xf, ldx, wt.data(), K, yf + n0, N);
    }
  }
  if (bp)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) yf[m * N + n] += bp[n];
  if constexpr (XD != DType::f32) {
    using T = typename StorageOf<XD>::type;
    char* yo = static_cast<char*>(Y.data());
    for (int64_t i = 0; i < M * N; ++i) Io<T>::store(yo + i * 2, yf[i]);
  }
}

// ---------------------------------------------------------------- embedding

template <DType TD, typename I>
void embedding_kernel(const KernelArgs& a) {
  const Tensor& table = *a.in[0];
  const I* ids = a.in[1]->data_as<I>();  // contiguous, validated by the op
  Tensor& out = *a.out[0];                // new contiguous [..., D]
  const int64_t D = table.size(1), n = a.in[1]->numel();
  const char* tb = static_cast<const char*>(table.data());
  const int64_t trs = table.stride(0), tcs = is_quant_v<TD>() ? 0 : table.stride(1);
  const DType od = out.dtype();
  char* ob = static_cast<char*>(out.data());
  const int64_t osz = static_cast<int64_t>(out.itemsize());
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t b, int64_t e) {
    std::vector<float> row(static_cast<size_t>(D));
    for (int64_t i = b; i < e; ++i) {
      const char* src = tb + static_cast<int64_t>(ids[i]) * trs;
      char* dst = ob + i * D * osz;
      if (!is_quant_v<TD>() && od == TD && tcs == osz) {
        std::memcpy(dst, src, static_cast<size_t>(D * osz));
        continue;
      }
      if constexpr (is_quant_v<TD>()) {
        dequant_weight_row<TD>(src, 1, row.data(), D);
      } else {
        using S = typename StorageOf<TD>::type;
        for (int64_t j = 0; j < D; ++j) row[static_cast<size_t>(j)] = Io<S>::load(src + j * tcs);
      }
      if (od == DType::f32) std::memcpy(dst, row.data(), static_cast<size_t>(D) * 4);
      else if (od == DType::f16) for (int64_t j = 0; j < D; ++j) Io<f16>::store(dst + 2 * j, row[static_cast<size_t>(j)]);
      else for (int64_t j = 0; j < D; ++j) Io<bf16>::store(dst + 2 * j, row[static_cast<size_t>(j)]);
    }
  });
}

template <DType XD>
void register_linear_for(KernelRegistry& reg, uint16_t backend) {
#define FLAGOS_LIN(WD) reg.add("linear", backend, KernelKey{XD, WD}, &linear_kernel<XD, WD>);
  FLAGOS_LIN(DType::f32) FLAGOS_LIN(DType::f16) FLAGOS_LIN(DType::bf16) FLAGOS_LIN(DType::q8_0)
  FLAGOS_LIN(DType::q4_0) FLAGOS_LIN(DType::q4_1) FLAGOS_LIN(DType::q5_0) FLAGOS_LIN(DType::q5_1)
  FLAGOS_LIN(DType::q4_k) FLAGOS_LIN(DType::q5_k) FLAGOS_LIN(DType::q6_k)
#undef FLAGOS_LIN
}

template <DType TD>
void register_embedding_for(KernelRegistry& reg, uint16_t backend) {
  reg.add("embedding", backend, KernelKey{TD, DType::i32}, &embedding_kernel<TD, int32_t>);
  reg.add("embedding", backend, KernelKey{TD, DType::i64}, &embedding_kernel<TD, int64_t>);
}

}  // namespace

void register_matmul(KernelRegistry& reg, uint16_t backend) {
  reg.add("matmul", backend, KernelKey{DType::f32}, &matmul_kernel<DType::f32>);
  reg.add("matmul", backend, KernelKey{DType::f64}, &matmul_kernel<DType::f64>);
  reg.add("matmul", backend, KernelKey{DType::f16}, &matmul_kernel<DType::f16>);
  reg.add("matmul", backend, KernelKey{DType::bf16}, &matmul_kernel<DType::bf16>);
  register_linear_for<DType::f32>(reg, backend);
  register_linear_for<DType::f16>(reg, backend);
  register_linear_for<DType::bf16>(reg, backend);
#define FLAGOS_EMB(TD) register_embedding_for<TD>(reg, backend);
  FLAGOS_EMB(DType::f32) FLAGOS_EMB(DType::f16) FLAGOS_EMB(DType::bf16) FLAGOS_EMB(DType::q8_0)
  FLAGOS_EMB(DType::q4_0) FLAGOS_EMB(DType::q4_1) FLAGOS_EMB(DType::q5_0) FLAGOS_EMB(DType::q5_1)
  FLAGOS_EMB(DType::q4_k) FLAGOS_EMB(DType::q5_k) FLAGOS_EMB(DType::q6_k)
#undef FLAGOS_EMB
}

}  // namespace flagos::cpu::FLAGOS_ISA
