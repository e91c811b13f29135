// Building blocks the architectures (src/model/archs) are made of: weight loading with shape
// checks, embedding, the attention block (q/k/v/o projections, optional biases, QK-norm, rope,
// paged KV-cache write and paged attention for the whole batch), gated MLPs, mixture-of-experts MLPs and the
// output head. All work on a batch of N rows (every item's tokens concatenated, [N, hidden]).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "flagos/model.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"
#include "model/causal_lm.h"

namespace flagos::model::layers {

// ---------------------------------------------------------------- weights
// A linear weight [out, in] (float or block-quantized); throws naming the tensor on a bad shape.
Tensor linear_weight(const WeightStore& w, const std::string& name, int64_t out, int64_t in);
// A float vector [n] (norm weights, biases), converted to f32.
Tensor vector_param(const WeightStore& w, const std::string& name, int64_t n);
// The embedding table [vocab, hidden].
Tensor embedding_table(const WeightStore& w, const ModelConfig& c);
// lm_head.weight, or the embedding table when the model ties them.
Tensor output_weight(const WeightStore& w, const ModelConfig& c, const Tensor& embed);
// The 2-D weights `parts` ([r_i, in], one dtype, contiguous) stacked by rows into one
// [sum r_i, in] tensor: a view when they already sit back to back in one storage (as
// fuse_projection_weights lays them out), else a new tensor holding copies. Undefined when they
// cannot be stacked (dtypes, inner sizes or devices differ, a part is not contiguous).
Tensor stack_rows(const std::vector<Tensor>& parts);
// The same with the stacked tensor on `device` (a view only when the parts already are there).
Tensor stack_rows(const std::vector<Tensor>& parts, Device device);
// Lays the q/k/v projections of every layer ("model.layers.<i>.self_attn.{q,k,v}_proj.weight",
// when `qkv`) and the gate/up projections of every dense MLP ("...mlp.{gate,up}_proj.weight",
// when `gate_up`) out back to back in one allocation each and replaces the store's tensors by views
// of it on `device` (parts elsewhere are copied straight into it), so an architecture loading with
// fusion on (ArchOptions) stacks them without a copy and without holding the weights twice.
// Groups whose parts differ in dtype or inner size stay as they are.
void fuse_projection_weights(WeightStore& w, const ModelConfig& c, bool qkv, bool gate_up, Device device);

// ---------------------------------------------------------------- embedding / head
// Token embeddings [N, hidden] of batch.tokens in `dtype`, multiplied by `scale` when it is not 1
// (ids read back and checked unless batch.tokens_checked).
Tensor embed(const Tensor& table, const ForwardBatch& batch, DType dtype, double scale = 1.0);
// Gemma's embedding scale: sqrt(hidden) rounded to the table's dtype, as Hugging Face multiplies
// by a tensor of that dtype.
double gemma_embed_scale(const ModelConfig& c, const Tensor& table);
// Final norm and output projection of the rows in batch.logit_rows; then, when softcap > 0,
// logits = softcap * tanh(logits / softcap).
Tensor output_logits(const Tensor& hidden, const ForwardBatch& batch, const Tensor& norm_weight, double eps,
                     const Tensor& head, double softcap);

// ---------------------------------------------------------------- attention
struct AttentionFlags {
  bool bias = false;     // q/k/v projection biases (qwen2)
  bool qk_norm = false;  // RMSNorm over head_dim on q and k before rope (qwen3, gemma3)
  bool fused_qkv = false;  // one [q | k | v] projection (ArchOptions::fused_qkv)
};

struct Attention {
  Tensor q, k, v, o;
  Tensor q_bias, k_bias, v_bias;  // undefined when absent
  // With fusion: the stacked [q | k | v] weight [(heads + 2 kv_heads) * head_dim, hidden] and its
  // bias (undefined when absent); q, k, v are then row views of it and one linear computes all three.
  Tensor qkv, qkv_bias;
  Tensor q_norm, k_norm;          // [head_dim], undefined when absent
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  double norm_eps = 1e-6;
  RopeParams rope;
  AttentionParams params;  // causal, scale, window, softcap

  // `prefix` e.g. "model.layers.3.self_attn". Rope, scale and window come from the config; the
  // arch adjusts them afterwards where it differs (gemma3 local layers).
  static Attention load(const WeightStore& w, const std::string& prefix, const ModelConfig& c, int64_t layer,
                        AttentionFlags flags);
  // x: normalized hidden [N, hidden] -> attention output after o_proj [N, hidden].
  Tensor forward(const Tensor& x, const ForwardBatch& batch, int64_t layer) const;
};

// The model's rope parameters with head_dim / rotary_dim filled in.
RopeParams rope_params(const ModelConfig& c);

// ---------------------------------------------------------------- MLPs
enum class Activation { silu, gelu_tanh };
Activation activation_of(const ModelConfig& c);  // throws for an unknown hidden_act

// down(act(gate(x)) * up(x))
struct GatedMlp {
  Tensor gate, up, down;
  Tensor gate_up;  // with fusion: the stacked [gate | up] weight [2 * inter, hidden], one linear
  Activation act = Activation::silu;
  // `prefix` e.g. "model.layers.3.mlp"; `fused`: stack gate and up (when they share dtype and layout).
  static GatedMlp load(const WeightStore& w, const std::string& prefix, int64_t hidden, int64_t inter,
                       Activation act, bool fused = false);
  Tensor forward(const Tensor& x) const;
};

// Mixture of experts: router logits -> softmax -> top-k -> (renormalize) -> each expert's gated
// MLP on the tokens routed to it, scaled by the routing weight and summed per token.
struct MoeMlp {
  Tensor router;                  // [E, hidden]
  std::vector<Tensor> gate, up;   // per expert [inter, hidden] (views into stacked [E, inter, hidden])
  std::vector<Tensor> down;       // per expert [hidden, inter]
  int64_t top_k = 0;
  bool norm_topk = true;
  Activation act = Activation::silu;

  // Experts as stacked 3-D tensors "<prefix>.experts.{gate,up,down}_proj" [E, out, in] or as
  // separate "<prefix>.experts.<e>.{gate,up,down}_proj.weight"; router "<prefix>.gate.weight".
  static MoeMlp load(const WeightStore& w, const std::string& prefix, const ModelConfig& c, Activation act);
  Tensor forward(const Tensor& x) const;
};

// ---------------------------------------------------------------- small helpers
// "model.layers.<i>."
std::string layer_prefix(int64_t i);
// Whether layer i uses sliding-window attention / an MoE MLP according to the config.
bool layer_is_sliding(const ModelConfig& c, int64_t i);
bool layer_is_moe(const ModelConfig& c, int64_t i);

}  // namespace flagos::model::layers
