// copy / cast / fill cases: the bandwidth reference every memory-bound op is judged against.
#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_creation(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  auto add_copy = [&](const char* name, const Shape& s, DType dst, DType src, bool transpose) {
    Tensor x = random_tensor(s, src, d);
    if (transpose) x = x.transpose(0, 1);
    auto y = std::make_shared<Tensor>(Tensor::empty(x.shape(), dst, d));
    const double n = static_cast<double>(x.numel());
    out.push_back({name, "creation", n * (element_size(src) + element_size(dst)), 0,
                   [x, y] { ops::copy(*y, x); }, ""});
  };
  if (o.quick) {
    add_copy("copy [4096,3584] f32", {4096, 3584}, DType::f32, DType::f32, false);
    return;
  }
  add_copy("copy [16,3584] f32", {16, 3584}, DType::f32, DType::f32, false);
  add_copy("copy [4096,3584] f32", {4096, 3584}, DType::f32, DType::f32, false);
  add_copy("copy [10000000] f32", {10000000}, DType::f32, DType::f32, false);
  add_copy("copy transposed [3584,4096] f32", {3584, 4096}, DType::f32, DType::f32, true);
  if (!d.is_cpu()) add_copy("copy [16384,8192] f32", {16384, 8192}, DType::f32, DType::f32, false);  // >> L2
  add_copy("cast [4096,3584] f32->bf16", {4096, 3584}, DType::bf16, DType::f32, false);
  add_copy("cast [4096,3584] bf16->f32", {4096, 3584}, DType::f32, DType::bf16, false);
  add_copy("cast [4096,3584] f32->f16", {4096, 3584}, DType::f16, DType::f32, false);
  auto t = std::make_shared<Tensor>(Tensor::empty({4096, 3584}, DType::f32, d));
  out.push_back({"fill [4096,3584] f32", "creation", 4096.0 * 3584 * 4, 0, [t] { ops::fill(*t, 1.5); }, ""});
}

}  // namespace flagos::bench
