// GGUF block formats on the device: byte layouts (the same as src/backends/cpu/kernels/
// quant_blocks.h), dequantization of 8 consecutive elements bit-identical to the CPU (products
// rounded before the offset is added: __fmul_rn / __fadd_rn keep nvcc from fusing them), and the
// integer dot of one 32-element weight chunk with int8 activations (the int8 decode path of
// linear). Blocks start at even byte offsets only, so multi-byte fields are read as 16-bit halves.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "flagos/dtype.h"

namespace flagos::cuda::llm {

template <DType Q>
struct QTraits;
template <> struct QTraits<DType::q8_0> { static constexpr int n = 32, bytes = 34; };
template <> struct QTraits<DType::q4_0> { static constexpr int n = 32, bytes = 18; };
template <> struct QTraits<DType::q4_1> { static constexpr int n = 32, bytes = 20; };
template <> struct QTraits<DType::q5_0> { static constexpr int n = 32, bytes = 22; };
template <> struct QTraits<DType::q5_1> { static constexpr int n = 32, bytes = 24; };
template <> struct QTraits<DType::q4_k> { static constexpr int n = 256, bytes = 144; };
template <> struct QTraits<DType::q5_k> { static constexpr int n = 256, bytes = 176; };
template <> struct QTraits<DType::q6_k> { static constexpr int n = 256, bytes = 210; };

// Calls f.template operator()<Q>() for a quantized dtype; false for others.
template <typename F>
inline bool visit_quant(DType t, F&& f) {
  switch (t) {
    case DType::q8_0: f.template operator()<DType::q8_0>(); return true;
    case DType::q4_0: f.template operator()<DType::q4_0>(); return true;
    case DType::q4_1: f.template operator()<DType::q4_1>(); return true;
    case DType::q5_0: f.template operator()<DType::q5_0>(); return true;
    case DType::q5_1: f.template operator()<DType::q5_1>(); return true;
    case DType::q4_k: f.template operator()<DType::q4_k>(); return true;
    case DType::q5_k: f.template operator()<DType::q5_k>(); return true;
    case DType::q6_k: f.template operator()<DType::q6_k>(); return true;
    default: return false;
  }
}

__device__ __forceinline__ uint32_t qld16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
// 4 bytes from a 2-byte aligned address (little endian).
__device__ __forceinline__ uint32_t qld32(const uint8_t* p) { return qld16(p) | (qld16(p + 2) << 16); }
__device__ __forceinline__ float qh2f(uint32_t bits) { return __half2float(__ushort_as_half(static_cast<unsigned short>(bits))); }

// 6-bit scale and min of sub-block j (0..7) of a q4_k/q5_k block (scales = 12 bytes).
__device__ __forceinline__ void q_scale_min_k4(int j, const uint8_t* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// ---------------------------------------------------------------- dequantize 8 elements
// y[i] = element e0 + i of the block at `b` (e0 a multiple of 8), exactly as the CPU computes it.
template <DType Q>
__device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
  if constexpr (Q == DType::q8_0) {
    const float d = qh2f(qld16(b));
    const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = __fmul_rn(static_cast<float>(q[e0 + i]), d);
  } else if constexpr (Q == DType::q4_0 || Q == DType::q4_1) {
    const float d = qh2f(qld16(b));
    const uint8_t* qs = b + (Q == DType::q4_0 ? 2 : 4);
    const int hi = e0 >= 16, l0 = e0 & 15;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int v = hi ? (qs[l0 + i] >> 4) : (qs[l0 + i] & 0xF);
      if constexpr (Q == DType::q4_0) y[i] = __fmul_rn(static_cast<float>(v - 8), d);
      else y[i] = __fadd_rn(__fmul_rn(static_cast<float>(v), d), qh2f(qld16(b + 2)));
    }
  } else if constexpr (Q == DType::q5_0 || Q == DType::q5_1) {
    constexpr int off = Q == DType::q5_0 ? 2 : 4;
    const float d = qh2f(qld16(b));
    const uint32_t qh = qld32(b + off);
    const uint8_t* qs = b + off + 4;
    const int hi = e0 >= 16, l0 = e0 & 15;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = e0 + i;
      const int v = (hi ? (qs[l0 + i] >> 4) : (qs[l0 + i] & 0xF)) | static_cast<int>(((qh >> e) & 1u) << 4);
      if constexpr (Q == DType::q5_0) y[i] = __fmul_rn(static_cast<float>(v - 16), d);
      else y[i] = __fadd_rn(__fmul_rn(static_cast<float>(v), d), qh2f(qld16(b + 2)));
    }
  } else if constexpr (Q == DType::q4_k || Q == DType::q5_k) {
    const float d = qh2f(qld16(b)), dmin = qh2f(qld16(b + 2));
    const int c = e0 / 64, hi = (e0 / 32) & 1, l0 = e0 & 31;
    int sc, m;
    q_scale_min_k4(2 * c + hi, b + 4, sc, m);
    const float a = __fmul_rn(d, static_cast<float>(sc)), off = __fmul_rn(dmin, static_cast<float>(m));
    const uint8_t* qs = b + (Q == DType::q4_k ? 16 : 48) + 32 * c;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      int v = hi ? (qs[l0 + i] >> 4) : (qs[l0 + i] & 0xF);
      if constexpr (Q == DType::q5_k) v |= ((b[16 + l0 + i] >> (2 * c + hi)) & 1) << 4;
      y[i] = __fsub_rn(__fmul_rn(static_cast<float>(v), a), off);
    }
  } else {  // q6_k: ql[128] qh[64] scales[16] d
    const float d = qh2f(qld16(b + 208));
    const int h = e0 / 128, r = e0 & 127, k = r / 32, l0 = r & 31;
    const uint8_t* ql = b + 64 * h + (k & 1) * 32;
    const uint8_t* qh = b + 128 + 32 * h;
    const float a = __fmul_rn(d, static_cast<float>(reinterpret_cast<const int8_t*>(b + 192)[e0 / 16]));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int lo = k < 2 ? (ql[l0 + i] & 0xF) : (ql[l0 + i] >> 4);
      const int v = (lo | (((qh[l0 + i] >> (2 * k)) & 3) << 4)) - 32;
      y[i] = __fmul_rn(a, static_cast<float>(v));
    }
  }
}

