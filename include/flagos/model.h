// Model files and configuration: one description of a decoder-only LLM, whatever file it came
// from (a GGUF file or a Hugging Face directory with safetensors), plus its weights by name.
//
// Weight names are the Hugging Face names (e.g. "model.layers.3.self_attn.q_proj.weight");
// the GGUF loader maps llama.cpp names onto them. Loaders normalize conventions so the
// architectures see one form:
//   - Gemma RMSNorm multiplies by (1 + w): HF weights get +1 added at load; GGUF ones already have it.
//   - llama.cpp's converter permutes Llama q/k rows for interleaved rope: GGUF Llama models use
//     RopeLayout::gptj, HF ones RopeLayout::neox (ModelConfig::rope.layout says which).
//   - Tensor shapes are row-major as in PyTorch: a linear weight is [out_features, in_features]
//     (GGUF stores ne[] innermost-first; the loader reverses it).
//   - MoE experts are stacked: "model.layers.N.mlp.experts.gate_proj" / ".up_proj" [E, moe_inter, hidden]
//     and ".down_proj" [E, hidden, moe_inter] (no ".weight" suffix). The HF loader stacks the
//     per-expert "model.layers.N.mlp.experts.E.gate_proj.weight"; GGUF ffn_*_exps already are.
//     The router is "model.layers.N.mlp.gate.weight" [E, hidden].
//   - Gemma 3 sliding-window layers use rope base rope_local_theta and no rope scaling; global
//     layers use `rope` (theta and scaling).
//   - Tensors llama.cpp names that have no HF counterpart keep their GGUF name.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flagos/device.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::model {

struct ModelConfig {
  std::string arch;  // "llama", "qwen2", "qwen3", "qwen3_moe", "gemma3"
  std::string name;  // general.name / the directory name
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_heads unless the config says otherwise
  int64_t max_position = 0;  // context length the model was trained for
  double rms_eps = 1e-6;
  RopeParams rope;                // theta, scaling (llama3 / linear / yarn), layout
  double rope_local_theta = 0.0;  // gemma3: rope base of the sliding-window layers (0 = same as rope.theta)
  bool tie_embeddings = false;    // lm_head shares model.embed_tokens.weight
  bool attention_bias = false;    // qwen2: q/k/v projections have biases
  bool qk_norm = false;           // qwen3, gemma3: RMSNorm over head_dim on q and k
  // Mixture of experts (qwen3_moe).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = true;
  std::vector<bool> layer_is_moe;  // empty = every layer dense (or every layer MoE when num_experts > 0)
  // Sliding-window attention (gemma3; qwen2 when use_sliding_window).
  int64_t sliding_window = 0;
  std::vector<bool> layer_is_sliding;  // per layer; empty = none
  // Gemma specifics.
  double query_pre_attn_scalar = 0.0;  // attention scale = query_pre_attn_scalar^-0.5 when > 0
  double attn_logit_softcap = 0.0;
  double final_logit_softcap = 0.0;
  bool embed_scale_sqrt_hidden = false;  // gemma: embeddings multiplied by sqrt(hidden_size)
  std::string hidden_act = "silu";       // "silu" or "gelu_tanh" (gated MLP)
  // Special tokens (from config / generation_config / GGUF tokenizer metadata).
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  DType weight_dtype = DType::f32;  // dominant dtype of the loaded weights (for display)
};

// Weights by (HF) name. Tensors may be views into a memory-mapped file (kept alive by the store).
class WeightStore {
 public:
  void add(const std::string& name, Tensor t);
  // Replaces an existing tensor by one of the same shape and dtype (e.g. a view of a larger
  // allocation); throws naming the tensor otherwise.
  void replace(const std::string& name, Tensor t);
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws InvalidArgument naming the tensor, the model file and (if close) similar names.
  const Tensor& get(const std::string& name) const;
  const Tensor* find(const std::string& name) const;  // nullptr if absent
  std::vector<std::string> names() const;
  size_t size() const { return tensors_.size(); }
  int64_t total_bytes() const;
  int64_t total_params() const;
  std::string source;  // file or directory the weights came from (for error messages)

 private:
  std::map<std::string, Tensor> tensors_;
};

struct LoadOptions {
  Device device = Device::cpu();
  // HF directories: dtype the float weights are converted to (f32, bf16, f16); unset = f32.
  // GGUF: plain float weights are converted to it (unset = kept as stored, as views of the file);
  // block-quantized ones always stay as they are. Gemma HF norm weights get +1 in f32 first.
  std::optional<DType> dtype;
  // On-load quantization (e.g. q8_0) of float linear weights (*_proj.weight, lm_head.weight,
  // stacked experts) whose inner dim is a multiple of the block size; embeddings, norms and the
  // MoE router stay float.
  std::optional<DType> quant;
  // Called while loading with (bytes done, bytes total); used for a progress bar.
  std::function<void(int64_t, int64_t)> progress;
};

struct TokenizerSource;  // tokenizer.h

// A model opened from disk: configuration, weights, and what the tokenizer and chat need.
struct LoadedModel {
  ModelConfig config;
  WeightStore weights;
  std::shared_ptr<const TokenizerSource> tokenizer;
  std::string chat_template;  // Jinja text from tokenizer_config.json / tokenizer.chat_template
  std::string path;
  std::string format;  // "gguf" or "safetensors"
};

// `path`: a .gguf file or a Hugging Face model directory. Validates everything before use and
// throws InvalidArgument naming the file and field on malformed input.
LoadedModel load_model(const std::string& path, const LoadOptions& opts = {});

// A model with random weights built from a Hugging Face config.json alone (no tokenizer), created
// directly on `device`: for benchmarks of large shapes without the weights file.
struct RandomModelOptions {
  Device device = Device::cpu();
  DType dtype = DType::bf16;   // matrices; norm weights and biases are f32
  std::optional<DType> quant;  // quantize 2-D linear weights (not embeddings) to this block type
  uint64_t seed = 1;
  std::function<void(int64_t, int64_t)> progress;  // (elements done, total)
};
LoadedModel random_model(const std::string& config_json_path, const RandomModelOptions& opts = {});

// The architectures the engine implements ("llama", "qwen2", "qwen3", "qwen3_moe", "gemma3").
const std::vector<std::string>& supported_architectures();

// The weights an architecture needs with `config`: HF name, shape, and whether it must be present
// (optional ones, like o_proj.bias, are checked only when present).
struct ExpectedWeight {
  std::string name;
  Shape shape;
  bool required = true;
};
std::vector<ExpectedWeight> expected_weights(const ModelConfig& config);
// Throws InvalidArgument naming weights.source and the missing or mis-shaped tensors. load_model
// calls it; extra tensors are allowed.
void validate_weights(const ModelConfig& config, const WeightStore& weights);

}  // namespace flagos::model
