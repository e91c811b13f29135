// Every op of the library, declared once. Backends register kernels against these names;
// `flagos ops --coverage` lists them all, with or without kernels.
#include "flagos/kernel.h"
#include "flagos/ops.h"

namespace flagos::detail {

void declare_all_ops(KernelRegistry& reg) {
  auto decl = [&](std::string_view cat, std::initializer_list<std::string_view> names) {
    for (auto n : names) reg.declare_op(n, cat);
  };
  // copy is keyed (dst dtype, src dtype): it also implements cast and contiguous.
  decl("creation", {"fill", "arange", "linspace", "eye", "copy"});
#define FLAGOS_NAME(n) #n,
  decl("unary", {FLAGOS_UNARY_OPS(FLAGOS_NAME) "softplus"});
  decl("binary", {FLAGOS_BINARY_OPS(FLAGOS_NAME) "where", "clamp", "lerp"});
#undef FLAGOS_NAME
  decl("reduce", {"sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std", "norm", "any",
                  "all", "cumsum", "cumprod", "softmax", "log_softmax", "logsumexp"});
  decl("norm", {"rms_norm", "layer_norm", "group_norm", "add_rms_norm"});
  decl("linalg", {"matmul", "linear", "embedding"});
  decl("quant", {"quantize", "dequantize"});
  decl("llm", {"rope", "silu_and_mul", "gelu_and_mul", "attention", "paged_attention", "kv_cache_store", "topk", "sort",
               "multinomial", "sample"});
  decl("index", {"gather", "scatter", "index_select", "index_add", "cat", "repeat", "pad", "tril", "triu", "one_hot"});
}

}  // namespace flagos::detail

namespace flagos::ops {
// Ops built from others, with no kernel of their own (listed by `flagos ops --coverage`).
const std::vector<std::pair<const char*, const char*>>& composite_ops() {
  static const std::vector<std::pair<const char*, const char*>> v = {
      {"zeros", "fill"},       {"ones", "fill"},   {"full", "fill"},   {"scalar", "fill"},
      {"cast", "copy"},        {"contiguous", "copy"}, {"split", "views"}, {"stack", "cat"},
      {"argsort", "sort"},
  };
  return v;
}
}  // namespace flagos::ops
