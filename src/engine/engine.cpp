// The engine: sequences with their blocks of the paged KV cache, the batched forward step (one
// packed upload of the batch's ids, positions and cache metadata; decode steps replayed from a
// graph per batch-size bucket where the device supports it), and generation (prompt prefill in
// chunks, decode of all active sequences in one forward pass per step, batched sampling with one
// device->host copy per step, stop tokens and stop strings on the streamed text). See engine.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>

#include "engine/kv_cache.h"
#include "flagos/engine.h"
#include "flagos/error.h"
#include "flagos/graph.h"
#include "flagos/ops.h"
#include "model/causal_lm.h"
#include "model/layers.h"

namespace flagos::engine {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Sequence {
  explicit Sequence(KvPool& pool) : kv(pool) {}
  SequenceKv kv;
  std::vector<int32_t> tokens;  // the tokens held in kv
};

bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Same ranges ops::sample accepts; checked before any work so a bad request fails early.
void check_sampling(const SamplerParams& p) {
  FLAGOS_CHECK(std::isfinite(p.temperature) && p.temperature >= 0, "generate: temperature must be >= 0, got ",
               p.temperature);
  FLAGOS_CHECK(p.top_k >= 0, "generate: top_k must be >= 0, got ", p.top_k);
  FLAGOS_CHECK(p.top_p > 0 && p.top_p <= 1, "generate: top_p must be in (0, 1], got ", p.top_p);
  FLAGOS_CHECK(p.min_p >= 0 && p.min_p <= 1, "generate: min_p must be in [0, 1], got ", p.min_p);
  FLAGOS_CHECK(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0,
               "generate: repetition_penalty must be > 0, got ", p.repetition_penalty);
  FLAGOS_CHECK(std::isfinite(p.frequency_penalty) && std::isfinite(p.presence_penalty),
               "generate: frequency/presence penalties must be finite, got ", p.frequency_penalty, ", ",
               p.presence_penalty);
}

bool uses_history(const SamplerParams& p) {
  return p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
}

// Rows that ops::sample can draw in one call: greedy rows with the same parameters (seed and
// draw counter do not matter without a draw). A drawing row uses its own (seed, offset).
bool same_greedy(const SamplerParams& a, const SamplerParams& b) {
  return a.temperature == 0 && b.temperature == 0 && a.top_k == b.top_k && a.top_p == b.top_p &&
         a.min_p == b.min_p && a.repetition_penalty == b.repetition_penalty &&
         a.frequency_penalty == b.frequency_penalty && a.presence_penalty == b.presence_penalty;
}

// An on-by-default switch: "0", "off" or "false" turn it off.
bool enabled_by_env(const char* name) {
  const char* e = std::getenv(name);
  return !(e && (std::strcmp(e, "0") == 0 || std::strcmp(e, "off") == 0 || std::strcmp(e, "false") == 0));
}

bool graphs_enabled_by_env() { return enabled_by_env("FLAGOS_CUDA_GRAPHS"); }

int64_t next_pow2(int64_t x) {
  int64_t p = 1;
  while (p < x) p *= 2;
  return p;
}

// The batch's i32 metadata packed for one upload: tokens, positions, slots [rows]; seq_lens [items];
// q_start [items + 1]; block_table [items, max_blocks].
struct Packed {
  int64_t rows = 0, items = 0, max_blocks = 0;
  std::vector<int32_t> v;
  int64_t size() const { return 3 * rows + 2 * items + 1 + items * max_blocks; }
};

model::ForwardBatch batch_views(const Tensor& meta, const Packed& p) {
  model::ForwardBatch b;
  const int64_t R = p.rows, B = p.items;
  b.tokens = meta.narrow(0, 0, R);
  b.positions = meta.narrow(0, R, R);
  b.kv.slots = meta.narrow(0, 2 * R, R);
  b.kv.seq_lens = meta.narrow(0, 3 * R, B);
  b.kv.q_start = meta.narrow(0, 3 * R + B, B + 1);
  b.kv.block_table = meta.narrow(0, 3 * R + 2 * B + 1, B * p.max_blocks).view({B, p.max_blocks});
  b.tokens_checked = true;
  return b;
}

// Length of the longest suffix of `text` that is a proper prefix of one of the stop strings.
size_t stop_prefix_suffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const std::string& s : stops)
    for (size_t k = std::min(s.size() - 1, text.size()); k > best; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        best = k;
        break;
      }
  return best;
}

}  // namespace

