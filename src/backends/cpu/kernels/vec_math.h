// Vectorizable f32 math: branch-free scalar functions (bit tricks, polynomials, selects; no
// libm calls) that GCC auto-vectorizes in plain loops for every ISA these files are built for.
// Errors are ~1-2 ulp over the whole range unless a function says otherwise; NaN propagates and
// infinities give the limits of the function.
#pragma once
#include <bit>
#include <cstdint>

#include "flagos/dtype.h"
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

// Vectorization: GCC if-converts the float selects used here (and so vectorizes loops calling
// these functions) only under -fno-trapping-math, which cmake/isa.cmake passes to every kernel
// file. Nothing in flagos reads FP exception flags, so this changes no result.

#ifndef FLAGOS_ISA
#error "vec_math.h is included from kernels/ files compiled per ISA"
#endif

namespace flagos::cpu::FLAGOS_ISA {

// The larger functions below are forced inline: in files with many kernel instantiations GCC's
// inline budget runs out and an out-of-line call leaves the caller's loop scalar.
#define FLAGOS_VM_INLINE inline __attribute__((always_inline))

inline float vm_from_bits(uint32_t u) { return std::bit_cast<float>(u); }
inline uint32_t vm_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float vm_abs(float x) { return vm_from_bits(vm_bits(x) & 0x7fffffffu); }
// |x| with the sign of s.
inline float vm_copysign(float x, float s) {
  return vm_from_bits((vm_bits(x) & 0x7fffffffu) | (vm_bits(s) & 0x80000000u));
}
// Round to nearest even for |x| < 2^22 (the magic-number trick; the compiler may not fold it
// without -ffast-math). Larger |x| are already integers when used with this.
inline float vm_round_small(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return (x + magic) - magic;
}
// Round half to even for any float (large values, inf and NaN pass through).
inline float round_even_f32(float x) {
  const float ax = vm_abs(x);
  const float r = vm_copysign((ax + 8388608.0f) - 8388608.0f, x);
  return ax < 8388608.0f ? r : x;
}
inline float floor_f32(float x) {
  const float r = round_even_f32(x);
  const float f = r > x ? r - 1.0f : r;
  return vm_abs(x) < 8388608.0f ? vm_copysign(f, x) : x;  // keeps -0.0
}
inline float ceil_f32(float x) {
  const float r = round_even_f32(x);
  const float c = r < x ? r + 1.0f : r;
  return vm_abs(x) < 8388608.0f ? vm_copysign(c, x) : x;
}

// exp(hi + lo) where lo is a small correction (|lo| << 1). Used by exp_f32 (lo = 0) and by
// erfc, which needs exp(-x^2) with x^2 split exactly.
FLAGOS_VM_INLINE float exp_hilo_f32(float hi, float lo) {
  float x = hi + lo;
  // Out of range (NaN: neither): drop lo, clamp hi. Separate float selects (a combined bool mask
  // stops GCC from vectorizing callers whose own selects merge with it).
  lo = x > 88.8f ? 0.0f : lo;
  lo = x < -104.0f ? 0.0f : lo;
  hi = hi > 88.8f ? 88.8f : hi;
  hi = hi < -104.0f ? -104.0f : hi;
  x = hi + lo;
  // n = round(x / ln2) as float and as integer (bits of x*log2e + 1.5*2^23).
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const uint32_t ni = vm_bits(t) - 0x4b400000u;  // two's complement of n, in [-150, 128]
  float r = hi - n * 0.693359375f;
  r = r + lo;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^n as two factors so that subnormal results round once and 2^128 overflows to inf.
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(ni) >> 1);
  const uint32_t n2 = ni - n1;
  const float s1 = vm_from_bits((n1 + 127u) << 23);
  const float s2 = vm_from_bits((n2 + 127u) << 23);
  return (p * s1) * s2;
}
FLAGOS_VM_INLINE float exp_f32(float x) { return exp_hilo_f32(x, 0.0f); }

FLAGOS_VM_INLINE float expm1_f32(float x) {
  // x = n ln2 + r, |r| <= ln2/2: expm1 = 2^n (expm1(r) + 1) - 1, computed scaled by 1/2 so
  // that n = 128 stays finite until the final doubling.
  const float xc = x > 89.0f ? 89.0f : (x < -30.0f ? -30.0f : x);
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const uint32_t ni = vm_bits(t) - 0x4b400000u;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float em1 = p * (r * r) + r;                    // expm1(r)
  const float half_s = vm_from_bits((ni + 126u) << 23);  // 2^(n-1)
  const float res = 2.0f * (half_s * em1 + (half_s - 0.5f));
  return ni == 0u ? em1 : res;  // n = 0 keeps tiny results (and NaN) exact
}

