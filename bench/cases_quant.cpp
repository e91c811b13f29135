// quantize / dequantize on a [4096, 3584] weight (bytes: f32 side + block side).
#include <memory>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_quant(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  const Shape s = o.quick ? Shape{256, 3584} : Shape{4096, 3584};
  const std::string sh = o.quick ? "[256,3584]" : "[4096,3584]";
  const double n = static_cast<double>(s.numel());
  Tensor x = random_tensor(s, DType::f32, d);
  const DType types[] = {DType::q8_0, DType::q4_0, DType::q4_k, DType::q5_k, DType::q6_k};
  for (DType t : types) {
    if (o.quick && t != DType::q4_k) continue;
    Tensor q = ops::quantize(x, t);
    const double qb = static_cast<double>(q.nbytes());
    out.push_back({"dequantize " + sh + " " + std::string(dtype_name(t)) + "->f32", "quant", qb + 4 * n, 0,
                   [q] { ops::dequantize(q, DType::f32); }, ""});
    if (!o.quick)
      out.push_back({"quantize " + sh + " f32->" + std::string(dtype_name(t)), "quant", qb + 4 * n, 0,
                     [x, t] { ops::quantize(x, t); }, ""});
  }
}

}  // namespace flagos::bench