std::string_view to_string(FinishReason r) {
  switch (r) {
    case FinishReason::length: return "length";
    case FinishReason::stop_token: return "stop_token";
    case FinishReason::stop_string: return "stop_string";
    case FinishReason::cancelled: return "cancelled";
  }
  return "?";
}

double GenerationResult::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
}

double GenerationResult::decode_tokens_per_second() const {
  return decode_seconds > 0 && generated_tokens > 1 ? static_cast<double>(generated_tokens - 1) / decode_seconds : 0.0;
}

struct Engine::Impl {
  model::LoadedModel model;
  EngineOptions opts;
  int64_t max_context = 0;
  std::unique_ptr<model::CausalLM> lm;
  std::optional<model::Tokenizer> tokenizer;
  mutable std::optional<ChatTemplate> chat;
  std::unique_ptr<KvPool> pool;  // outlives the sequences and graphs that use it
  std::unordered_map<SeqId, std::unique_ptr<Sequence>> seqs;
  SeqId next_id = 1;

  // Decode graphs, keyed by (batch bucket, block-table width): static metadata buffer on the
  // device, the graph, its logits. The first step of a key runs eagerly through the static
  // buffer (warming up kernels and libraries), the second captures, later steps replay.
  struct DecodeGraph {
    Tensor meta;
    Graph graph;
    Tensor logits;
  };
  bool graphs = false;
  std::map<std::pair<int64_t, int64_t>, DecodeGraph> decode_graphs;
  uint64_t graphs_generation = 0;  // the pool generation the graphs were captured against
  int64_t graphs_captured = 0, graph_replays = 0;

  // One generation request in flight.
  struct Run {
    size_t index = 0;
    SeqId seq = -1;
    bool owns_seq = false;
    const GenerationParams* params = nullptr;
    GenerationResult result;
    std::optional<model::Tokenizer::Stream> stream;
    std::string held;              // text not emitted yet: it may begin a stop string
    std::vector<int32_t> history;  // prompt + generated (penalties)
    int32_t next = -1;             // sampled, not yet fed to the model
    bool done = false;
    Clock::time_point start, first;
  };

  Sequence& get(SeqId id) const {
    auto it = seqs.find(id);
    FLAGOS_CHECK(it != seqs.end(), "engine: unknown sequence id ", id);
    return *it->second;
  }

  SeqId create() {
    const SeqId id = next_id++;
    seqs.emplace(id, std::make_unique<Sequence>(*pool));
    return id;
  }

  Tensor forward(const std::vector<StepItem>& items);
  void pack(const std::vector<Sequence*>& ss, const std::vector<StepItem>& items, Packed& p) const;
  Tensor forward_graph(const std::vector<Sequence*>& ss, const std::vector<StepItem>& items);
  std::vector<int32_t> sample(const std::vector<Run*>& rs, const Tensor& logits);
  void check_request(const std::vector<int32_t>& prompt, const GenerationParams& p, size_t index) const;
  void start(Run& r, const std::vector<int32_t>& prompt, const BatchTokenCallback& cb);
  void decode_step(std::vector<Run*>& active, const BatchTokenCallback& cb);
  void on_token(Run& r, int32_t token, const BatchTokenCallback& cb);
  bool is_stop_token(const Run& r, int32_t t) const;
  std::vector<GenerationResult> run(std::vector<Run>& runs, const std::vector<const std::vector<int32_t>*>& prompts,
                                    const BatchTokenCallback& cb);
};

