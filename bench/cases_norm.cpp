// Norm cases on Qwen2-7B-like hidden size 3584: rms_norm for decode (1, 16 tokens) and prefill
// (4096), add_rms_norm (residual update fused), layer_norm, and bf16 variants.
#include <memory>
#include <sstream>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_norm(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  const int64_t h = 3584;
  auto name = [](const char* op, int64_t rows, int64_t hh, DType t) {
    std::ostringstream os;
    os << op << " [" << rows << "," << hh << "] " << dtype_name(t);
    return os.str();
  };
  auto add_rms = [&](int64_t rows, DType t) {
    Tensor x = random_tensor({rows, h}, t, d, -1, 1, 3);
    Tensor w = random_tensor({h}, t, d, 0.5, 1.5, 4);
    auto y = std::make_shared<Tensor>(Tensor::empty({rows, h}, t, d));
    const double n = static_cast<double>(x.numel());
    out.push_back({name("rms_norm", rows, h, t), "norm", 2 * n * static_cast<double>(element_size(t)), 4 * n,
                   [x, w, y] { ops::rms_norm(x, w, 1e-6, *y); }, ""});
  };
  auto add_add_rms = [&](int64_t rows, DType t) {
    Tensor x = random_tensor({rows, h}, t, d, -1, 1, 3);
    auto r = std::make_shared<Tensor>(random_tensor({rows, h}, t, d, -1, 1, 5));
    Tensor w = random_tensor({h}, t, d, 0.5, 1.5, 4);
    auto y = std::make_shared<Tensor>(Tensor::empty({rows, h}, t, d));
    const double n = static_cast<double>(x.numel());
    // reads x and residual, writes residual and out
    out.push_back({name("add_rms_norm", rows, h, t), "norm", 4 * n * static_cast<double>(element_size(t)), 5 * n,
                   [x, r, w, y] { ops::add_rms_norm(x, *r, w, 1e-6, *y); }, ""});
  };
  auto add_ln = [&](int64_t rows, DType t) {
    Tensor x = random_tensor({rows, h}, t, d, -1, 1, 3);
    Tensor w = random_tensor({h}, t, d, 0.5, 1.5, 4);
    Tensor b = random_tensor({h}, t, d, -0.5, 0.5, 6);
    auto y = std::make_shared<Tensor>(Tensor::empty({rows, h}, t, d));
    const double n = static_cast<double>(x.numel());
    out.push_back({name("layer_norm", rows, h, t), "norm", 2 * n * static_cast<double>(element_size(t)), 7 * n,
                   [x, w, b, y] { ops::layer_norm(x, w, b, 1e-5, *y); }, ""});
  };
  if (o.quick) {
    add_rms(4096, DType::f32);
    return;
  }
  add_rms(1, DType::f32);
  add_rms(16, DType::f32);
  add_rms(4096, DType::f32);
  add_rms(4096, DType::bf16);
  add_rms(1, DType::bf16);
  add_rms(16, DType::bf16);
  add_rms(4096, DType::f16);
  add_add_rms(4096, DType::f32);
  add_add_rms(4096, DType::bf16);
  add_add_rms(16, DType::bf16);
  add_add_rms(4096, DType::f16);
  add_ln(4096, DType::f32);
  add_ln(4096, DType::bf16);
}

}  // namespace flagos::bench
