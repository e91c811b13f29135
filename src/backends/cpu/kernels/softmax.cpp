// softmax / log_softmax over the last dim of a [rows, n] view (any strides; see
// src/ops/reduce.cpp). Rows run in parallel. Per row: a max pass, an exp pass that stores
// exp(x - max) and sums it (16 f32 lanes per 1024-block, f64 across blocks), and a scale pass
// over the (cache-resident) output. Contiguous f32 rows are processed in place in the output;
// other dtypes and layouts go through a per-thread f32 row buffer. f64 computes in f64.
// A row that is all -inf gives NaN (as torch); NaN propagates.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kBlock = 1024;

// o[i] = exp(x[i] - sub) for a block. The generic exp_f32 does not auto-vectorize in this
// loop (GCC keeps its selects as branches), so AVX2 gets an explicit version: same Cephes
// polynomial, arguments clamped to the normal range, results below it flushed to 0 (also
// exp(-inf) = 0), NaN propagates. Only used with x - sub <= 88 (softmax / logsumexp).
inline void exp_sub_block(const float* x, float* o, int64_t n, float sub) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 vs = _mm256_set1_ps(sub), hi = _mm256_set1_ps(88.3762626647949f),
               lo = _mm256_set1_ps(-87.3365478515625f), log2e = _mm256_set1_ps(1.44269504088896341f),
               c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f), one = _mm256_set1_ps(1.0f);
  auto ex = [&](__m256 v) {
    const __m256 keep = _mm256_cmp_ps(v, lo, _CMP_NLT_UQ);  // false only for v < lo (not NaN)
    const __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, v));  // NaN passes through
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, c1, xc);
    r = _mm256_fnmadd_ps(k, c2, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), one);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
  };
  for (; i + 16 <= n; i += 16) {  // two independent chains per iteration
    const __m256 a = ex(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    const __m256 b = ex(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
    _mm256_storeu_ps(o + i, a);
    _mm256_storeu_ps(o + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, ex(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs)));
#endif
  for (; i < n; ++i) o[i] = exp_f32(x[i] - sub);
}

template <typename C>
inline C exp_c(C v) {
  if constexpr (std::is_same_v<C, float>) {
    return exp_f32(v);
  } else {
    return std::exp(v);
  }
}

// AVX2 versions of the max and sum loops (GCC does not vectorize the lane loops reliably).
#if defined(__AVX2__)
inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
inline double hsum8(__m256 v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  double s = 0;
  for (float f : t) s += static_cast<double>(f);
  return s;
}
#endif

inline float max_f32(const float* x, int64_t n, bool& has_nan) {
  int64_t i = 0;
  float m = -std::numeric_limits<float>::infinity();
  has_nan = false;
#if defined(__AVX2__)
  __m256 a0 = _mm256_set1_ps(m), a1 = a0, nn = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_max_ps(v0, a0);  // a NaN in v is skipped here and caught by nn
    a1 = _mm256_max_ps(v1, a1);
    nn = _mm256_or_ps(nn, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
  }
  m = hmax8(_mm256_max_ps(a0, a1));
  has_nan = _mm256_movemask_ps(nn) != 0;
#endif
  for (; i < n; ++i) {
    m = x[i] > m ? x[i] : m;
    has_nan |= x[i] != x[i];
  }
  return m;
}

inline double sum_f32(const float* x, int64_t n) {
  int64_t i = 0;
  double s = 0;
#if defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
  }
  s = hsum8(_mm256_add_ps(a0, a1));
#endif
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

// Max with NaN propagation. The lane loop is a plain compare/select (vectorizes); NaN is
// detected on the side through x * 0 (NaN for NaN and inf), then confirmed by a rescan.
template <typename C>
C row_max(const C* x, int64_t n) {
  if constexpr (std::is_same_v<C, float>) {
    bool has_nan = false;
    const float m = max_f32(x, n, has_nan);
    if (has_nan)
      for (int64_t k = 0; k < n; ++k)
        if (x[k] != x[k]) return x[k];
    return m;
  }
  C acc[kLanes], z[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<C>::infinity(), z[l] = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const C v = x[i + l];
      acc[l] = v > acc[l] ? v : acc[l];
      z[l] += v * C{0};
    }
  C m = -std::numeric_limits<C>::infinity(), zz = 0;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m, zz += x[i] * C{0};
  for (int l = 0; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m, zz += z[l];
  if (zz != zz)
    for (int64_t k = 0; k < n; ++k)
      if (x[k] != x[k]) return x[k];
  return m;
}

// o[i] = exp(x[i] - m) (o may be a scratch block); returns the sum. The exp loop is a plain
// loop (vectorized by the compiler); the sum runs over the block while it is in L1.
template <typename C>
double exp_sum(const C* x, C* o, int64_t n, C m, bool store) {
  double total = 0;
  C tmp[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    C* dst = store ? o + b : tmp;
    const C* src = x + b;
    if constexpr (std::is_same_v<C, float>) {
      exp_sub_block(src, dst, len, m);
    } else {
      for (int64_t i = 0; i < len; ++i) dst[i] = exp_c(src[i] - m);
    }
    if constexpr (std::is_same_v<C, float>) {
      total += sum_f32(dst, len);
    } else {
      C acc[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= len; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += dst[i + l];
      for (; i < len; ++i) acc[0] += dst[i];
      for (int l = 0; l < kLanes; ++l) total += static_cast<double>(acc[l]);
    }
  }
  return total;
}

// Computes softmax / log_softmax of x into o (o may equal x).
// Long f32 rows (beyond L2): one read pass computing max and sum online per block (the sum
// rescaled when the max grows), then one pass writing the output, instead of three passes.
template <bool kLog>
void row_softmax_online(const float* x, float* o, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  double s = 0;
  bool nan = false;
  float tmp[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    bool bn = false;
    const float mb = max_f32(x + b, len, bn);
    nan |= bn;
    if (mb > m) {
      s *= std::exp(static_cast<double>(m) - static_cast<double>(mb));
      m = mb;
    }
    if (m == -std::numeric_limits<float>::infinity()) continue;  // all -inf so far: adds 0
    exp_sub_block(x + b, tmp, len, m);
    s += sum_f32(tmp, len);
  }
  if (nan) m = std::numeric_limits<float>::quiet_NaN();
  if constexpr (kLog) {
    const float sub = static_cast<float>(static_cast<double>(m) + std::log(s));
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] - sub;
  } else {
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t len = std::min(kBlock, n - b);
      exp_sub_block(x + b, o + b, len, m);
      for (int64_t i = b; i < b + len; ++i) o[i] *= inv;
    }
  }
}

template <typename C, bool kLog>
void row_softmax(const C* x, C* o, int64_t n) {
  if constexpr (std::is_same_v<C, float>) {
    if (n > 32768) {
      row_softmax_online<kLog>(x, o, n);
      return;
    }
  }
  const C m = row_max(x, n);
  if constexpr (kLog) {
    const double s = exp_sum<C>(x, nullptr, n, m, false);
    const C sub = static_cast<C>(static_cast<double>(m) + std::log(s));
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] - sub;
  } else {
    const double s = exp_sum<C>(x, o, n, m, true);
    const C inv = static_cast<C>(1.0 / s);
    for (int64_t i = 0; i < n; ++i) o[i] *= inv;
  }
}

