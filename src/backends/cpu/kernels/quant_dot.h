// Integer dot products of GGUF block-quantized weight rows with int8-quantized activations
// (the decode path of linear: few activation rows, memory-bound on the weight bytes).
//
// Each activation row is quantized once per call, symmetric int8 with round-to-nearest-even:
//   Q8A  (for q8_0/q4_0/q4_1/q5_0/q5_1): per 32 values a float scale d = amax/127, the int8
//         values and ds = d * sum(values) (folds the weight's offset/min).
//   Q8KA (for q4_k/q5_k/q6_k): per 256 values one float scale, the int8 values and 16 int16
//         sums of 16 values (fold the k-quant mins and the q6_k offset of 32).
// A weight block times an activation block is then an exact integer dot of the stored levels,
// scaled once per (sub-)block in f32. The only approximation is the activation rounding
// (relative error <= 1/254 per value; ~3e-3 relative L2 on a whole dot, see test_linalg).
//
// AVX2: unsigned weight levels x signed int8 activations with _mm256_maddubs_epi16 (no
// saturation: |level| <= 63, |a| <= 127), pairs to int32 with _mm256_madd_epi16 (by the
// sub-block scale for k-quants), converted and FMA'd once per block. The generic ISA runs the
// same integer math in scalar C++.
//
// Compiled once per ISA (included from kernels/*.cpp): everything is in the ISA namespace.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/quant_blocks.h"
#include "flagos/dtype.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace qdot {

using namespace flagos::quant;

struct Q8A {
  float d, ds;
  int8_t qs[32];
};
struct Q8KA {
  float d;
  int16_t bsums[16];
  int8_t qs[256];
};

// Activation block type used with weight block type B.
template <typename B>
struct ActOf {
  using type = Q8A;
};
template <> struct ActOf<BlockQ4K> { using type = Q8KA; };
template <> struct ActOf<BlockQ5K> { using type = Q8KA; };
template <> struct ActOf<BlockQ6K> { using type = Q8KA; };

#if defined(__AVX2__)
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
static inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// 32 floats -> 32 int8 (round to nearest even) scaled by id; returns amax-free result.
static inline __m256i quant32(const float* x, float id) {
  const __m256 v = _mm256_set1_ps(id);
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), v));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), v));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), v));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), v));
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
static inline float amax_n(const float* x, int n) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
static inline float h2f(uint16_t h) { return qb_h2f(h); }
static inline float amax_n(const float* x, int n) {
  float m = 0.f;
  for (int i = 0; i < n; ++i) {
    const float a = x[i] < 0 ? -x[i] : x[i];
    m = a > m ? a : m;
  }
  return m;
}
#endif

// Q4_K / Q5_K: the 12 packed bytes of 6-bit sub-block scales and mins -> 16 bytes, scales in
// 0..7 and mins in 8..15 (the same values as qb_scale_min_k4 for j = 0..7).
static inline void unpack_k4_scales(const uint8_t* packed12, uint8_t sm[16]) {
  uint32_t u[4];
  std::memcpy(u, packed12, 12);
  u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  const uint32_t m03 = u[1] & 0x3f3f3f3fu;
  u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  u[2] = m03;
  u[0] &= 0x3f3f3f3fu;
  std::memcpy(sm, u, 16);
}

// Quantizes n values (a multiple of 32) to int8 with scale d = amax / 127.
static inline void quant_i8(const float* x, int n, float id, int8_t* q) {
#if defined(__AVX2__)
  for (int i = 0; i < n; i += 32) _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), quant32(x + i, id));
#else
  for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(qb_clampi(qb_nearest_int(x[i] * id), -127, 127));
#endif
}

static inline void quantize_act(const float* x, Q8A* a, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 32) {
    const float amax = amax_n(x, 32);
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    quant_i8(x, 32, id, a[b].qs);
    int s = 0;
    for (int i = 0; i < 32; ++i) s += a[b].qs[i];
    a[b].d = d;
    a[b].ds = d * static_cast<float>(s);
  }
}
static inline void quantize_act(const float* x, Q8KA* a, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 256) {
    const float amax = amax_n(x, 256);
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    quant_i8(x, 256, id, a[b].qs);
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += a[b].qs[16 * j + i];
      a[b].bsums[j] = static_cast<int16_t>(s);
    }
    a[b].d = d;
  }
}

// ---------------------------------------------------------------- per-type dots over nb blocks

