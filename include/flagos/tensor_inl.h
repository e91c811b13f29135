#pragma once
#include <vector>

namespace flagos {

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& v, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  FLAGOS_CHECK(static_cast<int64_t>(v.size()) == t.numel(), "from_vector: ", v.size(), " values for shape ", shape);
  FLAGOS_CHECK(!is_quant(dtype), "from_vector: quantized dtype ", dtype, " needs quantize()");
  const size_t es = element_size(dtype);
  char* p = static_cast<char*>(t.data());
  for (size_t i = 0; i < v.size(); ++i) store_from_double(p + i * es, dtype, static_cast<double>(v[i]));
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor h = to(Device::cpu()).contiguous();
  FLAGOS_CHECK(!is_quant(dtype_), "to_vector: quantized dtype ", dtype_, " needs dequantize()");
  std::vector<T> out(static_cast<size_t>(numel_));
  const size_t es = element_size(dtype_);
  const char* p = static_cast<const char*>(h.data());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(load_as_double(p + i * es, dtype_));
  return out;
}

}  // namespace flagos
