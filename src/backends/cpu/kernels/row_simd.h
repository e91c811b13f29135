// Row helpers shared by the reduce / softmax / norm kernels (compiled per ISA): AVX2 block exp,
// max and sum for f32, and f32 <-> f16/bf16/f32 block loads and stores (any element stride) so
// that 16-bit rows are processed one L1 block at a time without row buffers.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace rowsimd {

#if defined(__AVX2__) && defined(__FMA__)
// exp(v) for v <= 88.3 (softmax / logsumexp arguments): Cephes polynomial on the reduced
// argument, 2^k by exponent insertion; v below the normal range (and -inf) gives 0; NaN
// propagates. ~1 ulp.
inline __m256 exp8(__m256 v) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365478515625f);
  const __m256 keep = _mm256_cmp_ps(v, lo, _CMP_NLT_UQ);  // false only for v < lo (not NaN)
  const __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, v));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}
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
// 8 bf16 -> f32 and f32 -> 8 bf16 (round to nearest even, NaN stays a quiet NaN).
inline __m256 bf16x8_load(const void* p) {
  const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline __m128i bf16x8_pack(__m256 v) {
  const __m256i x = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  const __m256i q = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, q, nan);
  const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  return _mm256_castsi256_si128(p);
}
#define FLAGOS_ROWSIMD_AVX2 1
#endif

// o[i] = exp(x[i] - sub) * scale (o may equal x). Arguments must be <= 88 (sub >= max).
inline void exp_sub_block(const float* x, float* o, int64_t n, float sub, float scale = 1.0f) {
  int64_t i = 0;
#if defined(FLAGOS_ROWSIMD_AVX2)
  const __m256 vs = _mm256_set1_ps(sub), vk = _mm256_set1_ps(scale);
  if (scale == 1.0f) {
    for (; i + 16 <= n; i += 16) {
      const __m256 a = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
      const __m256 b = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
      _mm256_storeu_ps(o + i, a);
      _mm256_storeu_ps(o + i + 8, b);
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m256 a = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
      const __m256 b = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
      _mm256_storeu_ps(o + i, _mm256_mul_ps(a, vk));
      _mm256_storeu_ps(o + i + 8, _mm256_mul_ps(b, vk));
    }
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(o + i, _mm256_mul_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs)), vk));
#endif
  for (; i < n; ++i) o[i] = exp_f32(x[i] - sub) * scale;
}

// Sum of exp(x[i] - sub) without storing (f32 lanes, returned as f64).
inline double exp_sub_sum(const float* x, int64_t n, float sub) {
  int64_t i = 0;
  double s = 0;
#if defined(FLAGOS_ROWSIMD_AVX2)
  const __m256 vs = _mm256_set1_ps(sub);
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs)));
    a1 = _mm256_add_ps(a1, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs)));
  }
  s = hsum8(_mm256_add_ps(a0, a1));
#endif
  float t[16] = {};
  int l = 0;
  for (; i < n; ++i) t[l++ & 15] += exp_f32(x[i] - sub);
  for (float f : t) s += static_cast<double>(f);
  return s;
}

// Max of n values (NaN lanes skipped); has_nan reports a NaN anywhere.
inline float max_f32(const float* x, int64_t n, bool& has_nan) {
  int64_t i = 0;
  float m = -std::numeric_limits<float>::infinity();
  has_nan = false;
#if defined(FLAGOS_ROWSIMD_AVX2)
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
#if defined(FLAGOS_ROWSIMD_AVX2)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
  }
  s = hsum8(_mm256_add_ps(a0, a1));
#endif
  float t[16] = {};
  int l = 0;
  for (; i < n; ++i) t[l++ & 15] += x[i];
  for (float f : t) s += static_cast<double>(f);
  return s;
}

// n values of S at p (byte stride) as f32: the data itself when it already is contiguous f32,
// else converted into buf.
template <typename S>
inline const float* load_f32(const char* p, int64_t stride, int64_t n, float* buf) {
  constexpr int64_t es = sizeof(S);
  if (stride == es) {
    if constexpr (std::is_same_v<S, float>) {
      return reinterpret_cast<const float*>(p);
    } else if constexpr (std::is_same_v<S, bf16>) {
      int64_t i = 0;
#if defined(FLAGOS_ROWSIMD_AVX2)
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(buf + i, bf16x8_load(p + i * 2));
#endif
      if (i < n) cvt_to_f32(reinterpret_cast<const bf16*>(p) + i, buf + i, n - i);
      return buf;
    } else {
      cvt_to_f32(reinterpret_cast<const S*>(p), buf, n);
      return buf;
    }
  }
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(Io<S>::load(p + i * stride));
  return buf;
}

// Stores n f32 values v as S at p (byte stride), rounding once.
template <typename S>
inline void store_f32(const float* v, char* p, int64_t stride, int64_t n) {
  constexpr int64_t es = sizeof(S);
  if (stride == es) {
    if constexpr (std::is_same_v<S, float>) {
      if (reinterpret_cast<const char*>(v) != p) std::memcpy(p, v, static_cast<size_t>(n) * 4);
      return;
    } else if constexpr (std::is_same_v<S, bf16>) {
      int64_t i = 0;
#if defined(FLAGOS_ROWSIMD_AVX2)
      for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i * 2), bf16x8_pack(_mm256_loadu_ps(v + i)));
#endif
      if (i < n) cvt_from_f32(v + i, reinterpret_cast<bf16*>(p) + i, n - i);
      return;
    } else {
      cvt_from_f32(v, reinterpret_cast<S*>(p), n);
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) Io<S>::store(p + i * stride, static_cast<float>(v[i]));
}

// Stores n f32 values into contiguous f32 memory, streaming (non-temporal) where aligned when
// `stream` is set (caller issues fence()). v may equal o.
inline void store_stream(const float* v, float* o, int64_t n, bool stream) {
#if defined(FLAGOS_ROWSIMD_AVX2)
  if (stream) {
    int64_t i = 0;
    for (; i < n && (reinterpret_cast<uintptr_t>(o + i) & 31) != 0; ++i) o[i] = v[i];
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(o + i, _mm256_loadu_ps(v + i));
    for (; i < n; ++i) o[i] = v[i];
    return;
  }
#else
  (void)stream;
#endif
  if (v != o) std::memcpy(o, v, static_cast<size_t>(n) * 4);
}
inline void fence() {
#if defined(FLAGOS_ROWSIMD_AVX2)
  _mm_sfence();
#endif
}

}  // namespace rowsimd
}  // namespace flagos::cpu::FLAGOS_ISA