#if defined(__AVX2__)
static inline __m256i bytes_from_bits32(const uint8_t* p) {  // byte i = 0xFF if bit i set
  uint32_t x;
  std::memcpy(&x, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
  b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}
static inline __m256i nibbles32(const uint8_t* q) {  // 16 bytes -> low nibbles, then high nibbles
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0xF));
}
static inline __m256i ld(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
#endif

// Simple types: unsigned levels u (0..15 / 0..31) with value = d * u + off.
template <typename B>
static inline void simple_levels(const B* w, uint8_t* u) {
  if constexpr (std::is_same_v<B, BlockQ4_0> || std::is_same_v<B, BlockQ4_1>) {
    for (int i = 0; i < 16; ++i) {
      u[i] = w->qs[i] & 0xF;
      u[i + 16] = w->qs[i] >> 4;
    }
  } else {
    const uint32_t qh = gguf::ld_u32(w->qh);
    for (int i = 0; i < 16; ++i) {
      u[i] = static_cast<uint8_t>((w->qs[i] & 0xF) | (((qh >> i) & 1u) << 4));
      u[i + 16] = static_cast<uint8_t>((w->qs[i] >> 4) | (((qh >> (i + 16)) & 1u) << 4));
    }
  }
}
template <typename B>
static inline float simple_offset(const B* w, float d) {
  if constexpr (std::is_same_v<B, BlockQ4_0>) return -8.f * d;
  else if constexpr (std::is_same_v<B, BlockQ5_0>) return -16.f * d;
  else return h2f(w->m);
}

template <typename B>
static inline float vec_dot(const char* wrow, const typename ActOf<B>::type* a, int64_t nb) {
  const B* w = reinterpret_cast<const B*>(wrow);
  if constexpr (std::is_same_v<B, BlockQ8_0>) {
#if defined(__AVX2__)
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      const __m256i w0 = ld(w[b].qs), w1 = ld(w[b + 1].qs);
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(ld(a[b].qs), w0)), ones);
      const __m256i p1 = _mm256_madd_epi16(
          _mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(ld(a[b + 1].qs), w1)), ones);
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * a[b].d), _mm256_cvtepi32_ps(p0), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b + 1].d) * a[b + 1].d), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; ++b) {
      const __m256i w0 = ld(w[b].qs);
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(ld(a[b].qs), w0)), ones);
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * a[b].d), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
#else
    float s = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      int is = 0;
      for (int i = 0; i < 32; ++i) is += static_cast<int>(w[b].qs[i]) * a[b].qs[i];
      s += h2f(w[b].d) * a[b].d * static_cast<float>(is);
    }
    return s;
#endif
  } else if constexpr (std::is_same_v<B, BlockQ4_0> || std::is_same_v<B, BlockQ4_1> ||
                       std::is_same_v<B, BlockQ5_0> || std::is_same_v<B, BlockQ5_1>) {
    float off = 0.f;
#if defined(__AVX2__)
    __m256 acc = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
      __m256i u = nibbles32(w[b].qs);
      if constexpr (std::is_same_v<B, BlockQ5_0> || std::is_same_v<B, BlockQ5_1>)
        u = _mm256_or_si256(u, _mm256_and_si256(bytes_from_bits32(w[b].qh), _mm256_set1_epi8(0x10)));
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, ld(a[b].qs)), ones);
      const float dw = h2f(w[b].d);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[b].d), _mm256_cvtepi32_ps(p), acc);
      off += simple_offset(&w[b], dw) * a[b].ds;
    }
    return hsum_ps(acc) + off;
#else
    float s = 0.f;
    uint8_t u[32];
    for (int64_t b = 0; b < nb; ++b) {
      simple_levels(&w[b], u);
      int is = 0;
      for (int i = 0; i < 32; ++i) is += static_cast<int>(u[i]) * a[b].qs[i];
      const float dw = h2f(w[b].d);
      s += dw * a[b].d * static_cast<float>(is);
      off += simple_offset(&w[b], dw) * a[b].ds;
    }
    return s + off;
#endif
  } else if constexpr (std::is_same_v<B, BlockQ4K> || std::is_same_v<B, BlockQ5K>) {
    constexpr bool five = std::is_same_v<B, BlockQ5K>;
    float mins = 0.f;
#if defined(__AVX2__)
    __m256 acc = _mm256_setzero_ps();
    __m128 macc = _mm_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF), b4 = _mm256_set1_epi8(0x10);
#else
    float s = 0.f;
#endif
    for (int64_t b = 0; b < nb; ++b) {
      const B& blk = w[b];
      const Q8KA& ab = a[b];
      uint8_t sm[16];
      unpack_k4_scales(blk.scales, sm);
      const uint8_t* sc = sm;
#if defined(__AVX2__)
      {  // sum_j min_j * (sum of the 32 activations of sub-block j)
        const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums + 8)));
        const __m128i mn = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sm + 8)));
        macc = _mm_fmadd_ps(_mm_set1_ps(h2f(blk.dmin) * ab.d), _mm_cvtepi32_ps(_mm_madd_epi16(mn, bs)), macc);
      }
