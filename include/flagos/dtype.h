// Element types, including GGUF block-quantized storage types.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string_view>

namespace flagos {

enum class DType : uint8_t {
  f32, f64, f16, bf16, i8, u8, i16, i32, i64, boolean,
  // GGUF block-quantized types: the innermost dimension is stored as blocks.
  q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k,
  count_
};
inline constexpr int kNumDTypes = static_cast<int>(DType::count_);

struct DTypeInfo {
  std::string_view name;
  uint32_t block_elems;  // 1 for plain types
  uint32_t block_bytes;  // bytes of one element (plain) or one block (quantized)
  bool is_float;
  bool is_int;     // integer (not bool)
  bool is_signed;
  bool is_quant;
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
// Parses "f32", "bf16", "q4_k", ... ; throws InvalidArgument on an unknown name.
DType dtype_from_name(std::string_view name);
inline bool is_float(DType t) { return dtype_info(t).is_float; }
inline bool is_int(DType t) { return dtype_info(t).is_int; }
inline bool is_quant(DType t) { return dtype_info(t).is_quant; }
// Bytes of one element; only for non-quantized types.
size_t element_size(DType t);
// Bytes needed for `n` elements along a row (n must be a multiple of the block size for quant types).
size_t row_bytes(DType t, int64_t n);

// Type promotion for binary ops (numpy/torch rules on these categories):
// bool < integers < floating; among floats, the wider wins; f16 with bf16 gives f32;
// signed with unsigned of the same width widens.
DType promote_types(DType a, DType b);

std::ostream& operator<<(std::ostream& os, DType t);

// ---- 16-bit float storage and conversions (round to nearest even) ----
struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {  // result is subnormal or zero
    if (ax < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = ax + 0xc8000fffu + ((ax >> 13) & 1u);  // rebias exponent (-112<<23) and round to nearest even
  return static_cast<uint16_t>(sign | (r >> 13));
}

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
inline uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace flagos
