// GGUF block formats on the device: layouts and element decode come from src/runtime/gguf_blocks.h
// (shared with the CPU); here: dequantization of 8 consecutive elements bit-identical to the CPU
// (products rounded before the offset is added: __fmul_rn / __fadd_rn keep nvcc from fusing them),
// and helpers that build int8x4 level words for __dp4a (linear's int8 decode path). Blocks start
// at even byte offsets only, so multi-byte fields are read as 16-bit halves.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "flagos/dtype.h"
#include "runtime/gguf_blocks.h"

namespace flagos::cuda::llm {

constexpr bool is_quant_type(DType t) {
  return static_cast<int>(t) >= static_cast<int>(DType::q8_0) && t != DType::count_;
}

template <DType Q>
struct QTraits {
  static constexpr int n = gguf::Format<Q>::n, bytes = gguf::block_bytes<Q>;
};

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

__device__ __forceinline__ void q_scale_min_k4(int j, const uint8_t* s, int& sc, int& m) {
  gguf::scale_min_k4(j, s, sc, m);
}

// ---------------------------------------------------------------- dequantize 8 elements
// y[i] = element e0 + i of the block at `b` (e0 a multiple of 8), exactly as the CPU computes it.
template <DType Q>
__device__ __forceinline__ void deq8(const uint8_t* b, int e0, float (&y)[8]) {
  int q[8];
  float a, off;
  gguf::decode8<Q>(b, e0, q, a, off);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float p = __fmul_rn(static_cast<float>(q[i]), a);
    if constexpr (gguf::Format<Q>::op == gguf::Affine::mul_add) y[i] = __fadd_rn(p, off);
    else if constexpr (gguf::Format<Q>::op == gguf::Affine::mul_sub) y[i] = __fsub_rn(p, off);
    else y[i] = p;
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
