// Qwen3 (dense): the pre-norm decoder with RMSNorm over head_dim on q and k (QK-norm).
#include "flagos/error.h"
#include "model/archs/archs.h"
#include "model/archs/prenorm_decoder.h"

namespace flagos::model::archs {

std::unique_ptr<CausalLM> create_qwen3(const ModelConfig& c, const WeightStore& w, const ArchOptions& o) {
  FLAGOS_CHECK(c.num_experts == 0, "qwen3: mixture-of-experts configs are arch qwen3_moe (", c.num_experts,
               " experts)");
  return std::make_unique<PreNormDecoder>(c, w, o, layers::AttentionFlags{.bias = c.attention_bias, .qk_norm = true});
}

}  // namespace flagos::model::archs
