// Building blocks of the architectures: see layers.h.
#include "model/layers.h"

#include <algorithm>
#include <cmath>

#include "flagos/error.h"
#include "flagos/ops.h"

namespace flagos::model::layers {

// ---------------------------------------------------------------- weights

static std::string shape_text(const Tensor& t) { return detail::concat(t.shape(), " ", t.dtype()); }

Tensor linear_weight(const WeightStore& w, const std::string& name, int64_t out, int64_t in) {
  const Tensor& t = w.get(name);
  FLAGOS_CHECK(t.dim() == 2 && t.size(0) == out && t.size(1) == in, w.source, ": tensor '", name, "' is ",
               shape_text(t), ", expected [", out, ", ", in, "]");
  return t;
}

Tensor vector_param(const WeightStore& w, const std::string& name, int64_t n) {
  const Tensor& t = w.get(name);
  FLAGOS_CHECK(t.dim() == 1 && t.size(0) == n && !is_quant(t.dtype()), w.source, ": tensor '", name, "' is ",
               shape_text(t), ", expected a float vector [", n, "]");
  return t.dtype() == DType::f32 ? t.contiguous() : ops::cast(t, DType::f32);
}

Tensor embedding_table(const WeightStore& w, const ModelConfig& c) {
  return linear_weight(w, "model.embed_tokens.weight", c.vocab_size, c.hidden_size);
}

Tensor output_weight(const WeightStore& w, const ModelConfig& c, const Tensor& embed) {
  if (w.has("lm_head.weight") || !c.tie_embeddings)
    return linear_weight(w, "lm_head.weight", c.vocab_size, c.hidden_size);
  return embed;
}

Tensor stack_rows(const std::vector<Tensor>& parts, Device device) {
  if (parts.empty()) return {};
  const Tensor& f = parts.front();
  int64_t rows = 0, next = f.offset();
  bool adjacent = f.device() == device;
  for (const Tensor& t : parts) {
    if (!t.defined() || t.dim() != 2 || !t.is_contiguous() || t.dtype() != f.dtype() || t.size(1) != f.size(1) ||
        !(t.device() == f.device()))
      return {};
    adjacent = adjacent && t.storage() == f.storage() && t.offset() == next;
    next = t.offset() + static_cast<int64_t>(t.nbytes());
    rows += t.size(0);
  }
  const Shape shape{rows, f.size(1)};
  if (adjacent) return f.as_strided(shape, contiguous_strides(shape, f.dtype()), f.offset());
  Tensor r = Tensor::empty(shape, f.dtype(), device);
  int64_t r0 = 0;
  for (const Tensor& t : parts) {
    if (t.size(0) > 0) r.narrow(0, r0, t.size(0)).copy_from(t);
    r0 += t.size(0);
  }
  return r;
}

Tensor stack_rows(const std::vector<Tensor>& parts) {
  return parts.empty() ? Tensor() : stack_rows(parts, parts.front().device());
}

// Replaces the tensors `names` of `w` by row views of one stacked allocation on `device`.
static void fuse_group(WeightStore& w, const std::vector<std::string>& names, Device device) {
  std::vector<Tensor> parts;
  for (const std::string& n : names) {
    const Tensor* t = w.find(n);
    if (!t) return;
    parts.push_back(*t);
  }
  const Tensor s = stack_rows(parts, device);
  if (!s.defined()) return;
  int64_t r0 = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    w.replace(names[i], s.narrow(0, r0, parts[i].size(0)));
    r0 += parts[i].size(0);
  }
}

