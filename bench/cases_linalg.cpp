// matmul / linear / embedding cases on LLM shapes (hidden 3584, intermediate 18944), with the
// incumbent: OpenBLAS sgemm called directly.
#include <cblas.h>

#include <memory>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_linalg(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  auto add_matmul = [&](int64_t M, int64_t K, int64_t N, DType t) {
    Tensor a = random_tensor({M, K}, t, d), b = random_tensor({K, N}, t, d, -1, 1, 2);
    auto y = std::make_shared<Tensor>(Tensor::empty({M, N}, t, d));
    const double es = static_cast<double>(element_size(t));
    out.push_back({"matmul [" + std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N) + "] " +
                       std::string(dtype_name(t)),
                   "linalg", es * static_cast<double>(M * K + K * N + M * N), 2.0 * M * K * N,
                   [a, b, y] { ops::matmul(a, b, *y); }, ""});
  };
  // x f32 unless xt says otherwise ("... x bf16" in the name)
  auto add_linear = [&](int64_t M, int64_t K, int64_t N, DType wt, DType xt = DType::f32) {
    Tensor x = random_tensor({M, K}, xt, d);
    Tensor w = is_quant(wt) ? ops::quantize(random_tensor({N, K}, DType::f32, d, -1, 1, 3), wt)
                            : random_tensor({N, K}, wt, d, -1, 1, 3);
    auto y = std::make_shared<Tensor>(Tensor::empty({M, N}, xt, d));
    const double wbytes = static_cast<double>(row_bytes(wt, K)) * static_cast<double>(N);
    const double xs = static_cast<double>(element_size(xt));
    out.push_back({"linear [" + std::to_string(M) + "x" + std::to_string(K) + "]x[" + std::to_string(N) + "x" +
                       std::to_string(K) + "]^T " + std::string(dtype_name(wt)) +
                       (xt == DType::f32 ? "" : " x " + std::string(dtype_name(xt))),
                   "linalg", wbytes + xs * static_cast<double>(M * K + M * N), 2.0 * M * K * N,
                   [x, w, y] { ops::linear(x, w, {}, *y); }, ""});
  };
  if (o.quick) {
    add_matmul(256, 256, 256, DType::f32);
    add_linear(1, 3584, 4096, DType::q4_k);
    return;
  }
  add_matmul(1024, 1024, 1024, DType::f32);
  if (d.is_cpu()) {  // incumbent: OpenBLAS sgemm on the same buffers
    const int64_t n = 1024;
    Tensor a = random_tensor({n, n}, DType::f32, d), b = random_tensor({n, n}, DType::f32, d, -1, 1, 2);
    auto c = std::make_shared<Tensor>(Tensor::empty({n, n}, DType::f32, d));
    out.push_back({"openblas sgemm [1024x1024x1024] f32", "linalg", 4.0 * 3 * n * n, 2.0 * n * n * n,
                   [a, b, c] {
                     cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1024, 1024, 1024, 1.f, a.data_as<float>(),
                                 1024, b.data_as<float>(), 1024, 0.f, c->data_as<float>(), 1024);
                   },
                   "incumbent"});
  }
  add_matmul(1024, 1024, 1024, DType::bf16);
  add_matmul(4096, 128, 4096, DType::f32);  // attention-score shaped
  for (DType wt : {DType::f32, DType::bf16, DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(1, 3584, 18944, wt);
  for (DType wt : {DType::f32, DType::bf16, DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(16, 3584, 18944, wt);
  add_linear(64, 3584, 18944, DType::q4_k);
  if (!d.is_cpu()) {  // accelerator shapes: bf16 decode GEMV and prefill GEMM (Qwen2-7B MLP up)
    add_linear(1, 3584, 18944, DType::bf16, DType::bf16);
    add_linear(16, 3584, 18944, DType::bf16, DType::bf16);
    add_linear(4096, 3584, 18944, DType::bf16, DType::bf16);
    add_matmul(4096, 3584, 18944, DType::bf16);
    // quantized decode GEMV with the engine's bf16 activations
    for (DType wt : {DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(1, 3584, 18944, wt, DType::bf16);
    // and on the MLP down shape (N 3584, K 18944: fewer, longer rows)
    for (DType wt : {DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(1, 18944, 3584, wt, DType::bf16);
    // batch-16 decode with bf16 activations, on the MLP up (N 18944) and down (N 3584, K 18944) shapes
    for (DType wt : {DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(16, 3584, 18944, wt, DType::bf16);
    for (DType wt : {DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(16, 18944, 3584, wt, DType::bf16);
    // quantized skinny GEMM at 64 rows (q4_k above on every device)
    for (DType wt : {DType::q8_0, DType::q6_k}) add_linear(64, 3584, 18944, wt);
    // a few decode rows (speculative decoding, small batches): where the tensor-core kernel starts to win
    for (int64_t M : {2, 4})
      for (DType wt : {DType::q8_0, DType::q4_k, DType::q6_k}) add_linear(M, 3584, 18944, wt);
  }
  {
    const int64_t V = 152064, D = 3584;
    Tensor table = random_tensor({V, D}, DType::bf16, d);
    std::vector<int64_t> idv(64);
    for (size_t i = 0; i < idv.size(); ++i) idv[i] = static_cast<int64_t>((i * 2654435761u) % V);
    Tensor ids = Tensor::from_vector(idv, {64}, DType::i64).to(d);
    out.push_back({"embedding [152064x3584] bf16 ids[64]", "linalg", 64.0 * D * (2 + 2), 0,
                   [table, ids] { ops::embedding(table, ids); }, ""});
  }
}

}  // namespace flagos::bench
