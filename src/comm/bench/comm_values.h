// Element i of a buffer of any flagos datatype, read as or written from a double (f16/bf16 through
// f32). Shared by `flagos bench comm` (fill and check) and the test suite (tests/comm/comm_suite.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "flagos/comm.h"
#include "flagos/dtype.h"

namespace flagos::comm::bench {

inline void store(void* p, size_t i, flagosDataType_t t, double v) {
  switch (t) {
    case flagosInt8: static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); break;
    case flagosUint8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
    case flagosInt32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case flagosUint32: static_cast<uint32_t*>(p)[i] = static_cast<uint32_t>(v); break;
    case flagosInt64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
    case flagosUint64: static_cast<uint64_t*>(p)[i] = static_cast<uint64_t>(v); break;
    case flagosFloat16: static_cast<uint16_t*>(p)[i] = f32_to_f16(static_cast<float>(v)); break;
    case flagosBfloat16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(static_cast<float>(v)); break;
    case flagosFloat32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case flagosFloat64: static_cast<double*>(p)[i] = v; break;
    default: break;
  }
}
inline double load(const void* p, size_t i, flagosDataType_t t) {
  switch (t) {
    case flagosInt8: return static_cast<const int8_t*>(p)[i];
    case flagosUint8: return static_cast<const uint8_t*>(p)[i];
    case flagosInt32: return static_cast<const int32_t*>(p)[i];
    case flagosUint32: return static_cast<const uint32_t*>(p)[i];
    case flagosInt64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case flagosUint64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    case flagosFloat16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case flagosBfloat16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case flagosFloat32: return static_cast<const float*>(p)[i];
    case flagosFloat64: return static_cast<const double*>(p)[i];
    default: return 0;
  }
}

}  // namespace flagos::comm::bench