// ---------------------------------------------------------------- int8 dot of one 32-element chunk
// Chunk c (32 consecutive elements) of the weight block at `b`, dotted with 32 int8 activations
// packed in 8 ints (`a`), whose sum is `asum`. Returns the chunk's contribution in units of the
// activation scale: sum_i w_i * a_i, with the block's levels dotted exactly in integers.
__device__ __forceinline__ int dot4(int a, int b, int acc) { return __dp4a(a, b, acc); }

// Packs bytes (as 8 nibbles of v, low nibbles of 4 bytes) ...: helpers below build int8x4 words.
__device__ __forceinline__ int nib_lo(uint32_t v) { return static_cast<int>(v & 0x0F0F0F0Fu); }
__device__ __forceinline__ int nib_hi(uint32_t v) { return static_cast<int>((v >> 4) & 0x0F0F0F0Fu); }
// Bit k of 4 consecutive bits (qh >> s) spread to bit 4 of each byte.
__device__ __forceinline__ int bits4_to_b4(uint32_t bits4) {
  return static_cast<int>(((bits4 & 1u) << 4) | ((bits4 & 2u) << 11) | ((bits4 & 4u) << 18) | ((bits4 & 8u) << 25));
}

template <DType Q>
__device__ __forceinline__ float chunk_dot(const uint8_t* b, int c, const int (&a)[8], int asum) {
  if constexpr (Q == DType::q8_0) {
    int s = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) s = dot4(static_cast<int>(qld32(b + 2 + 4 * i)), a[i], s);
    return qh2f(qld16(b)) * static_cast<float>(s);
  } else if constexpr (Q == DType::q4_0 || Q == DType::q4_1) {
    const uint8_t* qs = b + (Q == DType::q4_0 ? 2 : 4);
    int s = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t v = qld32(qs + 4 * i);
      s = dot4(nib_lo(v), a[i], s);      // elements 4i..4i+3
      s = dot4(nib_hi(v), a[4 + i], s);  // elements 16+4i..
    }
    const float d = qh2f(qld16(b));
    if constexpr (Q == DType::q4_0) return d * static_cast<float>(s - 8 * asum);
    else return d * static_cast<float>(s) + qh2f(qld16(b + 2)) * static_cast<float>(asum);
  } else if constexpr (Q == DType::q5_0 || Q == DType::q5_1) {
    constexpr int off = Q == DType::q5_0 ? 2 : 4;
    const uint32_t qh = qld32(b + off);
    const uint8_t* qs = b + off + 4;
    int s = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t v = qld32(qs + 4 * i);
      s = dot4(nib_lo(v) | bits4_to_b4(qh >> (4 * i)), a[i], s);
      s = dot4(nib_hi(v) | bits4_to_b4(qh >> (16 + 4 * i)), a[4 + i], s);
    }
    const float d = qh2f(qld16(b));
    if constexpr (Q == DType::q5_0) return d * static_cast<float>(s - 16 * asum);
    else return d * static_cast<float>(s) + qh2f(qld16(b + 2)) * static_cast<float>(asum);
  } else if constexpr (Q == DType::q4_k || Q == DType::q5_k) {
    const int cc = c >> 1, hi = c & 1;  // 32-byte group of qs, nibble half
    const uint8_t* qs = b + (Q == DType::q4_k ? 16 : 48) + 32 * cc;
    int s = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t v = qld32(qs + 4 * i);
      int w = hi ? nib_hi(v) : nib_lo(v);
      if constexpr (Q == DType::q5_k) {
        const uint32_t h = qld32(b + 16 + 4 * i) >> c;  // bit c of each of the 4 bytes
        w |= static_cast<int>((h & 0x01010101u) << 4);
      }
      s = dot4(w, a[i], s);
    }
    int sc, m;
    q_scale_min_k4(c, b + 4, sc, m);
    return qh2f(qld16(b)) * static_cast<float>(sc * s) - qh2f(qld16(b + 2)) * static_cast<float>(m * asum);
  } else {  // q6_k: chunk c = elements 32c..32c+31 = half h, quarter k
    const int h = c >> 2, k = c & 3;
    const uint8_t* ql = b + 64 * h + (k & 1) * 32;
    const uint8_t* qh = b + 128 + 32 * h;
    int s0 = 0, s1 = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t v = qld32(ql + 4 * i);
      const uint32_t hv = (qld32(qh + 4 * i) >> (2 * k)) & 0x03030303u;
      const int w = static_cast<int>(((k < 2 ? v : v >> 4) & 0x0F0F0F0Fu) | (hv << 4));
      // levels 0..63; the offset 32 is removed with the activation sums below
      if (i < 4) s0 = dot4(w, a[i], s0);
      else s1 = dot4(w, a[i], s1);
    }
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 2 * c;
    // sum over 16-element halves: sc * (s - 32 * asum_half); the halves' sums come from dp4a with ones
    int as0 = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) as0 = dot4(a[i], 0x01010101, as0);
    const int as1 = asum - as0;
    return qh2f(qld16(b + 208)) * static_cast<float>(sc[0] * (s0 - 32 * as0) + sc[1] * (s1 - 32 * as1));
  }
}

}  // namespace flagos::cuda::llm