Tensor Engine::Impl::forward(const std::vector<StepItem>& items) {
  FLAGOS_CHECK(!items.empty(), "engine forward: no items");
  const int64_t vocab = model.config.vocab_size;
  std::vector<Sequence*> ss;
  ss.reserve(items.size());
  int64_t total = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const StepItem& it = items[i];
    auto found = seqs.find(it.seq);
    FLAGOS_CHECK(found != seqs.end(), "engine forward: item ", i, " names unknown sequence id ", it.seq);
    Sequence* s = found->second.get();
    FLAGOS_CHECK(std::find(ss.begin(), ss.end(), s) == ss.end(), "engine forward: sequence ", it.seq,
                 " appears more than once (item ", i, ")");
    ss.push_back(s);
    const int64_t n = static_cast<int64_t>(it.tokens.size()), past = s->kv.length();
    FLAGOS_CHECK(n > 0, "engine forward: item ", i, " (sequence ", it.seq, ") has no tokens");
    FLAGOS_CHECK(past + n <= max_context, "engine forward: item ", i, " (sequence ", it.seq, ") holds ", past,
                 " tokens; ", n, " more exceed the context limit of ", max_context);
    for (size_t j = 0; j < it.tokens.size(); ++j)
      FLAGOS_CHECK(it.tokens[j] >= 0 && it.tokens[j] < vocab, "engine forward: item ", i, " token ", j, " is id ",
                   it.tokens[j], ", outside the vocabulary of ", vocab);
    total += n;
  }
  // Blocks for the new tokens (the pools may grow: captured graphs are then stale).
  bool decode = true;
  for (size_t i = 0; i < items.size(); ++i) {
    ss[i]->kv.reserve(static_cast<int64_t>(items[i].tokens.size()));
    decode = decode && items[i].tokens.size() == 1;
  }
  Tensor logits;
  if (graphs && decode && static_cast<int64_t>(items.size()) <= next_pow2(opts.max_batch)) {
    logits = forward_graph(ss, items);
  } else {
    Packed p;
    p.rows = total;
    p.items = static_cast<int64_t>(items.size());
    for (const Sequence* s : ss)
      p.max_blocks = std::max(p.max_blocks, static_cast<int64_t>(s->kv.blocks().size()));
    pack(ss, items, p);
    const Device dev = opts.device;
    const Tensor meta = Tensor::from_vector(p.v, {p.size()}, DType::i32).to(dev);  // the one upload
    model::ForwardBatch b = batch_views(meta, p);
    b.kv.k = &pool->k();
    b.kv.v = &pool->v();
    std::vector<int64_t> rows;
    for (size_t i = 0; i < items.size(); ++i) {
      const int64_t row = b.items.empty() ? 0 : b.items.back().row + b.items.back().count;
      const int64_t n = static_cast<int64_t>(items[i].tokens.size());
      b.items.push_back({row, n, ss[i]->kv.length()});
      if (items[i].all_logits)
        for (int64_t r = row; r < row + n; ++r) rows.push_back(r);
      else
        rows.push_back(row + n - 1);
    }
    b.dense_prefill = items.size() == 1 && ss[0]->kv.length() == 0;
    if (static_cast<int64_t>(rows.size()) != total)
      b.logit_rows = Tensor::from_vector(rows, {static_cast<int64_t>(rows.size())}, DType::i64).to(dev);
    logits = lm->forward(b);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    ss[i]->kv.commit(static_cast<int64_t>(items[i].tokens.size()));
    ss[i]->tokens.insert(ss[i]->tokens.end(), items[i].tokens.begin(), items[i].tokens.end());
  }
  return logits.dtype() == DType::f32 ? logits : ops::cast(logits, DType::f32);
}

