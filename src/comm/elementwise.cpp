// Element-wise helpers shared by the adaptors and the heterogeneous mode: the division that turns a
// sum into an average (integers truncate toward zero; f16/bf16 divide in f32).
#include "comm_internal.h"
#include "flagos/dtype.h"

namespace flagos::comm {
namespace {

template <typename T>
void divide_ints(void* p, size_t n, int by) {
  T* v = static_cast<T*>(p);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(v[i] / static_cast<T>(by));
}

}  // namespace

void divide_elements(void* p, size_t n, flagosDataType_t t, int by) {
  switch (t) {
    case flagosInt8: return divide_ints<int8_t>(p, n, by);
    case flagosUint8: return divide_ints<uint8_t>(p, n, by);
    case flagosInt32: return divide_ints<int32_t>(p, n, by);
    case flagosUint32: return divide_ints<uint32_t>(p, n, by);
    case flagosInt64: return divide_ints<int64_t>(p, n, by);
    case flagosUint64: return divide_ints<uint64_t>(p, n, by);
    case flagosFloat32: {
      float* v = static_cast<float*>(p);
      for (size_t i = 0; i < n; ++i) v[i] /= static_cast<float>(by);
      return;
    }
    case flagosFloat64: {
      double* v = static_cast<double*>(p);
      for (size_t i = 0; i < n; ++i) v[i] /= by;
      return;
    }
    case flagosFloat16:
    case flagosBfloat16: {
      uint16_t* v = static_cast<uint16_t*>(p);
      const bool bf = t == flagosBfloat16;
      for (size_t i = 0; i < n; ++i)
        v[i] = bf ? f32_to_bf16(bf16_to_f32(v[i]) / static_cast<float>(by))
                  : f32_to_f16(f16_to_f32(v[i]) / static_cast<float>(by));
      return;
    }
    default: return;
  }
}

}  // namespace flagos::comm
