// GGUF block quantization: quantize (f32 -> block type) and dequantize (block type -> float).
#include "ops/op_common.h"

namespace flagos::ops {
using namespace detail;

Tensor quantize(const Tensor& x, DType qtype) {
  check_defined("quantize", x, "x");
  FLAGOS_CHECK(is_quant(qtype), "quantize: target dtype ", qtype, " is not a block-quantized type");
  FLAGOS_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f16 || x.dtype() == DType::bf16,
               "quantize: input must be f32/f16/bf16, got ", x.dtype());
  FLAGOS_CHECK(x.dim() >= 1, "quantize: input must have at least 1 dim, got a 0-d tensor");
  const int64_t bs = dtype_info(qtype).block_elems;
  FLAGOS_CHECK(x.shape().back() % bs == 0, "quantize: last dim of ", x.shape(), " must be a multiple of ", bs,
               " for ", qtype);
  const Tensor xf = to_dtype(x, DType::f32).contiguous();
  Tensor q = Tensor::empty(x.shape(), qtype, x.device());
  if (x.numel() == 0) return q;
  static const uint16_t id = op_id("quantize");
  launch(id, KernelKey{qtype, DType::f32}, x.device(), {&xf}, {&q}, nullptr);
  return q;
}

Tensor dequantize(const Tensor& q, DType dtype) {
  check_defined("dequantize", q, "q");
  FLAGOS_CHECK(is_quant(q.dtype()), "dequantize: input dtype ", q.dtype(), " is not a block-quantized type");
  FLAGOS_CHECK(dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16,
               "dequantize: output dtype must be f32/f16/bf16, got ", dtype);
  Tensor out = Tensor::empty(q.shape(), dtype, q.device());
  if (q.numel() == 0) return out;
  static const uint16_t id = op_id("dequantize");
  launch(id, KernelKey{dtype, q.dtype()}, q.device(), {&q}, {&out}, nullptr);
  return out;
}

}  // namespace flagos::ops