// Fills p.v for the items (p.rows >= their tokens and p.items >= their count: the rest are
// padding rows, one per padding item, with slot -1 and no keys).
void Engine::Impl::pack(const std::vector<Sequence*>& ss, const std::vector<StepItem>& items, Packed& p) const {
  const int64_t R = p.rows, B = p.items, MB = p.max_blocks;
  p.v.assign(static_cast<size_t>(p.size()), 0);
  int32_t* tok = p.v.data();
  int32_t* pos = tok + R;
  int32_t* slot = pos + R;
  int32_t* lens = slot + R;
  int32_t* qs = lens + B;
  int32_t* table = qs + B + 1;
  int64_t row = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const SequenceKv& kv = ss[i]->kv;
    const int64_t past = kv.length(), n = static_cast<int64_t>(items[i].tokens.size());
    qs[i] = static_cast<int32_t>(row);
    for (int64_t j = 0; j < n; ++j, ++row) {
      tok[row] = items[i].tokens[static_cast<size_t>(j)];
      pos[row] = static_cast<int32_t>(past + j);
      slot[row] = kv.slot(past + j);
    }
    lens[i] = static_cast<int32_t>(past + n);
    const std::vector<int32_t>& blocks = kv.blocks();
    std::copy(blocks.begin(), blocks.end(), table + static_cast<int64_t>(i) * MB);
  }
  // Padding: one row per padding item (slot -1: not stored; seq_len 0: attends to nothing).
  for (int64_t r = row; r < R; ++r) slot[r] = -1;
  for (int64_t i = static_cast<int64_t>(items.size()); i < B; ++i) {
    qs[i] = static_cast<int32_t>(std::min(row, R));
    if (row < R) ++row;
  }
  qs[B] = static_cast<int32_t>(R);
}

// A decode step (one token per item) through the graph of its bucket.
Tensor Engine::Impl::forward_graph(const std::vector<Sequence*>& ss, const std::vector<StepItem>& items) {
  if (pool->generation() != graphs_generation) {  // the pools moved: captured addresses are stale
    decode_graphs.clear();
    graphs_generation = pool->generation();
  }
  const int64_t B = static_cast<int64_t>(items.size()), bucket = next_pow2(B);
  int64_t need = 1;
  for (const Sequence* s : ss) need = std::max(need, static_cast<int64_t>(s->kv.blocks().size()));
  Packed p;
  p.rows = bucket;
  p.items = bucket;
  p.max_blocks = next_pow2(need);
  pack(ss, items, p);
  DecodeGraph& g = decode_graphs[{bucket, p.max_blocks}];
  const Device dev = opts.device;
  if (!g.meta.defined()) g.meta = Tensor::empty({p.size()}, DType::i32, dev);
  g.meta.copy_from(Tensor::from_blob(p.v.data(), {p.size()}, DType::i32));  // the one upload
  if (!g.graph.valid()) {
    model::ForwardBatch b = batch_views(g.meta, p);
    b.kv.k = &pool->k();
    b.kv.v = &pool->v();
    if (!g.logits.defined()) {
      // First use of this shape: eagerly (loads kernels, creates library handles and workspaces).
      g.logits = lm->forward(b);
    } else {
      g.logits = Tensor();
      try {
        g.graph = Graph::capture(dev, [&] { g.logits = lm->forward(b); });
        ++graphs_captured;
      } catch (const std::exception& e) {
        // Not capturable on this device/build: say so once and run eagerly from now on.
        std::fprintf(stderr, "engine: decode graph capture failed, running without graphs: %s\n", e.what());
        graphs = false;
        g.logits = lm->forward(b);
      }
    }
  }
  if (g.graph.valid()) {
    g.graph.replay();
    ++graph_replays;
  }
  const Tensor logits = g.logits.narrow(0, 0, B);
  // A copy: the graph's logits are overwritten by its next replay.
  if (logits.dtype() != DType::f32) return ops::cast(logits, DType::f32);
  Tensor out = Tensor::empty(logits.shape(), DType::f32, dev);
  ops::copy(out, logits);
  return out;
}

