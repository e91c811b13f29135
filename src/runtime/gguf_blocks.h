// GGUF/ggml block-quantized formats, one definition for every backend: block layouts, the k-quant
// scale/min unpacking, and the per-element decode of 8 consecutive elements (integer levels plus
// the group's scale and offset). Plain C++ usable from host code and, under nvcc, device code
// (FLAGOS_HD); no backend includes another's copy (the CPU's quant_blocks.h and the CUDA
// backend's quant_blocks.cuh build their (de)quantization on this). Functions have internal
// linkage: the CPU backend compiles this once per ISA and the copies must not merge at link time.
//
// Dequantized value of element e: y = round(a * q) (affine mul), round(a * q) + b (mul_add) or
// round(a * q) - b (mul_sub), with a and b the f32 products below (each rounded once): bit-identical
// to the gguf Python package and ggml as long as the caller does not fuse the final add into an FMA.
#pragma once
#include <cstdint>

#include "flagos/dtype.h"

// FLAGOS_HD: callable from host and device code (the same definition as cuda_common.cuh's).
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#ifndef FLAGOS_HD
#define FLAGOS_HD __host__ __device__ __forceinline__
#endif
#define FLAGOS_GGUF_FN static FLAGOS_HD
#else
#define FLAGOS_GGUF_FN static inline
#endif
#if defined(__CUDA_ARCH__)
#define FLAGOS_GGUF_UNROLL _Pragma("unroll")
#else
#define FLAGOS_GGUF_UNROLL
#endif

namespace flagos::gguf {

// ---------------------------------------------------------------- layouts
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };
// bit i of qh (little endian u32) is the 5th bit of element i
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
// 8 sub-blocks of 32: 6-bit scales and mins packed in scales[12]; 4-bit quants, low nibbles of
// bytes [32c, 32c+32) are sub-block 2c, high nibbles sub-block 2c+1.
struct BlockQ4K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
// As q4_k plus a 5th bit: bit j of qh[l] belongs to element l of sub-block j.
struct BlockQ5K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
// 16 sub-blocks of 16 with int8 scales; 6-bit quants (4 low bits in ql, 2 high in qh), offset 32.
// Element e = 128h + 32k + l (k = 0..3, l = 0..31): low nibble (k < 2) or high nibble (k >= 2) of
// ql[64h + 32(k & 1) + l], bits 2k..2k+1 of qh[32h + l]; scale scales[e / 16].
struct BlockQ6K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4K) == 144 && sizeof(BlockQ5K) == 176 && sizeof(BlockQ6K) == 210);

enum class Affine : uint8_t { mul, mul_add, mul_sub };

template <DType Q> struct Format;
template <> struct Format<DType::q8_0> { using Block = BlockQ8_0; static constexpr int n = 32; static constexpr Affine op = Affine::mul; };
template <> struct Format<DType::q4_0> { using Block = BlockQ4_0; static constexpr int n = 32; static constexpr Affine op = Affine::mul; };
template <> struct Format<DType::q4_1> { using Block = BlockQ4_1; static constexpr int n = 32; static constexpr Affine op = Affine::mul_add; };
template <> struct Format<DType::q5_0> { using Block = BlockQ5_0; static constexpr int n = 32; static constexpr Affine op = Affine::mul; };
template <> struct Format<DType::q5_1> { using Block = BlockQ5_1; static constexpr int n = 32; static constexpr Affine op = Affine::mul_add; };
template <> struct Format<DType::q4_k> { using Block = BlockQ4K; static constexpr int n = 256; static constexpr Affine op = Affine::mul_sub; };
template <> struct Format<DType::q5_k> { using Block = BlockQ5K; static constexpr int n = 256; static constexpr Affine op = Affine::mul_sub; };
template <> struct Format<DType::q6_k> { using Block = BlockQ6K; static constexpr int n = 256; static constexpr Affine op = Affine::mul; };
template <DType Q> inline constexpr int block_bytes = static_cast<int>(sizeof(typename Format<Q>::Block));

// ---------------------------------------------------------------- field access (any alignment)
FLAGOS_GGUF_FN uint32_t ld_u16(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8); }
FLAGOS_GGUF_FN uint32_t ld_u32(const uint8_t* p) { return ld_u16(p) | (ld_u16(p + 2) << 16); }
FLAGOS_GGUF_FN float h2f(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
#else
  return f16_to_f32(static_cast<uint16_t>(bits));
#endif
}
// A product rounded to f32 (never contracted with a following add).
FLAGOS_GGUF_FN float mul_rn(float x, float y) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(x, y);
#else
  return x * y;
