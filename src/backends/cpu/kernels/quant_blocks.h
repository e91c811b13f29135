// GGUF/ggml block-quantized formats on the CPU: scalar reference (de)quantization of one block.
// The block layouts, scale/min unpacking and element decode are shared with the other backends
// (src/runtime/gguf_blocks.h). Every function is `static inline`: this header is compiled once
// per ISA and must not merge across ISAs at link time.
//
// Dequantization is bit-identical to the gguf Python package (and ggml): products are rounded
// to f32 before the offset is added (qb_mul_add / qb_mul_sub keep the compiler from fusing
// them into an FMA). Quantization of the "simple" types (q8_0, q4_0, q4_1, q5_0, q5_1) is
// byte-identical to gguf; k-quants follow the ggml reference algorithms (weighted
// min/scale search of make_qkx2_quants for q4_k/q5_k, make_qx_quants with squared weights for
// q6_k).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "flagos/dtype.h"
#include "runtime/gguf_blocks.h"

namespace flagos::quant {

inline constexpr int kQK = 32;    // elements per block of the simple types
inline constexpr int kQKK = 256;  // elements per k-quant super-block

// The layouts (and the element decode used below) are shared with the other backends.
using gguf::BlockQ8_0;
using gguf::BlockQ4_0;
using gguf::BlockQ4_1;
using gguf::BlockQ5_0;
using gguf::BlockQ5_1;
using gguf::BlockQ4K;
using gguf::BlockQ5K;
using gguf::BlockQ6K;

// ---------------------------------------------------------------- helpers

static inline float qb_h2f(uint16_t h) { return f16_to_f32(h); }
static inline uint16_t qb_f2h(float f) { return f32_to_f16(f); }

// An opaque copy: the compiler cannot fuse an operation producing v with one consuming it.
static inline float qb_opaque(float v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
  __asm__("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(v));
#else
  volatile float t = v;
  v = t;
#endif
  return v;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
typedef float qb_v4f __attribute__((vector_size(16)));
// y[i] = round(a * q[i]) + b (sign = 1) or - b (sign = -1); n a multiple of 4.
static inline void qb_mul_offset(float* y, const float* q, float a, float b, int n) {
  const qb_v4f va = {a, a, a, a}, vb = {b, b, b, b};
  for (int i = 0; i < n; i += 4) {
    qb_v4f v;
    std::memcpy(&v, q + i, 16);
    v = v * va;
    __asm__("" : "+x"(v));
    v = v + vb;
    std::memcpy(y + i, &v, 16);
  }
}
#else
static inline void qb_mul_offset(float* y, const float* q, float a, float b, int n) {
  for (int i = 0; i < n; ++i) y[i] = qb_opaque(a * q[i]) + b;
}
#endif
static inline void qb_mul_add(float* y, const float* q, float a, float b, int n) { qb_mul_offset(y, q, a, b, n); }
// -b is exact, and x + (-b) == x - b, so this is round(a*q) - b.
static inline void qb_mul_sub(float* y, const float* q, float a, float b, int n) { qb_mul_offset(y, q, a, -b, n); }

// Round to nearest, ties to even (ggml's nearest_int), saturated to +-2^22.
static inline int qb_nearest_int(float f) {
  if (!(f < 4194303.f)) f = f != f ? 0.f : 4194303.f;
  if (f < -4194303.f) f = -4194303.f;
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}
static inline int qb_clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// 6-bit scale and min of sub-block j (0..7) of a q4_k/q5_k block.
static inline void qb_scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  int a, b;
  gguf::scale_min_k4(j, s, a, b);
  *sc = static_cast<uint8_t>(a);
  *m = static_cast<uint8_t>(b);
}

// ---------------------------------------------------------------- dequantize one block
// The decode of gguf::decode8 (src/runtime/gguf_blocks.h, the device's dequantization), written
// as whole-block loops that the compiler vectorizes: going through decode8 per group of 8 measured
// up to 2-3x slower with AVX2 (q4_k/q5_k) and up to 7x without (q5_0/q5_1/q6_k). q8_0 (and q6_k
// with AVX2) go through decode8.

static inline void dequant_block(const BlockQ8_0* b, float* y) {
  const auto* p = reinterpret_cast<const uint8_t*>(b);
  for (int e0 = 0; e0 < 32; e0 += 8) {
    int q[8];
    float d, off;
    gguf::decode8<DType::q8_0>(p, e0, q, d, off);
    for (int i = 0; i < 8; ++i) y[e0 + i] = static_cast<float>(q[i]) * d;
  }
}
static inline void dequant_block(const BlockQ4_0* b, float* y) {
  const float d = qb_h2f(b->d);
  for (int i = 0; i < 16; ++i) {
    y[i] = static_cast<float>((b->qs[i] & 0xF) - 8) * d;
    y[i + 16] = static_cast<float>((b->qs[i] >> 4) - 8) * d;
  }
}
static inline void dequant_block(const BlockQ4_1* b, float* y) {
  float q[32];
  for (int i = 0; i < 16; ++i) {
    q[i] = static_cast<float>(b->qs[i] & 0xF);
    q[i + 16] = static_cast<float>(b->qs[i] >> 4);
  }
  qb_mul_add(y, q, qb_h2f(b->d), qb_h2f(b->m), 32);
}
static inline uint32_t qb_load_qh(const uint8_t* qh) { return gguf::ld_u32(qh); }
static inline void dequant_block(const BlockQ5_0* b, float* y) {
  const float d = qb_h2f(b->d);
  const uint32_t qh = qb_load_qh(b->qh);
  for (int i = 0; i < 16; ++i) {
    const int lo = (b->qs[i] & 0xF) | static_cast<int>(((qh >> i) & 1u) << 4);
    const int hi = (b->qs[i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1u) << 4);
    y[i] = static_cast<float>(lo - 16) * d;
    y[i + 16] = static_cast<float>(hi - 16) * d;
  }
}
static inline void dequant_block(const BlockQ5_1* b, float* y) {
  const uint32_t qh = qb_load_qh(b->qh);
  float q[32];
  for (int i = 0; i < 16; ++i) {
    q[i] = static_cast<float>((b->qs[i] & 0xF) | static_cast<int>(((qh >> i) & 1u) << 4));
    q[i + 16] = static_cast<float>((b->qs[i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1u) << 4));
  }
  qb_mul_add(y, q, qb_h2f(b->d), qb_h2f(b->m), 32);
}
static inline void dequant_block(const BlockQ4K* b, float* y) {
  const float d = qb_h2f(b->d), dmin = qb_h2f(b->dmin);
  for (int c = 0; c < 4; ++c) {
    const uint8_t* q = b->qs + 32 * c;
    float lo[32], hi[32];
    for (int l = 0; l < 32; ++l) {
      lo[l] = static_cast<float>(q[l] & 0xF);
      hi[l] = static_cast<float>(q[l] >> 4);
    }
    uint8_t sc, m;
    qb_scale_min_k4(2 * c, b->scales, &sc, &m);
    qb_mul_sub(y + 64 * c, lo, d * static_cast<float>(sc), dmin * static_cast<float>(m), 32);
    qb_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
    qb_mul_sub(y + 64 * c + 32, hi, d * static_cast<float>(sc), dmin * static_cast<float>(m), 32);
  }
}
static inline void dequant_block(const BlockQ5K* b, float* y) {
  const float d = qb_h2f(b->d), dmin = qb_h2f(b->dmin);
  for (int c = 0; c < 4; ++c) {
    const uint8_t* q = b->qs + 32 * c;
    float lo[32], hi[32];
    for (int l = 0; l < 32; ++l) {
      lo[l] = static_cast<float>((q[l] & 0xF) | (((b->qh[l] >> (2 * c)) & 1) << 4));
      hi[l] = static_cast<float>((q[l] >> 4) | (((b->qh[l] >> (2 * c + 1)) & 1) << 4));
    }
    uint8_t sc, m;
    qb_scale_min_k4(2 * c, b->scales, &sc, &m);
    qb_mul_sub(y + 64 * c, lo, d * static_cast<float>(sc), dmin * static_cast<float>(m), 32);
    qb_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
    qb_mul_sub(y + 64 * c + 32, hi, d * static_cast<float>(sc), dmin * static_cast<float>(m), 32);
  }
}
#if defined(__AVX2__)
// q6_k with AVX2: groups of 8 through gguf::decode8 at constant offsets (2.5x faster than the loop
// below there; 7x slower without AVX2).
template <int E0>
static inline void qb_dequant8_q6k(const uint8_t* b, float* y) {
  int q[8];
  float a, off;
  gguf::decode8<DType::q6_k>(b, E0, q, a, off);
  for (int i = 0; i < 8; ++i) y[E0 + i] = static_cast<float>(q[i]) * a;
}
static inline void dequant_block(const BlockQ6K* b, float* y) {
  const auto* p = reinterpret_cast<const uint8_t*>(b);
  [&]<int... G>(std::integer_sequence<int, G...>) { (qb_dequant8_q6k<8 * G>(p, y), ...); }(
      std::make_integer_sequence<int, 32>{});
}
#else
static inline void dequant_block(const BlockQ6K* b, float* y) {
  const float d = qb_h2f(b->d);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b->ql + 64 * h;
    const uint8_t* qh = b->qh + 32 * h;
    const int8_t* sc = b->scales + 8 * h;
    float* yy = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      yy[l] = (d * static_cast<float>(sc[is + 0])) * static_cast<float>(q1);
      yy[l + 32] = (d * static_cast<float>(sc[is + 2])) * static_cast<float>(q2);
      yy[l + 64] = (d * static_cast<float>(sc[is + 4])) * static_cast<float>(q3);
      yy[l + 96] = (d * static_cast<float>(sc[is + 6])) * static_cast<float>(q4);
    }
  }
}
#endif