template <DType D, bool kLog>
void softmax_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using C = std::conditional_t<D == DType::f64, double, float>;
  const Tensor& x = *a.in[0];
  const Tensor& o = *a.out[0];
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0 || n == 0) return;
  const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(o.data());
  constexpr int64_t es = sizeof(S);
  const int64_t grain = std::max<int64_t>(1, 16384 / n);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    std::vector<C> buf;
    for (int64_t r = b; r < e; ++r) {
      const char* xp = xb + r * xr;
      char* op = ob + r * orr;
      if constexpr (std::is_same_v<S, C>) {
        if (xc == es && oc == es) {
          row_softmax<C, kLog>(reinterpret_cast<const C*>(xp), reinterpret_cast<C*>(op), n);
          continue;
        }
      }
      buf.resize(static_cast<size_t>(n));
      C* bp = buf.data();
      if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
        if (xc == es) {
          cvt_to_f32(reinterpret_cast<const S*>(xp), bp, n);
        } else {
          for (int64_t i = 0; i < n; ++i) bp[i] = Io<S>::load(xp + i * xc);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) bp[i] = Io<S>::load(xp + i * xc);
      }
      row_softmax<C, kLog>(bp, bp, n);
      if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
        if (oc == es) {
          cvt_from_f32(bp, reinterpret_cast<S*>(op), n);
          continue;
        }
      }
      for (int64_t i = 0; i < n; ++i) Io<S>::store(op + i * oc, bp[i]);
    }
  });
}

}  // namespace

void register_softmax(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG(t)                                                                \
  reg.add("softmax", b, KernelKey{DType::t}, &softmax_k<DType::t, false>);           \
  reg.add("log_softmax", b, KernelKey{DType::t}, &softmax_k<DType::t, true>);
  FLAGOS_REG(f32) FLAGOS_REG(f64) FLAGOS_REG(f16) FLAGOS_REG(bf16)
#undef FLAGOS_REG
}

}  // namespace flagos::cpu::FLAGOS_ISA
