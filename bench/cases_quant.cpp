// quantize / dequantize on a [4096, 3584] weight (bytes: f32 side + block side), and linear with
// block-quantized weights by activation row count (decode M = 1, batched decode / prefill
// chunks M = 4..64) on Gemma-3-270M-sized projections [640 x 2048] and [2048 x 640].
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
  if (o.quick) return;
  // "qlinear M [N x K] type": y[M, N] = x[M, K] @ w[N, K]^T, time per call (divide by M for per row)
  for (DType t : {DType::q5_0, DType::q4_k, DType::q6_k, DType::q8_0})
    for (const auto& [N, K] : {std::pair<int64_t, int64_t>{640, 2048}, {2048, 640}}) {
      if (K % 256 != 0 && (t == DType::q4_k || t == DType::q6_k)) continue;  // k-quants need K % 256 == 0
      Tensor w = ops::quantize(random_tensor({N, K}, DType::f32, d, -1, 1, 3), t);
      const double wb = static_cast<double>(w.nbytes());
      for (int64_t M : {1, 4, 16, 64}) {
        Tensor xa = random_tensor({M, K}, DType::f32, d);
        auto y = std::make_shared<Tensor>(Tensor::empty({M, N}, DType::f32, d));
        out.push_back({"qlinear M=" + std::to_string(M) + " [" + std::to_string(N) + "x" + std::to_string(K) + "] " +
                           std::string(dtype_name(t)),
                       "quant", wb + 4.0 * static_cast<double>(M * (K + N)), 2.0 * static_cast<double>(M * K * N),
                       [xa, w, y] { ops::linear(xa, w, {}, *y); }, ""});
      }
    }
}

}  // namespace flagos::bench