// ---------------------------------------------------------------- quantize one block (simple types)

// Index of the first element of largest magnitude.
static inline float qb_signed_absmax(const float* x, int n) {
  float amax = 0.f, max = 0.f;
  for (int i = 0; i < n; ++i) {
    if (amax < std::fabs(x[i])) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}
// trunc(v) converted to an integer in [0, hi] as numpy's trunc().astype(uint8).clip(0, hi) does
// for the in-range values these formats produce.
static inline int qb_trunc_clip(float v, int hi) {
  const float t = std::trunc(v);
  if (!(t > 0.f)) return 0;
  return t >= static_cast<float>(hi) ? hi : static_cast<int>(t);
}

static inline void quant_block(const float* x, BlockQ8_0* b) {
  float amax = 0.f;
  for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float d = amax / 127.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = qb_f2h(d);
  for (int i = 0; i < 32; ++i) b->qs[i] = static_cast<int8_t>(std::round(x[i] * id));
}
static inline void quant_block(const float* x, BlockQ4_0* b) {
  const float max = qb_signed_absmax(x, 32);
  const float d = max / -8.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = qb_f2h(d);
  for (int i = 0; i < 16; ++i) {
    const int q0 = qb_trunc_clip(qb_opaque(x[i] * id) + 8.5f, 15);
    const int q1 = qb_trunc_clip(qb_opaque(x[i + 16] * id) + 8.5f, 15);
    b->qs[i] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}
static inline void qb_min_max(const float* x, int n, float* mn, float* mx) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  *mn = lo;
  *mx = hi;
}
static inline void quant_block(const float* x, BlockQ4_1* b) {
  float mn, mx;
  qb_min_max(x, 32, &mn, &mx);
  const float d = (mx - mn) / 15.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = qb_f2h(d);
  b->m = qb_f2h(mn);
  for (int i = 0; i < 16; ++i) {
    const int q0 = qb_trunc_clip(qb_opaque((x[i] - mn) * id) + 0.5f, 15);
    const int q1 = qb_trunc_clip(qb_opaque((x[i + 16] - mn) * id) + 0.5f, 15);
    b->qs[i] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}
static inline void quant_block(const float* x, BlockQ5_0* b) {
  const float max = qb_signed_absmax(x, 32);
  const float d = max / -16.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = qb_f2h(d);
  uint32_t qh = 0;
  for (int i = 0; i < 16; ++i) {
    const int q0 = qb_trunc_clip(qb_opaque(x[i] * id) + 16.5f, 31);
    const int q1 = qb_trunc_clip(qb_opaque(x[i + 16] * id) + 16.5f, 31);
    b->qs[i] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>((q0 >> 4) & 1) << i;
    qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (i + 16);
  }
  for (int k = 0; k < 4; ++k) b->qh[k] = static_cast<uint8_t>(qh >> (8 * k));
}
static inline void quant_block(const float* x, BlockQ5_1* b) {
  float mn, mx;
  qb_min_max(x, 32, &mn, &mx);
  const float d = (mx - mn) / 31.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = qb_f2h(d);
  b->m = qb_f2h(mn);
  uint32_t qh = 0;
  for (int i = 0; i < 16; ++i) {
    const int q0 = qb_trunc_clip(qb_opaque((x[i] - mn) * id) + 0.5f, 31);
    const int q1 = qb_trunc_clip(qb_opaque((x[i + 16] - mn) * id) + 0.5f, 31);
    b->qs[i] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>((q0 >> 4) & 1) << i;
    qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (i + 16);
  }
  for (int k = 0; k < 4; ++k) b->qh[k] = static_cast<uint8_t>(qh >> (8 * k));
}

// ---------------------------------------------------------------- k-quants

// Weighted asymmetric quantization of n values to [0, nmax]: x ~ scale * L - the_min.
// Starts from the min/max grid and tries nstep rescalings of the grid, each refined by a
// weighted least-squares fit of (scale, min), keeping the lowest weighted squared error.
static inline float qb_make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min,
                                        uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float mn = x[0], mx = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    mn = x[i] < mn ? x[i] : mn;
    mx = x[i] > mx ? x[i] : mx;
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -mn;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (mx - mn);
  float scale = 1.f / iscale;
  float best = 0.f;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(qb_clampi(qb_nearest_int(iscale * (x[i] - mn)), 0, nmax));
    const float diff = scale * L[i] + mn - x[i];
    best += w[i] * diff * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = qb_clampi(qb_nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        err += w[i] * diff * diff;
      }
      if (err < best) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best = err;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *the_min = -mn;
  return scale;
}

// Symmetric quantization of n values to [-nmax, nmax-1] (stored + nmax), weights x^2; tries
// 18 grid rescalings around nmax / max and keeps the best least-squares scale.
static inline float qb_make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = qb_clampi(qb_nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = qb_clampi(qb_nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + qb_clampi(qb_nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Shared by q4_k / q5_k: 8 sub-block (scale, min) fits, 6-bit scale/min codes, final levels L.
static inline void qb_quant_k_scales(const float* x, int nmax, float rmin, int nstep, uint16_t* dh, uint16_t* dminh,
                                     uint8_t* scales12, uint8_t* L) {
  float w[32], mins[8], sc[8];
  uint8_t Laux[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    sc[j] = qb_make_qkx2_quants(32, nmax, xs, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
    if (sc[j] > max_scale) max_scale = sc[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int k = 0; k < 12; ++k) scales12[k] = 0;
  for (int j = 0; j < 8; ++j) {
    const int ls = qb_clampi(qb_nearest_int(inv_scale * sc[j]), 0, 63);
    const int lm = qb_clampi(qb_nearest_int(inv_min * mins[j]), 0, 63);
    if (j < 4) {
      scales12[j] = static_cast<uint8_t>(ls);
      scales12[j + 4] = static_cast<uint8_t>(lm);
    } else {
      scales12[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales12[j - 4] = static_cast<uint8_t>(scales12[j - 4] | ((ls >> 4) << 6));
      scales12[j] = static_cast<uint8_t>(scales12[j] | ((lm >> 4) << 6));
    }
  }
  *dh = qb_f2h(max_scale / 63.f);
  *dminh = qb_f2h(max_min / 63.f);
  const float d = qb_h2f(*dh), dmin = qb_h2f(*dminh);
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    qb_scale_min_k4(j, scales12, &s, &m);
    const float dd = d * static_cast<float>(s);
    if (dd == 0.f) continue;
    const float dm = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = static_cast<uint8_t>(qb_clampi(qb_nearest_int((x[32 * j + l] + dm) / dd), 0, nmax));
  }
}

static inline void quant_block(const float* x, BlockQ4K* b) {
  uint8_t L[256];
  qb_quant_k_scales(x, 15, -1.f, 20, &b->d, &b->dmin, b->scales, L);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b->qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}
static inline void quant_block(const float* x, BlockQ5K* b) {
  uint8_t L[256];
  qb_quant_k_scales(x, 31, -0.5f, 15, &b->d, &b->dmin, b->scales, L);
  for (int l = 0; l < 32; ++l) b->qh[l] = 0;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
      b->qh[l] = static_cast<uint8_t>(b->qh[l] | ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
      b->qs[32 * c + l] = static_cast<uint8_t>((l1 & 0xF) | ((l2 & 0xF) << 4));
    }
}
static inline void quant_block(const float* x, BlockQ6K* b) {
  int8_t L[256];
  float sc[16];
  float max_scale = 0, max_abs = 0;
  for (int ib = 0; ib < 16; ++ib) {
    sc[ib] = qb_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    if (std::fabs(sc[ib]) > max_abs) {
      max_abs = std::fabs(sc[ib]);
      max_scale = sc[ib];
    }
  }
  if (max_abs < 1e-15f) {
    std::memset(b, 0, sizeof(*b));
    return;
  }
  const float iscale = -128.f / max_scale;
  b->d = qb_f2h(1.f / iscale);
  for (int ib = 0; ib < 16; ++ib)
    b->scales[ib] = static_cast<int8_t>(qb_clampi(qb_nearest_int(iscale * sc[ib]), -128, 127));
  const float dh = qb_h2f(b->d);
  for (int j = 0; j < 16; ++j) {
    const float d = dh * static_cast<float>(b->scales[j]);
    if (d == 0.f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(qb_clampi(qb_nearest_int(x[16 * j + i] / d), -32, 31) + 32);
  }
  for (int h = 0; h < 2; ++h) {
    const int8_t* LL = L + 128 * h;
    uint8_t* ql = b->ql + 64 * h;
    uint8_t* qh = b->qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int q1 = LL[l], q2 = LL[l + 32], q3 = LL[l + 64], q4 = LL[l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

// ---------------------------------------------------------------- rows (n a multiple of the block size)

template <typename B>
struct BlockTraits;
template <> struct BlockTraits<BlockQ8_0> { static constexpr int n = 32; static constexpr DType t = DType::q8_0; };
template <> struct BlockTraits<BlockQ4_0> { static constexpr int n = 32; static constexpr DType t = DType::q4_0; };
template <> struct BlockTraits<BlockQ4_1> { static constexpr int n = 32; static constexpr DType t = DType::q4_1; };
template <> struct BlockTraits<BlockQ5_0> { static constexpr int n = 32; static constexpr DType t = DType::q5_0; };
template <> struct BlockTraits<BlockQ5_1> { static constexpr int n = 32; static constexpr DType t = DType::q5_1; };
template <> struct BlockTraits<BlockQ4K> { static constexpr int n = 256; static constexpr DType t = DType::q4_k; };
template <> struct BlockTraits<BlockQ5K> { static constexpr int n = 256; static constexpr DType t = DType::q5_k; };
template <> struct BlockTraits<BlockQ6K> { static constexpr int n = 256; static constexpr DType t = DType::q6_k; };

template <typename B>
static inline void dequant_row(const void* src, float* y, int64_t n) {
  B b;
  const char* p = static_cast<const char*>(src);
  for (int64_t i = 0; i < n / BlockTraits<B>::n; ++i) {
    std::memcpy(&b, p + i * static_cast<int64_t>(sizeof(B)), sizeof(B));
    dequant_block(&b, y + i * BlockTraits<B>::n);
  }
}
template <typename B>
static inline void quant_row(const float* x, void* dst, int64_t n) {
  B b;
  char* p = static_cast<char*>(dst);
  for (int64_t i = 0; i < n / BlockTraits<B>::n; ++i) {
    quant_block(x + i * BlockTraits<B>::n, &b);
    std::memcpy(p + i * static_cast<int64_t>(sizeof(B)), &b, sizeof(B));
  }
}

// Calls f.template operator()<BlockType>() for a quantized dtype; returns false for others.
template <typename F>
static inline bool visit_block_type(DType t, F&& f) {
  switch (t) {
    case DType::q8_0: f.template operator()<BlockQ8_0>(); return true;
    case DType::q4_0: f.template operator()<BlockQ4_0>(); return true;
    case DType::q4_1: f.template operator()<BlockQ4_1>(); return true;
    case DType::q5_0: f.template operator()<BlockQ5_0>(); return true;
    case DType::q5_1: f.template operator()<BlockQ5_1>(); return true;
    case DType::q4_k: f.template operator()<BlockQ4K>(); return true;
    case DType::q5_k: f.template operator()<BlockQ5K>(); return true;
    case DType::q6_k: f.template operator()<BlockQ6K>(); return true;
    default: return false;
  }
}

}  // namespace flagos::quant