void Engine::Impl::check_request(const std::vector<int32_t>& prompt, const GenerationParams& p, size_t index) const {
  const std::string what = "generate (request " + std::to_string(index) + ")";
  FLAGOS_CHECK(!prompt.empty(), what, ": the prompt is empty");
  FLAGOS_CHECK(p.max_new_tokens >= 1, what, ": max_new_tokens must be >= 1, got ", p.max_new_tokens);
  const int64_t need = static_cast<int64_t>(prompt.size()) + p.max_new_tokens;
  FLAGOS_CHECK(need <= max_context, what, ": prompt of ", prompt.size(), " tokens + max_new_tokens ", p.max_new_tokens,
               " = ", need, " exceeds the context limit of ", max_context, " tokens");
  check_sampling(p.sampling);
  for (size_t i = 0; i < p.stop.size(); ++i) FLAGOS_CHECK(!p.stop[i].empty(), what, ": stop string ", i, " is empty");
  FLAGOS_CHECK(p.stop.empty() || tokenizer, what, ": stop strings need a tokenizer and model '", model.config.name,
               "' has none");
  const int64_t vocab = model.config.vocab_size;
  for (size_t j = 0; j < prompt.size(); ++j)
    FLAGOS_CHECK(prompt[j] >= 0 && prompt[j] < vocab, what, ": prompt token ", j, " is id ", prompt[j],
                 ", outside the vocabulary of ", vocab);
}

bool Engine::Impl::is_stop_token(const Run& r, int32_t t) const {
  if (contains(r.params->stop_token_ids, t)) return true;
  if (r.params->ignore_eos) return false;
  const auto& eos = model.config.eos_token_ids;
  return std::find(eos.begin(), eos.end(), static_cast<int64_t>(t)) != eos.end() || (tokenizer && tokenizer->is_eog(t));
}

// Samples one token per row of logits [rows, V] for the runs: greedy rows with equal parameters
// in one ops::sample call, drawing rows one call each (their own seed and draw counter), then the
// ids of all rows in one device->host copy.
std::vector<int32_t> Engine::Impl::sample(const std::vector<Run*>& rs, const Tensor& logits) {
  const size_t B = rs.size();
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < B; ++i) {
    const SamplerParams& sp = rs[i]->params->sampling;
    auto g = std::find_if(groups.begin(), groups.end(), [&](const std::vector<size_t>& grp) {
      return same_greedy(rs[grp.front()]->params->sampling, sp);
    });
    if (g == groups.end())
      groups.push_back({i});
    else
      g->push_back(i);
  }
  std::vector<Tensor> parts;
  std::vector<size_t> order;
  for (const std::vector<size_t>& grp : groups) {
    const int64_t n = static_cast<int64_t>(grp.size());
    const bool contiguous_rows = grp.back() - grp.front() + 1 == grp.size();
    Tensor lg;
    if (contiguous_rows) {
      lg = logits.narrow(0, static_cast<int64_t>(grp.front()), n);
    } else {
      std::vector<int64_t> idx(grp.begin(), grp.end());
      lg = ops::index_select(logits, 0, Tensor::from_vector(idx, {n}, DType::i64).to(opts.device));
    }
    SamplerParams sp = rs[grp.front()]->params->sampling;
    sp.offset = static_cast<uint64_t>(rs[grp.front()]->result.generated_tokens);
    Tensor history;
    if (uses_history(sp)) {
      size_t L = 1;
      for (size_t i : grp) L = std::max(L, rs[i]->history.size());
      std::vector<int32_t> h(static_cast<size_t>(n) * L, -1);
      for (size_t r = 0; r < grp.size(); ++r)
        std::copy(rs[grp[r]]->history.begin(), rs[grp[r]]->history.end(), h.begin() + static_cast<long>(r * L));
      history = Tensor::from_vector(h, {n, static_cast<int64_t>(L)}, DType::i32).to(opts.device);
    }
    parts.push_back(ops::sample(lg, sp, history));
    order.insert(order.end(), grp.begin(), grp.end());
  }
  const Tensor ids = parts.size() == 1 ? parts.front() : ops::cat(parts, 0);
  const std::vector<int64_t> v = ids.to_vector<int64_t>();  // the step's one device->host copy
  std::vector<int32_t> out(B);
  for (size_t j = 0; j < B; ++j) out[order[j]] = static_cast<int32_t>(v[j]);
  return out;
}

