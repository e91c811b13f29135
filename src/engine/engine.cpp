// The engine: sequences with their KV caches, the batched forward step, and generation (prompt
// prefill in chunks, decode of all active sequences in one forward pass per step, sampling with
// the sequence's history, stop tokens and stop strings on the streamed text). See engine.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "engine/kv_cache.h"
#include "flagos/engine.h"
#include "flagos/error.h"
#include "flagos/ops.h"
#include "model/causal_lm.h"

namespace flagos::engine {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Sequence {
  explicit Sequence(const KvLayout& layout) : kv(layout) {}
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
  KvLayout kv_layout;
  std::unordered_map<SeqId, std::unique_ptr<Sequence>> seqs;
  SeqId next_id = 1;
  BatchKv batch_kv;

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
    seqs.emplace(id, std::make_unique<Sequence>(kv_layout));
    return id;
  }

  Tensor forward(const std::vector<StepItem>& items);
  void check_request(const std::vector<int32_t>& prompt, const GenerationParams& p, size_t index) const;
  void start(Run& r, const std::vector<int32_t>& prompt, const BatchTokenCallback& cb);
  void decode_step(std::vector<Run*>& active, const BatchTokenCallback& cb);
  int32_t sample(Run& r, const Tensor& logits_row);
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
  std::vector<int32_t> tokens, positions;
  std::vector<int64_t> rows;
  tokens.reserve(static_cast<size_t>(total));
  positions.reserve(static_cast<size_t>(total));
  model::ForwardBatch b;
  batch_kv.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    const StepItem& it = items[i];
    const int64_t past = ss[i]->kv.length(), n = static_cast<int64_t>(it.tokens.size());
    const int64_t row = static_cast<int64_t>(tokens.size());
    ss[i]->kv.reserve(n);
    batch_kv.add(&ss[i]->kv, past);
    b.items.push_back({row, n, past});
    tokens.insert(tokens.end(), it.tokens.begin(), it.tokens.end());
    for (int64_t p = past; p < past + n; ++p) positions.push_back(static_cast<int32_t>(p));
    if (it.all_logits)
      for (int64_t r = row; r < row + n; ++r) rows.push_back(r);
    else
      rows.push_back(row + n - 1);
  }
  const Device dev = opts.device;
  b.tokens = Tensor::from_vector(tokens, {total}, DType::i32).to(dev);
  b.positions = Tensor::from_vector(positions, {total}, DType::i32).to(dev);
  if (static_cast<int64_t>(rows.size()) != total)
    b.logit_rows = Tensor::from_vector(rows, {static_cast<int64_t>(rows.size())}, DType::i64).to(dev);
  b.kv = &batch_kv;
  Tensor logits = lm->forward(b);
  for (size_t i = 0; i < items.size(); ++i) {
    ss[i]->kv.commit(static_cast<int64_t>(items[i].tokens.size()));
    ss[i]->tokens.insert(ss[i]->tokens.end(), items[i].tokens.begin(), items[i].tokens.end());
  }
  return logits.dtype() == DType::f32 ? logits : ops::cast(logits, DType::f32);
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

int32_t Engine::Impl::sample(Run& r, const Tensor& logits_row) {
  SamplerParams sp = r.params->sampling;
  sp.offset = static_cast<uint64_t>(r.result.generated_tokens);
  Tensor history;
  if (uses_history(sp)) {
    const int64_t L = static_cast<int64_t>(r.history.size());
    history = Tensor::from_blob(r.history.data(), {1, L}, DType::i32).to(opts.device);
  }
  return static_cast<int32_t>(ops::sample(logits_row, sp, history).item());
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
  if (!s.kv.can_truncate(static_cast<int64_t>(common))) common = 0;  // windowed layers dropped what it needs
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
  const int32_t t = sample(r, logits);
  r.first = Clock::now();
  r.result.prefill_seconds = seconds_between(r.start, r.first);
  on_token(r, t, cb);
}

void Engine::Impl::decode_step(std::vector<Run*>& active, const BatchTokenCallback& cb) {
  std::vector<StepItem> items;
  items.reserve(active.size());
  for (Run* r : active) items.push_back(StepItem{r->seq, {r->next}, false});
  const Tensor logits = forward(items);
  for (size_t i = 0; i < active.size(); ++i) {
    Run& r = *active[i];
    on_token(r, sample(r, logits.narrow(0, static_cast<int64_t>(i), 1)), cb);
  }
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
  I.max_context = opts.max_context > 0 ? opts.max_context : (c.max_position > 0 ? c.max_position : 4096);
  // Weights not on the engine's device are copied there.
  bool moved = false;
  for (const std::string& n : m.weights.names()) moved = moved || !(m.weights.get(n).device() == opts.device);
  if (moved) {
    model::WeightStore w;
    w.source = m.weights.source;
    for (const std::string& n : m.weights.names()) w.add(n, m.weights.get(n).to(opts.device));
    m.weights = std::move(w);
  }
  I.lm = model::create_causal_lm(c, m.weights, {opts.device, opts.compute_dtype});
  if (m.tokenizer) I.tokenizer.emplace(m.tokenizer);
  I.kv_layout = KvLayout{c.num_layers, c.num_kv_heads, c.head_dim, opts.compute_dtype,
                         opts.device, opts.kv_grow_tokens, I.max_context, I.lm->attention_windows()};
  FLAGOS_CHECK(static_cast<int64_t>(I.kv_layout.windows.size()) == c.num_layers, "engine: the architecture reports ",
               I.kv_layout.windows.size(), " attention windows for ", c.num_layers, " layers");
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
