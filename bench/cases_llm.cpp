// LLM op cases: rope (prefill 4096 tokens and decode, Qwen2-7B heads), silu_and_mul (decode /
// prefill / intermediate 18944), attention decode (GQA 28:4 over a 4096 cache) and causal
// prefill (on accelerators also long and unmasked, bf16 and f32), paged_attention decode (B 1 / 16) and chunked prefill over a shuffled block table, topk
// over the vocabulary and the fused sampler.
#include <memory>
#include <vector>
#include <sstream>

#include "bench.h"
#include "flagos/ops.h"

namespace flagos::bench {

void cases_llm(std::vector<Case>& out, const Options& o) {
  const Device d = o.device;
  auto add_rope = [&](const Shape& s, DType t) {  // s = [T, H, D], in place (as the engine runs it)
    auto x = std::make_shared<Tensor>(random_tensor(s, t, d, -1, 1, 1));
    Tensor pos = ops::arange(0, static_cast<double>(s[0]), 1, DType::i64, d);
    RopeParams p;
    p.head_dim = s[2];
    p.theta = 1e6;
    const double n = static_cast<double>(x->numel());
    out.push_back({"rope " + shape_str(s) + " " + std::string(dtype_name(t)), "llm",
                   2.0 * n * static_cast<double>(element_size(t)), 3.0 * n,
                   [x, pos, p] { ops::rope(*x, pos, p, *x); }, "neox, in place"});
  };
  auto add_silu = [&](const Shape& s, DType t) {  // s = [rows, 2n]
    Tensor x = random_tensor(s, t, d, -3, 3, 2);
    Shape os = s;
    os[os.size() - 1] /= 2;
    auto y = std::make_shared<Tensor>(Tensor::empty(os, t, d));
    const double n = static_cast<double>(y->numel());
    out.push_back({"silu_and_mul " + shape_str(s) + " " + std::string(dtype_name(t)), "llm",
                   3.0 * n * static_cast<double>(element_size(t)), 20.0 * n,
                   [x, y] { ops::silu_and_mul(x, *y); }, ""});
  };
  auto add_attn = [&](int64_t B, int64_t Hq, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t D, bool causal, DType t) {
    Tensor q = random_tensor({B, Hq, Tq, D}, t, d, -1, 1, 3);
    Tensor k = random_tensor({B, Hkv, Tk, D}, t, d, -1, 1, 4);
    Tensor v = random_tensor({B, Hkv, Tk, D}, t, d, -1, 1, 5);
    auto y = std::make_shared<Tensor>(Tensor::empty({B, Hq, Tq, D}, t, d));
    AttentionParams p;
    p.causal = causal;
    const double es = static_cast<double>(element_size(t));
    const double bytes = es * static_cast<double>(2 * q.numel() + k.numel() + v.numel());
    // visible (query, key) pairs
    double pairs = static_cast<double>(Tq) * static_cast<double>(Tk);
    if (causal) pairs = static_cast<double>(Tq) * static_cast<double>(Tk - Tq) + static_cast<double>(Tq) * (Tq + 1) / 2.0;
    const double flops = 4.0 * static_cast<double>(B * Hq) * pairs * static_cast<double>(D);
    std::ostringstream name;
    name << "attention " << (Tq == 1 ? "decode" : "prefill") << " [B" << B << ",Hq" << Hq << ",Hkv" << Hkv << ",Tq"
         << Tq << ",Tk" << Tk << ",D" << D << "]" << (causal ? " causal " : " ") << dtype_name(t);
    out.push_back({name.str(), "llm", bytes, flops, [q, k, v, y, p] { ops::attention(q, k, v, p, {}, *y); }, ""});
  };
  // paged_attention over a paged cache with a shuffled block table: B items of nq new rows each on
  // L keys (decode: nq = 1), blocks of bs keys; the same bytes as dense attention on [B, Hkv, L, D].
  auto add_paged = [&](int64_t B, int64_t Hq, int64_t Hkv, int64_t nq, int64_t L, int64_t D, int64_t bs, DType t) {
    const int64_t nb = (L + bs - 1) / bs, NB = B * nb;
    std::vector<int32_t> perm(static_cast<size_t>(NB));
    for (int64_t i = 0; i < NB; ++i) perm[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % NB);  // scattered
    std::vector<int32_t> lens(static_cast<size_t>(B), static_cast<int32_t>(L)), starts;
    for (int64_t b = 0; b <= B; ++b) starts.push_back(static_cast<int32_t>(b * nq));
    Tensor bt = Tensor::from_vector(perm, {B, nb}, DType::i32).to(d);
    Tensor sl = Tensor::from_vector(lens, {B}, DType::i32).to(d);
    Tensor qs = Tensor::from_vector(starts, {B + 1}, DType::i32).to(d);
    Tensor q = random_tensor({B * nq, Hq, D}, t, d, -1, 1, 3);
    Tensor kc = random_tensor({NB, Hkv, bs, D}, t, d, -1, 1, 4);
    Tensor vc = random_tensor({NB, Hkv, bs, D}, t, d, -1, 1, 5);
    auto y = std::make_shared<Tensor>(Tensor::empty({B * nq, Hq, D}, t, d));
    AttentionParams p;
    p.causal = true;
    const double es = static_cast<double>(element_size(t));
    const double bytes = es * static_cast<double>(2 * q.numel() + 2 * B * Hkv * L * D);
    const double pairs = static_cast<double>(nq) * static_cast<double>(L - nq) + static_cast<double>(nq) * (nq + 1) / 2.0;
    const double flops = 4.0 * static_cast<double>(B * Hq) * pairs * static_cast<double>(D);
    std::ostringstream name;
    name << "paged_attention " << (nq == 1 ? "decode" : "prefill") << " [B" << B << ",Hq" << Hq << ",Hkv" << Hkv;
    if (nq > 1) name << ",Tq" << nq;
    name << ",Tk" << L << ",D" << D << ",bs" << bs << "] " << dtype_name(t);
    out.push_back({name.str(), "llm", bytes, flops,
                   [q, kc, vc, bt, sl, qs, y, p] { ops::paged_attention(q, kc, vc, bt, sl, qs, p, *y); },
                   "shuffled block table"});
  };
  auto add_sample = [&](int64_t B, int64_t V, bool greedy = false) {
    Tensor l = random_tensor({B, V}, DType::f32, d, -10, 10, 6);
    SamplerParams p;
    p.temperature = greedy ? 0.0f : 0.7f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.seed = 1;
    out.push_back({"sample " + shape_str({B, V}) + (greedy ? " f32 greedy" : " f32 top-k 40 top-p 0.9"), "llm",
                   4.0 * static_cast<double>(B * V), 2.0 * static_cast<double>(B * V), [l, p] { ops::sample(l, p); },
                   ""});
  };
  auto add_topk = [&](int64_t B, int64_t V, int64_t k) {
    Tensor l = random_tensor({B, V}, DType::f32, d, -10, 10, 7);
    out.push_back({"topk " + shape_str({B, V}) + " f32 k=" + std::to_string(k), "llm",
                   4.0 * static_cast<double>(B * V), static_cast<double>(B * V), [l, k] { ops::topk(l, k); }, ""});
  };
  if (o.quick) {
    add_rope({16, 28, 128}, DType::f32);
    add_silu({16, 2 * 18944}, DType::f32);
    return;
  }
  add_rope({1, 28, 128}, DType::f32);
  add_rope({4096, 28, 128}, DType::f32);
  add_rope({4096, 28, 128}, DType::bf16);
  add_silu({16, 2 * 18944}, DType::f32);
  add_silu({4096, 2 * 18944}, DType::f32);
  add_silu({4096, 2 * 18944}, DType::bf16);
  add_attn(1, 28, 4, 1, 4096, 128, true, DType::f32);
  add_attn(1, 28, 4, 1, 4096, 128, true, DType::bf16);
  add_attn(1, 28, 4, 512, 512, 128, true, DType::f32);
  if (!d.is_cpu()) {  // prefill on an accelerator: engine-sized, long, and without the causal mask
    add_attn(1, 28, 4, 512, 512, 128, true, DType::bf16);
    add_attn(1, 28, 4, 4096, 4096, 128, true, DType::bf16);
    add_attn(1, 28, 4, 4096, 4096, 128, false, DType::bf16);
    add_attn(1, 28, 4, 4096, 4096, 128, true, DType::f16);
    add_attn(1, 28, 4, 1024, 1024, 128, true, DType::bf16);
    add_attn(1, 28, 4, 512, 512, 128, false, DType::f32);
    add_attn(1, 28, 4, 4096, 4096, 128, true, DType::f32);
  }
  add_paged(1, 28, 4, 1, 4096, 128, 16, DType::bf16);
  add_paged(16, 28, 4, 1, 4096, 128, 16, DType::bf16);
  add_paged(4, 28, 4, 512, 4096, 128, 16, DType::bf16);  // chunked prefill: 512 new rows on a 3584 past
  if (!d.is_cpu()) add_paged(16, 16, 8, 1, 4096, 256, 16, DType::bf16);  // head dim 256 (Gemma 3 12B heads)
  add_sample(1, 152064);
  add_sample(16, 152064);
  add_sample(1, 152064, true);
  add_topk(16, 152064, 40);
}

}  // namespace flagos::bench