void Engine::Impl::on_token(Run& r, int32_t t, const BatchTokenCallback& cb) {
  const GenerationParams& p = *r.params;
  GenerationResult& res = r.result;
  res.tokens.push_back(t);
  ++res.generated_tokens;
  r.history.push_back(t);
  r.next = t;
  const bool stop_token = is_stop_token(r, t);
  const bool last = stop_token || res.generated_tokens >= p.max_new_tokens;
  std::string text = std::move(r.held);
  r.held.clear();
  if (r.stream) {
    // Ids past the tokenizer's vocabulary (models pad their embedding tables) have no text.
    if (!stop_token && t < tokenizer->vocab_size()) text += r.stream->push(t);
    if (last) text += r.stream->flush();
  }
  size_t cut = std::string::npos;
  for (const std::string& s : p.stop) cut = std::min(cut, text.find(s));
  if (cut != std::string::npos) {
    text.resize(cut);
    res.finish = FinishReason::stop_string;
    r.done = true;
  } else if (last) {
    res.finish = stop_token ? FinishReason::stop_token : FinishReason::length;
    r.done = true;
  } else if (!p.stop.empty()) {
    const size_t keep = stop_prefix_suffix(text, p.stop);
    r.held = text.substr(text.size() - keep);
    text.resize(text.size() - keep);
  }
  res.text += text;
  if (cb && !cb(r.index, t, text)) {
    if (!r.done) res.finish = FinishReason::cancelled;
    r.done = true;
  }
}

void Engine::Impl::start(Run& r, const std::vector<int32_t>& prompt, const BatchTokenCallback& cb) {
  r.start = Clock::now();
  Sequence& s = get(r.seq);
  // Reuse the cached prefix the prompt shares (at least one prompt token is fed for its logits).
  size_t common = 0;
  while (common < s.tokens.size() && common < prompt.size() && s.tokens[common] == prompt[common]) ++common;
  common = std::min(common, prompt.size() - 1);
  s.kv.truncate(static_cast<int64_t>(common));
  s.tokens.resize(common);
  r.history = prompt;
  r.result.prompt_tokens = static_cast<int64_t>(prompt.size());
  if (tokenizer) r.stream.emplace(*tokenizer, r.params->skip_special);
  Tensor logits;
  for (size_t b = common; b < prompt.size(); b += static_cast<size_t>(opts.prefill_chunk)) {
    const size_t e = std::min(prompt.size(), b + static_cast<size_t>(opts.prefill_chunk));
    logits = forward({StepItem{r.seq, std::vector<int32_t>(prompt.begin() + static_cast<long>(b),
                                                           prompt.begin() + static_cast<long>(e)),
                               false}});
  }
  const int32_t t = sample({&r}, logits).front();
  r.first = Clock::now();
  r.result.prefill_seconds = seconds_between(r.start, r.first);
  on_token(r, t, cb);
}

void Engine::Impl::decode_step(std::vector<Run*>& active, const BatchTokenCallback& cb) {
  std::vector<StepItem> items;
  items.reserve(active.size());
  for (Run* r : active) items.push_back(StepItem{r->seq, {r->next}, false});
  const std::vector<int32_t> next = sample(active, forward(items));
  for (size_t i = 0; i < active.size(); ++i) on_token(*active[i], next[i], cb);
}