// Natural log; log(0) = -inf, log(x<0) = NaN, log(inf) = inf.
FLAGOS_VM_INLINE float log_f32(float x) {
  const bool sub = x < 1.17549435e-38f;  // subnormal (or <= 0, handled below)
  const float xs = sub ? x * 8388608.0f : x;
  uint32_t ix = vm_bits(xs);
  // mantissa into [sqrt(1/2), sqrt(2)), exponent accordingly
  ix += 0x3f800000u - 0x3f3504f3u;
  const float e = static_cast<float>(static_cast<int32_t>((ix >> 23) & 0xffu) - 127) - (sub ? 23.0f : 0.0f);
  ix = (ix & 0x007fffffu) + 0x3f3504f3u;
  const float f = vm_from_bits(ix) - 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y = y + -2.12194440e-4f * e;
  y = y + -0.5f * z;
  float r = f + y;
  r = r + 0.693359375f * e;
  const float inf = vm_from_bits(0x7f800000u), nan = vm_from_bits(0x7fc00000u);
  r = x == inf ? inf : r;
  r = x == 0.0f ? -inf : r;
  r = (x < 0.0f || x != x) ? nan : r;
  return r;
}

FLAGOS_VM_INLINE float log1p_f32(float x) {
  const float u = 1.0f + x;
  // log(u) is log1p(x) of the rounded u; correct by the rounding error (u - 1 - x) / u.
  float r = log_f32(u) - ((u - 1.0f) - x) / u;
  const float inf = vm_from_bits(0x7f800000u);
  r = u == 1.0f ? x : r;
  r = x == inf ? inf : r;
  r = x == -1.0f ? -inf : r;
  return r;
}

FLAGOS_VM_INLINE float tanh_f32(float x) {
  const float ax = vm_abs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;  // odd: tanh(-0) = -0 via x first
  const float big = vm_copysign(1.0f - 2.0f / (exp_f32(2.0f * ax) + 1.0f), x);
  return ax < 0.625f ? small : big;
}

FLAGOS_VM_INLINE float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

// erf: |x| < 1: x * P(x^2); 1 <= |x| < 4: 1 - exp(Q(|x|)) with Q ~ log(erfc); beyond: +-1.
// Coefficients are least-squares fits (relative error of P 1e-9, absolute error of Q 7e-9).
FLAGOS_VM_INLINE float erf_f32(float x) {
  const float ax = vm_abs(x);
  const float s = x * x;
  float p = 7.8472591156e-05f;
  p = p * s - 8.0081893200e-04f;
  p = p * s + 5.1880988891e-03f;
  p = p * s - 2.6853691100e-02f;
  p = p * s + 1.1283582248e-01f;
  p = p * s - 3.7612625567e-01f;
  p = p * s + 1.1283791657e+00f;
  const float small = x * p;
  const float u = (ax < 4.0f ? ax : 4.0f) - 2.5f;
  float q = -6.5828581277e-08f;
  q = q * u + 1.6140616099e-06f;
  q = q * u - 1.2976133196e-05f;
  q = q * u + 7.7394425535e-05f;
  q = q * u - 4.2070693904e-04f;
  q = q * u + 2.1651603097e-03f;
  q = q * u - 1.0858165530e-02f;
  q = q * u - 9.4389364027e-01f;
  q = q * u - 5.3526807404e+00f;
  q = q * u - 7.8068152771e+00f;
  const float big = vm_copysign(1.0f - exp_f32(q), x);
  return ax < 1.0f ? small : (ax < 4.0f ? big : (ax == ax ? vm_copysign(1.0f, x) : x));
}

// erfc(a) for a >= 1 with small relative error (~1e-7 + exp's): erfc(a) = r(1/a) exp(-a^2) /
// (a sqrt(pi)), r fitted on 1/a in [0.1, 1], a^2 split exactly for exp. 0 beyond a ~ 10.
FLAGOS_VM_INLINE float erfc_tail_f32(float a) {
  const float ac = a < 1.0f ? 1.0f : (a > 10.5f ? 10.5f : a);
  const float u = 1.0f / ac - 0.55f;
  float r = -7.9412837614e-02f;
  r = r * u - 5.2489337172e-02f;
  r = r * u + 1.8433418816e-01f;
  r = r * u - 1.3088461816e-01f;
  r = r * u + 1.7639191314e-02f;
  r = r * u + 9.0461600429e-02f;
  r = r * u - 1.7181543625e-01f;
  r = r * u + 1.7425909930e-01f;
  r = r * u - 3.6096118393e-02f;
  r = r * u - 3.0137863692e-01f;
  r = r * u + 8.9039826411e-01f;
  const float ah = vm_from_bits(vm_bits(ac) & 0xfffff000u);
  const float al = ac - ah;
  const float e = exp_hilo_f32(-ah * ah, -al * (ac + ah));
  const float res = r * e / (ac * 1.77245385090551603f);
  return a > 10.5f ? 0.0f : res;
}
// Exact gelu 0.5 x (1 + erf(x / sqrt2)); the negative tail uses erfc to avoid cancellation.
FLAGOS_VM_INLINE float gelu_erf_f32(float x) {
  const float main = 0.5f * x * (1.0f + erf_f32(x * 0.70710678118654752f));
  const float tail = 0.5f * x * erfc_tail_f32(x * -0.70710678118654752f);
  return x < -1.41421356f ? tail : main;
}

