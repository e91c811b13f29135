// Internal interface between the model-file loaders (GGUF, Hugging Face directory) and the
// shared steps of load_model: config validation and turning source tensors into final weights.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "flagos/model.h"
#include "flagos/tokenizer.h"
#include "model/gguf.h"

namespace flagos::model::loaders {

// A weight as found in the file, before dtype conversion / quantization / device copy.
struct SourceWeight {
  std::string name;    // HF name
  Tensor tensor;       // view into the file (or an owned tensor)
  bool add_one = false;  // Gemma HF RMSNorm weight: store 1 + w
  std::vector<Tensor> expert_parts;  // non-empty: stack these [out, in] tensors into [E, out, in]
};

// Converts, quantizes and places the weights as `opts` asks (see LoadOptions in model.h).
// `default_dtype`: the float dtype used when opts.dtype is unset (nullopt = keep each tensor's own).
void finish_weights(std::vector<SourceWeight>& src, const LoadOptions& opts, std::optional<DType> default_dtype,
                    WeightStore& out);

// Checks ranges and consistency of a config read from `path`; throws InvalidArgument naming it.
void validate_config(const ModelConfig& c, const std::string& path);

// GGUF (gguf_model.cpp).
ModelConfig config_from_gguf(const gguf::File& f);
std::shared_ptr<TokenizerSource> tokenizer_from_gguf(const gguf::File& f);
// llama.cpp tensor name -> HF name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight").
// Names with no mapping are returned unchanged.
std::string hf_name_from_gguf(const std::string& gguf_name, const std::string& arch);
LoadedModel load_gguf(const std::string& path, const LoadOptions& opts);
LoadedModel load_gguf(const gguf::File& f, const LoadOptions& opts);  // from parsed bytes (fuzzing)

// Hugging Face directory (hf_model.cpp). `config_path` names config.json in errors.
ModelConfig config_from_hf_json(const std::string& json_text, const std::string& config_path);
LoadedModel load_hf_dir(const std::string& dir, const LoadOptions& opts);

}  // namespace flagos::model::loaders