std::vector<GenerationResult> Engine::Impl::run(std::vector<Run>& runs,
                                                const std::vector<const std::vector<int32_t>*>& prompts,
                                                const BatchTokenCallback& cb) {
  // Sequences this call created are freed however it ends.
  struct Cleanup {
    Impl* impl;
    std::vector<Run>* runs;
    ~Cleanup() {
      for (Run& r : *runs)
        if (r.owns_seq && r.seq >= 0) impl->seqs.erase(r.seq);
    }
  } cleanup{this, &runs};
  auto finish = [&](Run& r) {
    r.result.decode_seconds = seconds_between(r.first, Clock::now());
    if (r.owns_seq) {
      seqs.erase(r.seq);
      r.seq = -1;
    }
  };
  std::vector<Run*> active;
  size_t next = 0;
  while (next < runs.size() || !active.empty()) {
    while (next < runs.size() && static_cast<int64_t>(active.size()) < opts.max_batch) {
      Run& r = runs[next];
      if (r.seq < 0) {
        r.seq = create();
        r.owns_seq = true;
      }
      start(r, *prompts[next], cb);
      ++next;
      if (r.done)
        finish(r);
      else
        active.push_back(&r);
    }
    if (active.empty()) continue;
    decode_step(active, cb);
    for (Run* r : active)
      if (r->done) finish(*r);
    active.erase(std::remove_if(active.begin(), active.end(), [](Run* r) { return r->done; }), active.end());
  }
  std::vector<GenerationResult> results;
  results.reserve(runs.size());
  for (Run& r : runs) results.push_back(std::move(r.result));
  return results;
}

// ---------------------------------------------------------------- Engine

Engine::Engine(model::LoadedModel m, EngineOptions opts) : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  const model::ModelConfig& c = m.config;
  FLAGOS_CHECK(opts.max_context >= 0, "engine: max_context must be >= 0 (0 = the model's), got ", opts.max_context);
  FLAGOS_CHECK(opts.prefill_chunk >= 1, "engine: prefill_chunk must be >= 1, got ", opts.prefill_chunk);
  FLAGOS_CHECK(opts.max_batch >= 1, "engine: max_batch must be >= 1, got ", opts.max_batch);
  FLAGOS_CHECK(opts.kv_grow_tokens >= 1, "engine: kv_grow_tokens must be >= 1, got ", opts.kv_grow_tokens);
  FLAGOS_CHECK(opts.kv_block_size >= 1 && opts.kv_block_size <= 1024, "engine: kv_block_size must be in [1, 1024], got ",
               opts.kv_block_size);
  I.max_context = opts.max_context > 0 ? opts.max_context : (c.max_position > 0 ? c.max_position : 4096);
  // Stacked q/k/v and gate/up weights, laid out straight on the engine's device.
  static const bool fused_qkv_env = enabled_by_env("FLAGOS_ENGINE_FUSED_QKV");
  static const bool fused_gate_up_env = enabled_by_env("FLAGOS_ENGINE_FUSED_GATE_UP");
  const bool fused_qkv = opts.fused_qkv && fused_qkv_env, fused_gate_up = opts.fused_gate_up && fused_gate_up_env;
  model::layers::fuse_projection_weights(m.weights, c, fused_qkv, fused_gate_up, opts.device);
  // Weights not on the engine's device are copied there.
  bool moved = false;
  for (const std::string& n : m.weights.names()) moved = moved || !(m.weights.get(n).device() == opts.device);
  if (moved) {
    model::WeightStore w;
    w.source = m.weights.source;
    for (const std::string& n : m.weights.names()) w.add(n, m.weights.get(n).to(opts.device));
    m.weights = std::move(w);
  }
  I.lm = model::create_causal_lm(c, m.weights, {opts.device, opts.compute_dtype, fused_qkv, fused_gate_up});
  if (m.tokenizer) I.tokenizer.emplace(m.tokenizer);
  const int64_t bs = opts.kv_block_size;
  I.pool = std::make_unique<KvPool>(KvLayout{c.num_layers, c.num_kv_heads, c.head_dim, opts.compute_dtype,
                                             opts.device, bs, (opts.kv_grow_tokens + bs - 1) / bs, I.max_context});
  I.graphs = opts.graphs && graphs_enabled_by_env() && !opts.device.is_cpu() && I.lm->graph_capturable() &&
             Graph::supported(opts.device);
  I.model = std::move(m);
  I.opts = opts;
}

Engine::~Engine() = default;

const model::ModelConfig& Engine::config() const { return impl_->model.config; }
const EngineOptions& Engine::options() const { return impl_->opts; }
int64_t Engine::max_context() const { return impl_->max_context; }
bool Engine::has_tokenizer() const { return impl_->tokenizer.has_value(); }
const model::LoadedModel& Engine::model() const { return impl_->model; }

