// Elementwise cases: add / mul / exp / gelu_tanh on decode, prefill and generic large shapes,
// broadcast add, and the host overhead of a tiny add into a preallocated output.
#include <memory>
#include <sstream>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_elementwise(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  auto add_binary = [&](const char* op, Tensor (*fn)(const Tensor&, const Tensor&, const Tensor&),
                        const Shape& sa, const Shape& sb, DType t, const char* suffix = "") {
    Tensor a = random_tensor(sa, t, d, -1, 1, 1);
    Tensor b = random_tensor(sb, t, d, -1, 1, 2);
    auto y = std::make_shared<Tensor>(Tensor::empty(sa, t, d));
    const double n = static_cast<double>(a.numel());
    const double bytes = static_cast<double>(element_size(t)) * (2.0 * n + static_cast<double>(b.numel()));
    std::string name = std::string(op) + " " + shape_str(sa);
    if (!(sa == sb)) name += "+" + shape_str(sb);
    name += " " + std::string(dtype_name(t)) + suffix;
    out.push_back({name, "elementwise", bytes, n, [a, b, y, fn] { fn(a, b, *y); }, ""});
  };
  auto add_unary = [&](const char* op, Tensor (*fn)(const Tensor&, const Tensor&), const Shape& s, DType t,
                       double flops_per) {
    Tensor x = random_tensor(s, t, d, -3, 3, 3);
    auto y = std::make_shared<Tensor>(Tensor::empty(s, t, d));
    const double n = static_cast<double>(x.numel());
    out.push_back({std::string(op) + " " + shape_str(s) + " " + std::string(dtype_name(t)), "elementwise",
                   2.0 * n * static_cast<double>(element_size(t)), flops_per * n, [x, y, fn] { fn(x, *y); }, ""});
  };
  if (o.quick) {
    add_binary("add", ops::add, {16}, {16}, DType::f32, " (out preallocated)");
    add_binary("add", ops::add, {4096, 3584}, {4096, 3584}, DType::f32);
    return;
  }
  add_binary("add", ops::add, {16}, {16}, DType::f32, " (out preallocated)");
  for (const Shape& s : {Shape{16, 3584}, Shape{4096, 3584}, Shape{10000000}}) {
    add_binary("add", ops::add, s, s, DType::f32);
    add_binary("mul", ops::mul, s, s, DType::f32);
    add_unary("exp", ops::exp, s, DType::f32, 20);
    add_unary("gelu_tanh", ops::gelu_tanh, s, DType::f32, 30);
  }
  add_binary("add", ops::add, {4096, 3584}, {3584}, DType::f32);
  add_binary("add", ops::add, {4096, 3584}, {4096, 3584}, DType::bf16);
  add_unary("gelu", ops::gelu, {4096, 3584}, DType::f32, 40);
  add_unary("silu", ops::silu, {4096, 18944}, DType::bf16, 20);
}

}  // namespace flagos::bench