void fuse_projection_weights(WeightStore& w, const ModelConfig& c, bool qkv, bool gate_up, Device device) {
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = layer_prefix(i);
    if (qkv)
      fuse_group(w, {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"},
                 device);
    if (gate_up) fuse_group(w, {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, device);
  }
}

// ---------------------------------------------------------------- embedding / head

Tensor embed(const Tensor& table, const ForwardBatch& batch, DType dtype, double scale) {
  Tensor h = batch.tokens_checked ? ops::embedding_unchecked(table, batch.tokens, dtype)
                                  : ops::embedding(table, batch.tokens, dtype);
  if (scale != 1.0) ops::mul(h, scale, h);
  return h;
}

double gemma_embed_scale(const ModelConfig& c, const Tensor& table) {
  const double s = std::sqrt(static_cast<double>(c.hidden_size));
  switch (table.dtype()) {
    case DType::bf16: return bf16_to_f32(f32_to_bf16(static_cast<float>(s)));
    case DType::f16: return f16_to_f32(f32_to_f16(static_cast<float>(s)));
    default: return static_cast<float>(s);
  }
}

Tensor output_logits(const Tensor& hidden, const ForwardBatch& batch, const Tensor& norm_weight, double eps,
                     const Tensor& head, double softcap) {
  const Tensor rows = batch.logit_rows.defined() ? ops::index_select(hidden, 0, batch.logit_rows) : hidden;
  Tensor x = ops::rms_norm(rows, norm_weight, eps);
  Tensor logits = ops::linear(x, head);
  if (softcap > 0) {
    ops::div(logits, softcap, logits);
    ops::tanh(logits, logits);
    ops::mul(logits, softcap, logits);
  }
  return logits;
}

// ---------------------------------------------------------------- attention

RopeParams rope_params(const ModelConfig& c) {
  RopeParams p = c.rope;
  if (p.head_dim == 0) p.head_dim = c.head_dim;
  if (p.rotary_dim == 0) p.rotary_dim = p.head_dim;
  FLAGOS_CHECK(p.head_dim == c.head_dim && p.rotary_dim > 0 && p.rotary_dim <= p.head_dim && p.rotary_dim % 2 == 0,
               "model config: rope head_dim ", p.head_dim, " / rotary_dim ", p.rotary_dim,
               " do not fit the attention head_dim ", c.head_dim);
  return p;
}

bool layer_is_sliding(const ModelConfig& c, int64_t i) {
  return c.sliding_window > 0 && !c.layer_is_sliding.empty() && c.layer_is_sliding[static_cast<size_t>(i)];
}

bool layer_is_moe(const ModelConfig& c, int64_t i) {
  if (c.num_experts == 0) return false;
  return c.layer_is_moe.empty() || c.layer_is_moe[static_cast<size_t>(i)];
}

std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

Attention Attention::load(const WeightStore& w, const std::string& prefix, const ModelConfig& c, int64_t layer,
                          AttentionFlags flags) {
  Attention a;
  a.heads = c.num_heads;
  a.kv_heads = c.num_kv_heads;
  a.head_dim = c.head_dim;
  const int64_t H = c.hidden_size, qd = a.heads * a.head_dim, kvd = a.kv_heads * a.head_dim;
  a.q = linear_weight(w, prefix + ".q_proj.weight", qd, H);
  a.k = linear_weight(w, prefix + ".k_proj.weight", kvd, H);
  a.v = linear_weight(w, prefix + ".v_proj.weight", kvd, H);
  a.o = linear_weight(w, prefix + ".o_proj.weight", H, qd);
  if (flags.bias) {
    a.q_bias = vector_param(w, prefix + ".q_proj.bias", qd);
    a.k_bias = vector_param(w, prefix + ".k_proj.bias", kvd);
    a.v_bias = vector_param(w, prefix + ".v_proj.bias", kvd);
  }
  if (flags.fused_qkv) {
    a.qkv = stack_rows({a.q, a.k, a.v});
    if (a.qkv.defined() && flags.bias) a.qkv_bias = ops::cat({a.q_bias, a.k_bias, a.v_bias});
  }
  if (flags.qk_norm) {
    a.q_norm = vector_param(w, prefix + ".q_norm.weight", a.head_dim);
    a.k_norm = vector_param(w, prefix + ".k_norm.weight", a.head_dim);
  }
  a.norm_eps = c.rms_eps;
  a.rope = rope_params(c);
  a.params.causal = true;
  a.params.scale = c.query_pre_attn_scalar > 0 ? 1.0 / std::sqrt(c.query_pre_attn_scalar)
                                               : 1.0 / std::sqrt(static_cast<double>(a.head_dim));
  a.params.window = layer_is_sliding(c, layer) ? c.sliding_window : 0;
  a.params.softcap = c.attn_logit_softcap;
  return a;
}

Tensor Attention::forward(const Tensor& x, const ForwardBatch& batch, int64_t layer) const {
  const int64_t N = x.size(0);
  Tensor q, k, v;
  if (qkv.defined()) {
    // One projection [N, (heads + 2 kv_heads) * head_dim]; q, k, v are views of its head columns.
    const Tensor all = ops::linear(x, qkv, qkv_bias).view({N, heads + 2 * kv_heads, head_dim});
    q = all.narrow(1, 0, heads);
    k = all.narrow(1, heads, kv_heads);
    v = all.narrow(1, heads + kv_heads, kv_heads);
    // QK-norm in place when the heads of q (k) form one 2-D view, i.e. a single row; with several
    // rows the norm writes new contiguous q and k (the op would copy the strided view anyway).
    const bool views = !q_norm.defined() || N == 1;
    if (q_norm.defined()) {
      q = views ? ops::rms_norm(q, q_norm, norm_eps, q) : ops::rms_norm(q, q_norm, norm_eps);
      k = views ? ops::rms_norm(k, k_norm, norm_eps, k) : ops::rms_norm(k, k_norm, norm_eps);
    }
    if (views) {  // q and k are adjacent heads of each row: one rope over both
      const Tensor qk = all.narrow(1, 0, heads + kv_heads);
      ops::rope(qk, batch.positions, rope, qk);
    } else {
      ops::rope(q, batch.positions, rope, q);
      ops::rope(k, batch.positions, rope, k);
    }
  } else {
    q = ops::linear(x, this->q, q_bias).view({N, heads, head_dim});
    k = ops::linear(x, this->k, k_bias).view({N, kv_heads, head_dim});
    v = ops::linear(x, this->v, v_bias).view({N, kv_heads, head_dim});
    if (q_norm.defined()) {
      ops::rms_norm(q, q_norm, norm_eps, q);
      ops::rms_norm(k, k_norm, norm_eps, k);
    }
    ops::rope(q, batch.positions, rope, q);
    ops::rope(k, batch.positions, rope, k);
  }
  const PagedKv& kv = batch.kv;
  const size_t l = static_cast<size_t>(layer);
  const Tensor& kc = (*kv.k)[l];
  const Tensor& vc = (*kv.v)[l];
  ops::kv_cache_store(k, v, kc, vc, kv.slots);
  Tensor out;
  if (batch.dense_prefill) {
    // One fresh sequence: its keys are exactly this pass's k and v.
    out = Tensor::empty({N, heads, head_dim}, x.dtype(), x.device());
    ops::attention(q.transpose(0, 1).unsqueeze(0), k.transpose(0, 1).unsqueeze(0), v.transpose(0, 1).unsqueeze(0),
                   params, {}, out.transpose(0, 1).unsqueeze(0));
  } else {
    out = ops::paged_attention(q, kc, vc, kv.block_table, kv.seq_lens, kv.q_start, params);
  }
  return ops::linear(out.view({N, heads * head_dim}), o);
}

// ---------------------------------------------------------------- MLPs

Activation activation_of(const ModelConfig& c) {
  if (c.hidden_act == "silu" || c.hidden_act == "swish") return Activation::silu;
  if (c.hidden_act == "gelu_tanh" || c.hidden_act == "gelu_pytorch_tanh") return Activation::gelu_tanh;
  fail<InvalidArgument>("model config: hidden_act '", c.hidden_act, "' is not supported (silu, gelu_tanh)");
}

static Tensor gated(const Tensor& x, const Tensor& gate, const Tensor& up, const Tensor& down, Activation act,
                    const Tensor& out = {}, const Tensor& gate_up = {}) {
  // gate and up write the two halves of one [rows, 2 * inter] buffer, so the activation and the
  // product are one fused op (silu_and_mul / gelu_and_mul) instead of an activation pass and a mul;
  // with the stacked weight one linear writes both halves.
  const int64_t inter = gate.size(0);
  Tensor gu;
  if (gate_up.defined()) {
    gu = ops::linear(x, gate_up);
  } else {
    Dims shape = x.shape();
    shape[shape.size() - 1] = 2 * inter;
    gu = Tensor::empty(shape, x.dtype(), x.device());
    ops::linear(x, gate, {}, gu.narrow(-1, 0, inter));
    ops::linear(x, up, {}, gu.narrow(-1, inter, inter));
  }
  const Tensor h = act == Activation::silu ? ops::silu_and_mul(gu) : ops::gelu_and_mul(gu, /*tanh_approx=*/true);
  return ops::linear(h, down, {}, out);
}

GatedMlp GatedMlp::load(const WeightStore& w, const std::string& prefix, int64_t hidden, int64_t inter,
                        Activation act, bool fused) {
  GatedMlp m;
  m.gate = linear_weight(w, prefix + ".gate_proj.weight", inter, hidden);
  m.up = linear_weight(w, prefix + ".up_proj.weight", inter, hidden);
  m.down = linear_weight(w, prefix + ".down_proj.weight", hidden, inter);
  m.act = act;
  if (fused) m.gate_up = stack_rows({m.gate, m.up});
  return m;
}

Tensor GatedMlp::forward(const Tensor& x) const { return gated(x, gate, up, down, act, {}, gate_up); }

// Stacked experts [E, out, in] under `name` (with or without ".weight"); empty when absent.
static std::vector<Tensor> stacked_experts(const WeightStore& w, const std::string& name, int64_t E, int64_t out,
                                           int64_t in) {
  const Tensor* t = w.find(name);
  std::string n = name;
  if (!t) t = w.find(n = name + ".weight");
  if (!t) return {};
  FLAGOS_CHECK(t->dim() == 3 && t->size(0) == E && t->size(1) == out && t->size(2) == in, w.source, ": tensor '", n,
               "' is ", shape_text(*t), ", expected [", E, ", ", out, ", ", in, "]");
  std::vector<Tensor> r;
  for (int64_t e = 0; e < E; ++e) r.push_back(t->select(0, e));
  return r;
}

static std::vector<Tensor> experts(const WeightStore& w, const std::string& prefix, const char* proj, int64_t E,
                                   int64_t out, int64_t in) {
  std::vector<Tensor> r = stacked_experts(w, prefix + ".experts." + proj, E, out, in);
  if (!r.empty()) return r;
  for (int64_t e = 0; e < E; ++e)
    r.push_back(linear_weight(w, prefix + ".experts." + std::to_string(e) + "." + proj + ".weight", out, in));
  return r;
}

MoeMlp MoeMlp::load(const WeightStore& w, const std::string& prefix, const ModelConfig& c, Activation act) {
  const int64_t E = c.num_experts, H = c.hidden_size, I = c.moe_intermediate_size;
  FLAGOS_CHECK(E > 0 && c.num_experts_per_tok > 0 && c.num_experts_per_tok <= E && I > 0, "model config: MoE with ",
               E, " experts, ", c.num_experts_per_tok, " per token, moe_intermediate_size ", I, " is invalid");
  MoeMlp m;
  m.router = linear_weight(w, prefix + ".gate.weight", E, H);
  m.gate = experts(w, prefix, "gate_proj", E, I, H);
  m.up = experts(w, prefix, "up_proj", E, I, H);
  m.down = experts(w, prefix, "down_proj", E, H, I);
  m.top_k = c.num_experts_per_tok;
  m.norm_topk = c.norm_topk_prob;
  m.act = act;
  return m;
}

Tensor MoeMlp::forward(const Tensor& x) const {
  const int64_t N = x.size(0), H = x.size(1), E = router.size(0), K = top_k;
  const Device dev = x.device();
  // Routing (on the host: N x E values).
  Tensor probs = ops::linear(x, router);
  if (probs.dtype() != DType::f32) probs = ops::cast(probs, DType::f32);
  probs = ops::softmax(probs, -1);
  auto [top_w, top_e] = ops::topk(probs, K, -1);
  const std::vector<float> wv = top_w.to_vector<float>();
  const std::vector<int64_t> ev = top_e.to_vector<int64_t>();
  // Assignments grouped by expert (ascending), tokens ascending within an expert.
  std::vector<int64_t> count(static_cast<size_t>(E) + 1, 0);
  for (int64_t e : ev) ++count[static_cast<size_t>(e) + 1];
  for (int64_t e = 0; e < E; ++e) count[static_cast<size_t>(e) + 1] += count[static_cast<size_t>(e)];
  const size_t A = static_cast<size_t>(N * K);
  std::vector<int64_t> token(A);
  std::vector<float> weight(A);
  std::vector<int64_t> fill(count.begin(), count.end() - 1);
  for (int64_t t = 0; t < N; ++t) {
    float norm = 1.0f;
    if (norm_topk) {
      float s = 0;
      for (int64_t j = 0; j < K; ++j) s += wv[static_cast<size_t>(t * K + j)];
      norm = s;
    }
    for (int64_t j = 0; j < K; ++j) {
      const size_t src = static_cast<size_t>(t * K + j);
      const size_t dst = static_cast<size_t>(fill[static_cast<size_t>(ev[src])]++);
      token[dst] = t;
      weight[dst] = wv[src] / norm;
    }
  }
  const Tensor token_t = Tensor::from_vector(token, {static_cast<int64_t>(A)}, DType::i64).to(dev);
  const Tensor weight_t = Tensor::from_vector(weight, {static_cast<int64_t>(A), 1}, x.dtype()).to(dev);
  const Tensor xs = ops::index_select(x, 0, token_t);
  Tensor ys = Tensor::empty({static_cast<int64_t>(A), H}, x.dtype(), dev);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t b = count[static_cast<size_t>(e)], n = count[static_cast<size_t>(e) + 1] - b;
    if (n == 0) continue;
    const size_t ei = static_cast<size_t>(e);
    gated(xs.narrow(0, b, n), gate[ei], up[ei], down[ei], act, ys.narrow(0, b, n));
  }
  ops::mul(ys, weight_t, ys);
  return ops::index_add(ops::zeros({N, H}, x.dtype(), dev), 0, token_t, ys);
}

}  // namespace flagos::model::layers
