#include "flagos/dtype.h"

#include <array>

#include "flagos/error.h"

namespace flagos {
namespace {
// name, block_elems, block_bytes, float, int, signed, quant
constexpr std::array<DTypeInfo, kNumDTypes> kInfo = {{
    {"f32", 1, 4, true, false, true, false},
    {"f64", 1, 8, true, false, true, false},
    {"f16", 1, 2, true, false, true, false},
    {"bf16", 1, 2, true, false, true, false},
    {"i8", 1, 1, false, true, true, false},
    {"u8", 1, 1, false, true, false, false},
    {"i16", 1, 2, false, true, true, false},
    {"i32", 1, 4, false, true, true, false},
    {"i64", 1, 8, false, true, true, false},
    {"bool", 1, 1, false, false, false, false},
    {"q8_0", 32, 34, false, false, true, true},
    {"q4_0", 32, 18, false, false, true, true},
    {"q4_1", 32, 20, false, false, true, true},
    {"q5_0", 32, 22, false, false, true, true},
    {"q5_1", 32, 24, false, false, true, true},
    {"q4_k", 256, 144, false, false, true, true},
    {"q5_k", 256, 176, false, false, true, true},
    {"q6_k", 256, 210, false, false, true, true},
}};

int int_rank(DType t) {  // bits, for promotion among integers
  switch (t) {
    case DType::i8: case DType::u8: return 8;
    case DType::i16: return 16;
    case DType::i32: return 32;
    case DType::i64: return 64;
    default: return 0;
  }
}
}  // namespace

const DTypeInfo& dtype_info(DType t) {
  const auto i = static_cast<size_t>(t);
  FLAGOS_CHECK(i < kInfo.size(), "invalid dtype value ", i);
  return kInfo[i];
}

DType dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < kInfo.size(); ++i)
    if (kInfo[i].name == name) return static_cast<DType>(i);
  if (name == "float32" || name == "float") return DType::f32;
  if (name == "float16" || name == "half") return DType::f16;
  if (name == "bfloat16") return DType::bf16;
  if (name == "float64" || name == "double") return DType::f64;
  std::string all;
  for (const auto& d : kInfo) all += (all.empty() ? "" : ", ") + std::string(d.name);
  fail("unknown dtype '", name, "' (known: ", all, ")");
}

size_t element_size(DType t) {
  const auto& i = dtype_info(t);
  FLAGOS_CHECK(!i.is_quant, "element_size: ", i.name, " is block-quantized (", i.block_elems,
               " elements per ", i.block_bytes, "-byte block)");
  return i.block_bytes;
}

size_t row_bytes(DType t, int64_t n) {
  const auto& i = dtype_info(t);
  FLAGOS_CHECK(n >= 0 && n % i.block_elems == 0, "row of ", n, " elements is not a multiple of the ", i.name,
               " block size ", i.block_elems);
  return static_cast<size_t>(n / i.block_elems) * i.block_bytes;
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const auto& ia = dtype_info(a);
  const auto& ib = dtype_info(b);
  FLAGOS_CHECK(!ia.is_quant && !ib.is_quant, "no type promotion between ", ia.name, " and ", ib.name,
               " (quantized types are storage only)");
  if (ia.is_float || ib.is_float) {
    if (!ia.is_float) return b;
    if (!ib.is_float) return a;
    if (a == DType::f64 || b == DType::f64) return DType::f64;
    return DType::f32;  // f32 with f16/bf16, or f16 with bf16
  }
  if (a == DType::boolean) return b;
  if (b == DType::boolean) return a;
  const int ra = int_rank(a), rb = int_rank(b);
  if (ia.is_signed == ib.is_signed) return ra >= rb ? a : b;
  // mixed signedness: the signed type if strictly wider, else the next wider signed type
  const DType s = ia.is_signed ? a : b;
  const DType u = ia.is_signed ? b : a;
  if (int_rank(s) > int_rank(u)) return s;
  switch (int_rank(u)) {
    case 8: return DType::i16;
    case 16: return DType::i32;
    default: return DType::i64;
  }
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

}  // namespace flagos
