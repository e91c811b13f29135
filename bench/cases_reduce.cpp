// Reduction and softmax cases: sum / amax / argmax on prefill hidden states and logits, softmax
// and log_softmax on vocab-sized rows (decode, batch of 64, prefill with a 32k vocab).
#include <memory>
#include <sstream>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_reduce(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  auto add_reduce = [&](const char* op, const Shape& s, DType t, const Dims& dims, const char* what,
                        std::function<Tensor(const Tensor&, const Dims&)> fn) {
    Tensor x = random_tensor(s, t, d, -1, 1, 7);
    const double n = static_cast<double>(x.numel());
    out.push_back({std::string(op) + " " + shape_str(s) + " " + std::string(dtype_name(t)) + " " + what, "reduce",
                   n * static_cast<double>(element_size(t)), n, [x, dims, fn] { (void)fn(x, dims); }, ""});
  };
  auto add_softmax = [&](const char* op, Tensor (*fn)(const Tensor&, int64_t, const Tensor&), const Shape& s,
                         DType t, double flops_per) {
    Tensor x = random_tensor(s, t, d, -8, 8, 9);
    auto y = std::make_shared<Tensor>(Tensor::empty(s, t, d));
    const double n = static_cast<double>(x.numel());
    out.push_back({std::string(op) + " " + shape_str(s) + " " + std::string(dtype_name(t)), "reduce",
                   2 * n * static_cast<double>(element_size(t)), n * flops_per,
                   [x, y, fn] { fn(x, -1, *y); }, ""});
  };
  auto sum = [](const Tensor& x, const Dims& dims) { return ops::sum(x, dims); };
  if (o.quick) {
    add_softmax("softmax", ops::softmax, {64, 152064}, DType::f32, 16);
    return;
  }
  add_reduce("sum", {4096, 3584}, DType::f32, {}, "all", sum);
  add_reduce("sum", {4096, 3584}, DType::f32, {1}, "dim1", sum);
  add_reduce("sum", {4096, 3584}, DType::f32, {0}, "dim0", sum);
  add_reduce("sum", {4096, 3584}, DType::bf16, {1}, "dim1", sum);
  add_reduce("amax", {64, 152064}, DType::f32, {1}, "dim1",
             [](const Tensor& x, const Dims& dims) { return ops::amax(x, dims); });
  add_reduce("argmax", {64, 152064}, DType::f32, {1}, "dim1",
             [](const Tensor& x, const Dims& dims) { return ops::argmax(x, dims[0]); });
  add_reduce("logsumexp", {64, 152064}, DType::f32, {1}, "dim1",
             [](const Tensor& x, const Dims& dims) { return ops::logsumexp(x, dims); });
  add_softmax("softmax", ops::softmax, {1, 152064}, DType::f32, 16);
  add_softmax("softmax", ops::softmax, {64, 152064}, DType::f32, 16);
  add_softmax("softmax", ops::softmax, {4096, 32000}, DType::f32, 16);
  add_softmax("softmax", ops::softmax, {64, 152064}, DType::bf16, 16);
  add_softmax("log_softmax", ops::log_softmax, {64, 152064}, DType::f32, 16);
}

}  // namespace flagos::bench
