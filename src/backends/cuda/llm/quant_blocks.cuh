// GGUF block formats on the device: byte layouts (the same as src/backends/cpu/kernels/
// quant_blocks.h), dequantization of 8 consecutive elements bit-identical to the CPU (products
// rounded before the offset is added: __fmul_rn / __fadd_rn keep nvcc from fusing them), and
// helpers that build int8x4 level words for __dp4a (linear's int8 decode path). Blocks start at
// even byte offsets only, so multi-byte fields are read as 16-bit halves.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "flagos/dtype.h"

namespace flagos::cuda::llm {

constexpr bool is_quant_type(DType t) {
  return static_cast<int>(t) >= static_cast<int>(DType::q8_0) && t != DType::count_;
}

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

// ---------------------------------------------------------------- int8x4 level words
// Low / high nibbles of 4 bytes as 4 bytes.
__device__ __forceinline__ int nib_lo(uint32_t v) { return static_cast<int>(v & 0x0F0F0F0Fu); }
__device__ __forceinline__ int nib_hi(uint32_t v) { return static_cast<int>((v >> 4) & 0x0F0F0F0Fu); }
// The low 4 bits of bits4 spread to bit 4 of the 4 bytes (the 5th bit of q5 levels).
__device__ __forceinline__ int bits4_to_b4(uint32_t bits4) {
  return static_cast<int>(((bits4 & 1u) << 4) | ((bits4 & 2u) << 11) | ((bits4 & 4u) << 18) | ((bits4 & 8u) << 25));
}

}  // namespace flagos::cuda::llm