// sin and cos: Cody-Waite reduction by pi/2; accurate to ~1.5 ulp for |x| < kVmTrigMaxArg,
// degrading beyond (callers that need huge arguments fall back to libm for those elements).
inline constexpr float kVmTrigMaxArg = 64.0f;
FLAGOS_VM_INLINE float vm_sincos_poly(float x, uint32_t quadrant_shift, bool want_cos) {
  const float ax = vm_abs(x);
  const float t = ax * 0.63661977236758134f + 12582912.0f;  // 2/pi
  const float j = t - 12582912.0f;
  uint32_t q = vm_bits(t) - 0x4b400000u + quadrant_shift;
  float r = ((ax - j * 1.5703125f) - j * 4.837512969970703125e-4f) - j * 7.54978995489188216e-8f;
  const float z = r * r;
  float s = -1.9515295891e-4f;
  s = s * z + 8.3321608736e-3f;
  s = s * z - 1.6666654611e-1f;
  s = s * z * r + r;
  float c = 2.443315711809948e-5f;
  c = c * z - 1.388731625493765e-3f;
  c = c * z + 4.166664568298827e-2f;
  c = c * z * z - 0.5f * z + 1.0f;
  const bool use_cos = (q & 1u) != 0;
  float v = use_cos ? c : s;
  uint32_t sign = (q & 2u) << 30;
  if (!want_cos) sign ^= vm_bits(x) & 0x80000000u;
  v = vm_from_bits(vm_bits(v) ^ sign);
  return ax == vm_from_bits(0x7f800000u) ? vm_from_bits(0x7fc00000u) : v;
}
FLAGOS_VM_INLINE float sin_f32(float x) { return vm_sincos_poly(x, 0u, false); }
FLAGOS_VM_INLINE float cos_f32(float x) { return vm_sincos_poly(x, 1u, true); }

// ---- 16-bit float blocks <-> f32 (round to nearest even), vectorized where the ISA allows ----
inline void cvt_to_f32(const flagos::bf16* s, float* d, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__)
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
#endif
  for (; i < n; ++i) d[i] = vm_from_bits(static_cast<uint32_t>(s[i].bits) << 16);
}
#if defined(__AVX2__)
// 8 floats -> 8 bf16 (in 32-bit lanes, upper halves zero): round to nearest even, NaN quieted.
inline __m256i vm_bf16_round8(__m256 v) {
  const __m256i x = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), odd), 16);
  const __m256i q = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(r, q, nan);
}
#endif
inline void cvt_from_f32(const float* s, flagos::bf16* d, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__)
  for (; i + 16 <= n; i += 16) {
    const __m256i a = vm_bf16_round8(_mm256_loadu_ps(s + i)), b = vm_bf16_round8(_mm256_loadu_ps(s + i + 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                        _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256i a = vm_bf16_round8(_mm256_loadu_ps(s + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(a, a), 0xd8)));
  }
#endif
  for (; i < n; ++i) {
    const uint32_t x = vm_bits(s[i]);
    const uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t q = (x >> 16) | 0x40u;  // quiet NaN
    d[i].bits = static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? q : r);
  }
}
inline void cvt_to_f32(const flagos::f16* s, float* d, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
#endif
  for (; i < n; ++i) d[i] = f16_to_f32(s[i].bits);
}
inline void cvt_from_f32(const float* s, flagos::f16* d, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  for (; i < n; ++i) d[i].bits = f32_to_f16(s[i]);
}

// sqrt does not auto-vectorize without -fno-math-errno; these blocks use the instruction.
inline void sqrt_block(const float* x, float* o, int64_t n, bool reciprocal) {
  int64_t i = 0;
#if defined(__AVX2__)
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 r = _mm256_sqrt_ps(_mm256_loadu_ps(x + i));
    _mm256_storeu_ps(o + i, reciprocal ? _mm256_div_ps(one, r) : r);
  }
#endif
  for (; i < n; ++i) {
    const float r = __builtin_sqrtf(x[i]);
    o[i] = reciprocal ? 1.0f / r : r;
  }
}

#undef FLAGOS_VM_INLINE

}  // namespace flagos::cpu::FLAGOS_ISA