const model::Tokenizer& Engine::tokenizer() const {
  FLAGOS_CHECK(impl_->tokenizer, "engine: model '", impl_->model.config.name, "' (", impl_->model.path,
               ") has no tokenizer");
  return *impl_->tokenizer;
}

SeqId Engine::create_sequence() { return impl_->create(); }

void Engine::free_sequence(SeqId seq) {
  FLAGOS_CHECK(impl_->seqs.erase(seq) == 1, "engine: unknown sequence id ", seq);
}

int64_t Engine::sequence_length(SeqId seq) const { return impl_->get(seq).kv.length(); }
const std::vector<int32_t>& Engine::sequence_tokens(SeqId seq) const { return impl_->get(seq).tokens; }

void Engine::truncate_sequence(SeqId seq, int64_t length) {
  Sequence& s = impl_->get(seq);
  s.kv.truncate(length);
  s.tokens.resize(static_cast<size_t>(length));
}

EngineStats Engine::stats() const {
  const Impl& I = *impl_;
  EngineStats s;
  s.kv_block_size = I.pool->block_size();
  s.kv_blocks = I.pool->num_blocks();
  s.kv_free_blocks = I.pool->free_blocks();
  s.kv_pool_growths = I.pool->growths();
  s.graphs_captured = I.graphs_captured;
  s.graph_replays = I.graph_replays;
  return s;
}

int64_t Engine::kv_cache_bytes() const {
  int64_t b = 0;
  for (const auto& [id, s] : impl_->seqs) b += s->kv.bytes();
  return b;
}

Tensor Engine::forward(const std::vector<StepItem>& items) { return impl_->forward(items); }

GenerationResult Engine::generate(const std::vector<int32_t>& prompt, const GenerationParams& params,
                                  const TokenCallback& on_token) {
  return generate_batch({GenerationRequest{prompt, params}},
                        on_token ? BatchTokenCallback([&](size_t, int32_t t, std::string_view s) { return on_token(t, s); })
                                 : BatchTokenCallback())
      .front();
}

GenerationResult Engine::generate(SeqId seq, const std::vector<int32_t>& prompt, const GenerationParams& params,
                                  const TokenCallback& on_token) {
  impl_->get(seq);
  impl_->check_request(prompt, params, 0);
  std::vector<Impl::Run> runs(1);
  runs[0].seq = seq;
  runs[0].params = &params;
  const BatchTokenCallback cb =
      on_token ? BatchTokenCallback([&](size_t, int32_t t, std::string_view s) { return on_token(t, s); })
               : BatchTokenCallback();
  return impl_->run(runs, {&prompt}, cb).front();
}

std::vector<GenerationResult> Engine::generate_batch(const std::vector<GenerationRequest>& requests,
                                                     const BatchTokenCallback& on_token) {
  std::vector<Impl::Run> runs(requests.size());
  std::vector<const std::vector<int32_t>*> prompts;
  for (size_t i = 0; i < requests.size(); ++i) {
    impl_->check_request(requests[i].prompt, requests[i].params, i);
    runs[i].index = i;
    runs[i].params = &requests[i].params;
    prompts.push_back(&requests[i].prompt);
  }
  return impl_->run(runs, prompts, on_token);
}

std::vector<int32_t> Engine::encode(std::string_view text, bool add_bos) const {
  return tokenizer().encode(text, add_bos, true);
}

const ChatTemplate& Engine::chat_template() const {
  Impl& I = *impl_;
  if (!I.chat) {
    std::string bos;
    if (I.tokenizer && I.tokenizer->source().bos_id >= 0) bos = I.tokenizer->token_text(I.tokenizer->source().bos_id);
    I.chat = ChatTemplate::detect(I.model.chat_template, I.model.config.arch, bos);
  }
  return *I.chat;
}

std::string Engine::apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return chat_template().apply(messages, add_generation_prompt);
}

std::vector<int32_t> Engine::encode_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return tokenizer().encode(apply_chat_template(messages, add_generation_prompt), false, true);
}

}  // namespace flagos::engine
