// Qwen2 / Qwen2.5: the pre-norm decoder with biases on the q/k/v projections.
#include "flagos/error.h"
#include "model/archs/archs.h"
#include "model/archs/prenorm_decoder.h"

namespace flagos::model::archs {

std::unique_ptr<CausalLM> create_qwen2(const ModelConfig& c, const WeightStore& w, const ArchOptions& o) {
  FLAGOS_CHECK(c.num_experts == 0, "qwen2: mixture-of-experts configs are not supported (", c.num_experts,
               " experts)");
  return std::make_unique<PreNormDecoder>(c, w, o, layers::AttentionFlags{.bias = true, .qk_norm = false});
}

}  // namespace flagos::model::archs