#else
      int msum = 0;
      for (int j = 0; j < 8; ++j) msum += sm[8 + j] * (ab.bsums[2 * j] + ab.bsums[2 * j + 1]);
      mins += h2f(blk.dmin) * ab.d * static_cast<float>(msum);
#endif
#if defined(__AVX2__)
      __m256i isum = _mm256_setzero_si256();
      [[maybe_unused]] __m256i qh;
      if constexpr (five) qh = ld(blk.qh);
      for (int c = 0; c < 4; ++c) {
        const __m256i q = ld(blk.qs + 32 * c);
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (five) {
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * c), 4), b4));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * c + 1), 4), b4));
        }
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld(ab.qs + 64 * c)), _mm256_set1_epi16(sc[2 * c]));
        const __m256i p1 =
            _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld(ab.qs + 64 * c + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
        isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
      }
      acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(blk.d) * ab.d), _mm256_cvtepi32_ps(isum), acc);
#else
      int isum = 0;
      for (int c = 0; c < 4; ++c) {
        const uint8_t* q = blk.qs + 32 * c;
        const int8_t* a0 = ab.qs + 64 * c;
        int s0 = 0, s1 = 0;
        for (int l = 0; l < 32; ++l) {
          int lo = q[l] & 0xF, hi = q[l] >> 4;
          if constexpr (five) {
            lo |= ((blk.qh[l] >> (2 * c)) & 1) << 4;
            hi |= ((blk.qh[l] >> (2 * c + 1)) & 1) << 4;
          }
          s0 += lo * a0[l];
          s1 += hi * a0[l + 32];
        }
        isum += sc[2 * c] * s0 + sc[2 * c + 1] * s1;
      }
      s += h2f(blk.d) * ab.d * static_cast<float>(isum);
#endif
    }
#if defined(__AVX2__)
    return hsum_ps(_mm256_sub_ps(acc, _mm256_insertf128_ps(_mm256_setzero_ps(), macc, 0))) - mins;
#else
    return s - mins;
#endif
  } else {  // q6_k
    static_assert(std::is_same_v<B, BlockQ6K>);
#if defined(__AVX2__)
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
#endif
    float s = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ6K& blk = w[b];
      const Q8KA& ab = a[b];
      const float d = h2f(blk.d) * ab.d;
      int off = 0;
      for (int j = 0; j < 16; ++j) off += blk.scales[j] * ab.bsums[j];
      s -= 32.f * d * static_cast<float>(off);
#if defined(__AVX2__)
      __m256i isum = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i l0 = ld(blk.ql + 64 * h), l1 = ld(blk.ql + 64 * h + 32), qh = ld(blk.qh + 32 * h);
        const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
        const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
        const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
        const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
        const int8_t* sc = blk.scales + 8 * h;
        const int8_t* aq = ab.qs + 128 * h;
        auto scv = [&](int j) { return _mm256_set_m128i(_mm_set1_epi16(sc[j + 1]), _mm_set1_epi16(sc[j])); };
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, ld(aq)), scv(0));
        const __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(q2, ld(aq + 32)), scv(2));
        const __m256i p3 = _mm256_madd_epi16(_mm256_maddubs_epi16(q3, ld(aq + 64)), scv(4));
        const __m256i p4 = _mm256_madd_epi16(_mm256_maddubs_epi16(q4, ld(aq + 96)), scv(6));
        isum = _mm256_add_epi32(isum, _mm256_add_epi32(_mm256_add_epi32(p1, p2), _mm256_add_epi32(p3, p4)));
      }
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
#else
      int isum = 0;
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = blk.ql + 64 * h;
        const uint8_t* qh = blk.qh + 32 * h;
        const int8_t* sc = blk.scales + 8 * h;
        const int8_t* aq = ab.qs + 128 * h;
        for (int half = 0; half < 2; ++half) {  // l in [16 half, 16 half + 16): scale index is = half
          int s1 = 0, s2 = 0, s3 = 0, s4 = 0;
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            s1 += ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) * aq[l];
            s2 += ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) * aq[l + 32];
            s3 += ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) * aq[l + 64];
            s4 += ((ql[l + 32] >> 4) | ((qh[l] >> 6) << 4)) * aq[l + 96];
          }
          isum += sc[half] * s1 + sc[half + 2] * s2 + sc[half + 4] * s3 + sc[half + 6] * s4;
        }
      }
      s += d * static_cast<float>(isum);
#endif
    }
#if defined(__AVX2__)
    return hsum_ps(acc) + s;
#else
    return s;
#endif
  }
}

}  // namespace qdot
}  // namespace flagos::cpu::FLAGOS_ISA
