// Factories of the architectures the engine implements (one file each), used by the registry.
#pragma once
#include <memory>

#include "model/causal_lm.h"

namespace flagos::model::archs {

std::unique_ptr<CausalLM> create_llama(const ModelConfig& c, const WeightStore& w, const ArchOptions& o);
std::unique_ptr<CausalLM> create_qwen2(const ModelConfig& c, const WeightStore& w, const ArchOptions& o);
std::unique_ptr<CausalLM> create_qwen3(const ModelConfig& c, const WeightStore& w, const ArchOptions& o);
std::unique_ptr<CausalLM> create_qwen3_moe(const ModelConfig& c, const WeightStore& w, const ArchOptions& o);
std::unique_ptr<CausalLM> create_gemma3(const ModelConfig& c, const WeightStore& w, const ArchOptions& o);

}  // namespace flagos::model::archs