#endif
}

// 6-bit scale and min of sub-block j (0..7) of a q4_k/q5_k block (s = the 12 scale bytes).
FLAGOS_GGUF_FN void scale_min_k4(int j, const uint8_t* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// ---------------------------------------------------------------- decode 8 elements
// Levels q[i] of elements e0 + i (e0 a multiple of 8) of the block at b, and the group's a, b
// (Format<Q>::op says how they combine; b is 0 for Affine::mul).
template <DType Q>
FLAGOS_GGUF_FN void decode8(const uint8_t* b, int e0, int (&q)[8], float& sa, float& sb) {
  sb = 0.f;
  if constexpr (Q == DType::q8_0) {
    sa = h2f(ld_u16(b));
    FLAGOS_GGUF_UNROLL
    for (int i = 0; i < 8; ++i) q[i] = static_cast<int8_t>(b[2 + e0 + i]);
  } else if constexpr (Q == DType::q4_0 || Q == DType::q4_1) {
    sa = h2f(ld_u16(b));
    const uint8_t* qs = b + (Q == DType::q4_0 ? 2 : 4);
    const int hi = e0 >= 16, l0 = e0 & 15;
    FLAGOS_GGUF_UNROLL
    for (int i = 0; i < 8; ++i) {
      const int v = hi ? (qs[l0 + i] >> 4) : (qs[l0 + i] & 0xF);
      q[i] = Q == DType::q4_0 ? v - 8 : v;
    }
    if constexpr (Q == DType::q4_1) sb = h2f(ld_u16(b + 2));
  } else if constexpr (Q == DType::q5_0 || Q == DType::q5_1) {
    constexpr int off = Q == DType::q5_0 ? 2 : 4;
    sa = h2f(ld_u16(b));
    const uint32_t qh = ld_u32(b + off);
    const uint8_t* qs = b + off + 4;
    const int hi = e0 >= 16, l0 = e0 & 15;
    FLAGOS_GGUF_UNROLL
    for (int i = 0; i < 8; ++i) {
      const int v = (hi ? (qs[l0 + i] >> 4) : (qs[l0 + i] & 0xF)) | static_cast<int>(((qh >> (e0 + i)) & 1u) << 4);
      q[i] = Q == DType::q5_0 ? v - 16 : v;
    }
    if constexpr (Q == DType::q5_1) sb = h2f(ld_u16(b + 2));
  } else if constexpr (Q == DType::q4_k || Q == DType::q5_k) {
    const int c = e0 / 64, hi = (e0 / 32) & 1, l0 = e0 & 31;
    int sc, m;
    scale_min_k4(2 * c + hi, b + 4, sc, m);
    sa = mul_rn(h2f(ld_u16(b)), static_cast<float>(sc));
    sb = mul_rn(h2f(ld_u16(b + 2)), static_cast<float>(m));
    const uint8_t* qs = b + (Q == DType::q4_k ? 16 : 48) + 32 * c;
    FLAGOS_GGUF_UNROLL
    for (int i = 0; i < 8; ++i) {
      int v = hi ? (qs[l0 + i] >> 4) : (qs[l0 + i] & 0xF);
      if constexpr (Q == DType::q5_k) v |= ((b[16 + l0 + i] >> (2 * c + hi)) & 1) << 4;
      q[i] = v;
    }
  } else {
    static_assert(Q == DType::q6_k);
    const int h = e0 / 128, r = e0 & 127, k = r / 32, l0 = r & 31;
    const uint8_t* ql = b + 64 * h + (k & 1) * 32;
    const uint8_t* qh = b + 128 + 32 * h;
    sa = mul_rn(h2f(ld_u16(b + 208)), static_cast<float>(static_cast<int8_t>(b[192 + e0 / 16])));
    FLAGOS_GGUF_UNROLL
    for (int i = 0; i < 8; ++i) {
      const int lo = k < 2 ? (ql[l0 + i] & 0xF) : (ql[l0 + i] >> 4);
      q[i] = (lo | (((qh[l0 + i] >> (2 * k)) & 3) << 4)) - 32;
    }
  }
}

}  // namespace flagos::gguf
