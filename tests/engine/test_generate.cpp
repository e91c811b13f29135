// The generation API on the llama and gemma3 fixtures: stop strings (cut from the streamed text),
// stop tokens and eos handling, cancellation, sampling determinism per sequence whatever the
// batching, penalties using the sequence's history, prefix reuse of a kept sequence, more
// requests than max_batch, and clear errors for bad arguments and context overflow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include "flagos/engine.h"
#include "golden.h"

namespace flagos {
namespace {

using engine::Engine;
using engine::FinishReason;
using engine::GenerationParams;
using test::Golden;
using test::greedy;

std::unique_ptr<Engine> open(const std::string& arch, engine::EngineOptions o = {}) {
  return std::make_unique<Engine>(model::load_model(test::fixture_dir(arch)), o);
}

// Runs generate and checks the streamed pieces add up to the result's text.
engine::GenerationResult run(Engine& eng, const std::vector<int32_t>& prompt, const GenerationParams& p) {
  std::string streamed;
  std::vector<int32_t> seen;
  auto r = eng.generate(prompt, p, [&](int32_t t, std::string_view piece) {
    seen.push_back(t);
    streamed += piece;
    return true;
  });
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(seen, r.tokens);
  return r;
}

template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << parts.front();
  } catch (const InvalidArgument& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(Generate, StopStringCutsTheStream) {
  auto eng = open("llama");
  const auto prompt = eng->encode("The engine streams tokens");
  const auto full = run(*eng, prompt, greedy(40));
  ASSERT_EQ(full.finish, FinishReason::length);
  ASSERT_GE(full.text.size(), 12u) << "the fixture produced too little text: '" << full.text << "'";
  // A 3-byte stop string from the middle of the text; the output ends where it first occurs.
  const size_t mid = full.text.size() / 2;
  const std::string stop = full.text.substr(mid, 3);
  const size_t first = full.text.find(stop);
  GenerationParams p = greedy(40);
  p.stop = {"never appears \x01", stop};
  const auto r = run(*eng, prompt, p);
  EXPECT_EQ(r.finish, FinishReason::stop_string);
  EXPECT_EQ(r.text, full.text.substr(0, first)) << "stop '" << stop << "'";
  ASSERT_LE(r.tokens.size(), full.tokens.size());
  EXPECT_TRUE(std::equal(r.tokens.begin(), r.tokens.end(), full.tokens.begin()));
  // A stop string that never occurs changes nothing.
  p.stop = {"\x01\x02"};
  EXPECT_EQ(run(*eng, prompt, p).text, full.text);
}

TEST(Generate, StopTokensAndEos) {
  const Golden g("llama");
  const auto prompt = Golden::ids(g.index["prompt"]);
  const auto want = Golden::ids(g.index["greedy_tokens"]);
  {
    auto eng = open("llama");
    GenerationParams p = greedy(8);
    p.stop_token_ids = {want[3]};
    const auto r = run(*eng, prompt, p);
    const size_t at = static_cast<size_t>(std::find(want.begin(), want.end(), want[3]) - want.begin());
    EXPECT_EQ(r.tokens, std::vector<int32_t>(want.begin(), want.begin() + static_cast<long>(at) + 1));
    EXPECT_EQ(r.finish, FinishReason::stop_token);
  }
  // The model's own end-of-generation ids stop it unless ignore_eos.
  model::LoadedModel m = model::load_model(g.dir);
  m.config.eos_token_ids = {want[2]};
  Engine eng(std::move(m));
  GenerationParams p = greedy(8);
  p.ignore_eos = false;
  const size_t at = static_cast<size_t>(std::find(want.begin(), want.end(), want[2]) - want.begin());
  const auto r = run(eng, prompt, p);
  EXPECT_EQ(r.tokens.size(), at + 1);
  EXPECT_EQ(r.finish, FinishReason::stop_token);
  p.ignore_eos = true;
  const auto all = run(eng, prompt, p);
  EXPECT_EQ(all.tokens, want);
  EXPECT_EQ(all.finish, FinishReason::length);
}

TEST(Generate, CallbackCancels) {
  auto eng = open("gemma3");
  int calls = 0;
  const auto r = eng->generate(eng->encode("hello world"), greedy(20), [&](int32_t, std::string_view) {
    return ++calls < 3;
  });
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_EQ(r.finish, FinishReason::cancelled);
  EXPECT_EQ(eng->kv_cache_bytes(), 0) << "the generation's sequence was not freed";
}

TEST(Generate, SamplingIsPerSequenceAndReproducible) {
  auto eng = open("llama");
  GenerationParams p;
  p.sampling.temperature = 0.9f;
  p.sampling.top_k = 40;
  p.sampling.top_p = 0.95f;
  p.max_new_tokens = 12;
  p.ignore_eos = true;
  const auto prompt = eng->encode("Hello world");
  std::vector<std::vector<int32_t>> singles;
  std::vector<engine::GenerationRequest> reqs;
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    p.sampling.seed = seed;
    singles.push_back(run(*eng, prompt, p).tokens);
    EXPECT_EQ(run(*eng, prompt, p).tokens, singles.back()) << "seed " << seed << " is not reproducible";
    reqs.push_back({prompt, p});
  }
  EXPECT_GT(std::set<std::vector<int32_t>>(singles.begin(), singles.end()).size(), 1u)
      << "four seeds gave the same 12 sampled tokens";
  // Batched decode draws the same tokens for each sequence as running it alone.
  const auto batch = eng->generate_batch(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(batch[i].tokens, singles[i]) << "request " << i;
}

TEST(Generate, RepetitionPenaltyUsesHistory) {
  auto eng = open("llama");
  const Golden g("llama");
  const auto base = Golden::ids(g.index["prompt"]);
  const auto plain = Golden::ids(g.index["greedy_tokens"]);
  // Prompts: the golden one, then ones repeating a token; the penalty must change a pick somewhere.
  std::vector<std::vector<int32_t>> prompts = {base};
  for (int32_t t : plain) prompts.push_back(std::vector<int32_t>(10, t));
  int changed = 0;
  for (const auto& prompt : prompts) {
    GenerationParams p = greedy(6);
    p.sampling.repetition_penalty = 3.0f;
    const auto r = run(*eng, prompt, p);
    // Reference: the HF rule (positive logits / p, negative * p, for ids in prompt + output so far).
    std::vector<int32_t> history = prompt;
    const engine::SeqId s = eng->create_sequence();
    Tensor logits = eng->forward({{s, prompt, false}});
    for (size_t k = 0; k < r.tokens.size(); ++k) {
      std::vector<float> v = logits.to_vector<float>();
      const int32_t unpenalized = static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
      for (int32_t t : std::set<int32_t>(history.begin(), history.end())) {
        float& x = v[static_cast<size_t>(t)];
        x = x > 0 ? x / 3.0f : x * 3.0f;
      }
      const int32_t want = static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
      ASSERT_EQ(r.tokens[k], want) << "step " << k;
      changed += want != unpenalized;
      history.push_back(want);
      logits = eng->forward({{s, {want}, false}});
    }
    eng->free_sequence(s);
  }
  EXPECT_GT(changed, 0) << "the penalty never changed a pick: the test shows nothing";
}

TEST(Generate, KeptSequenceReusesItsPrefix) {
  auto eng = open("gemma3");
  const auto prompt = eng->encode("Batching several sequences");
  const engine::SeqId s = eng->create_sequence();
  const auto first = eng->generate(s, prompt, greedy(4));
  EXPECT_EQ(eng->sequence_length(s), static_cast<int64_t>(prompt.size() + 3));
  // The next turn extends the conversation: the cached tokens are reused, the rest prefilled.
  std::vector<int32_t> next = prompt;
  next.insert(next.end(), first.tokens.begin(), first.tokens.end());
  const auto more = eng->encode(" and more", false);
  next.insert(next.end(), more.begin(), more.end());
  const auto second = eng->generate(s, next, greedy(5));
  EXPECT_EQ(second.tokens, eng->generate(next, greedy(5)).tokens) << "prefix reuse changed the result";
  std::vector<int32_t> held = next;
  held.insert(held.end(), second.tokens.begin(), second.tokens.end() - 1);
  EXPECT_EQ(eng->sequence_tokens(s), held);
  // A diverging prompt drops the cached tokens after the common prefix.
  std::vector<int32_t> other(prompt.begin(), prompt.begin() + 2);
  other.push_back(7);
  EXPECT_EQ(eng->generate(s, other, greedy(3)).tokens, eng->generate(other, greedy(3)).tokens);
  eng->free_sequence(s);
  EXPECT_EQ(eng->kv_cache_bytes(), 0);
}

TEST(Generate, WindowedLayersKeepEveryPosition) {
  // gemma3 fixture: layers 0, 1, 3 attend to a window of 4 positions, layer 2 to all of them. The
  // paged cache keeps every position of every layer (the attention op masks by the window), so a
  // sequence can be truncated anywhere.
  auto reference = open("gemma3");
  engine::EngineOptions o;
  o.kv_grow_tokens = 8;
  o.kv_block_size = 4;
  o.prefill_chunk = 5;
  auto eng = open("gemma3", o);
  const auto prompt = Golden::ids(Golden("gemma3").index["prompt"]);
  const engine::SeqId s = eng->create_sequence();
  const auto r = eng->generate(s, prompt, greedy(120));
  EXPECT_EQ(r.tokens, reference->generate(prompt, greedy(120)).tokens) << "the window masking changed the result";
  // K + V of one position in all 4 layers: 2 kv heads x 16 x f32 x 2 x 4 = 1024 bytes, in blocks of 4.
  const int64_t held = eng->sequence_length(s);
  ASSERT_EQ(held, static_cast<int64_t>(prompt.size()) + 119);
  EXPECT_EQ(eng->kv_cache_bytes(), (held + 3) / 4 * 4 * 1024);
  // Truncating into what the windowed layers no longer see works and reuses the prefix.
  eng->truncate_sequence(s, 20);
  EXPECT_EQ(eng->sequence_length(s), 20);
  EXPECT_EQ(eng->kv_cache_bytes(), 5 * 4 * 1024);
  std::vector<int32_t> shorter(r.tokens.begin(), r.tokens.begin() + 10);
  shorter.insert(shorter.begin(), prompt.begin(), prompt.end());
  EXPECT_EQ(eng->generate(s, shorter, greedy(6)).tokens, reference->generate(shorter, greedy(6)).tokens);
}

TEST(Generate, MoreRequestsThanMaxBatch) {
  engine::EngineOptions o;
  o.max_batch = 2;
  auto eng = open("llama", o);
  std::vector<engine::GenerationRequest> reqs;
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 5; ++i) {
    const auto prompt = eng->encode("request number " + std::to_string(i * 37));
    reqs.push_back({prompt, greedy(3 + i)});
    want.push_back(eng->generate(prompt, greedy(3 + i)).tokens);
  }
  std::vector<int> count(5, 0);
  const auto r = eng->generate_batch(reqs, [&](size_t i, int32_t, std::string_view) {
    ++count[i];
    return true;
  });
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(r[i].tokens, want[i]) << "request " << i;
    EXPECT_EQ(count[i], static_cast<int>(3 + i));
  }
  EXPECT_EQ(eng->kv_cache_bytes(), 0);
}

TEST(Generate, ContextLimit) {
  engine::EngineOptions o;
  o.max_context = 16;
  auto eng = open("llama", o);
  EXPECT_EQ(eng->max_context(), 16);
  const std::vector<int32_t> prompt(13, 5);
  expect_error([&] { eng->generate(prompt, greedy(8)); },
               {"prompt of 13 tokens", "max_new_tokens 8", "context limit of 16"});
  EXPECT_EQ(eng->generate(prompt, greedy(3)).tokens.size(), 3u);
  // forward() past the limit fails and appends nothing.
  const engine::SeqId s = eng->create_sequence();
  eng->forward({{s, prompt, false}});
  expect_error([&] { eng->forward({{s, {1, 2, 3, 4}, false}}); }, {"holds 13 tokens", "context limit of 16"});
  EXPECT_EQ(eng->sequence_length(s), 13);
  // The model's own limit when none is given.
  EXPECT_EQ(open("llama")->max_context(), 512);
}

TEST(Generate, BadArguments) {
  auto eng = open("llama");
  const std::vector<int32_t> prompt = {1, 2, 3};
  GenerationParams p = greedy(0);
  expect_error([&] { eng->generate(prompt, p); }, {"max_new_tokens must be >= 1"});
  expect_error([&] { eng->generate({}, greedy(2)); }, {"prompt is empty"});
  expect_error([&] { eng->generate({1, 512}, greedy(2)); }, {"prompt token 1", "512", "vocabulary of 512"});
  expect_error([&] { eng->generate({-1}, greedy(2)); }, {"prompt token 0", "-1"});
  p = greedy(2);
  p.sampling.temperature = -1;
  expect_error([&] { eng->generate(prompt, p); }, {"temperature"});
  p = greedy(2);
  p.sampling.top_p = 0;
  expect_error([&] { eng->generate(prompt, p); }, {"top_p"});
  p = greedy(2);
  p.stop = {"ok", ""};
  expect_error([&] { eng->generate(prompt, p); }, {"stop string 1 is empty"});
  expect_error([&] { eng->generate_batch({{prompt, greedy(2)}, {prompt, greedy(-3)}}); }, {"request 1"});
  // Sequences and forward items.
  expect_error([&] { eng->forward({}); }, {"no items"});
  expect_error([&] { eng->forward({{12345, {1}, false}}); }, {"unknown sequence id 12345"});
  const engine::SeqId s = eng->create_sequence();
  expect_error([&] { eng->forward({{s, {}, false}}); }, {"has no tokens"});
  expect_error([&] { eng->forward({{s, {1}, false}, {s, {2}, false}}); }, {"more than once"});
  expect_error([&] { eng->forward({{s, {1, 600}, false}}); }, {"token 1", "600"});
  EXPECT_EQ(eng->sequence_length(s), 0);
  expect_error([&] { eng->free_sequence(999); }, {"unknown sequence id 999"});
  expect_error([&] { eng->truncate_sequence(s, 5); }, {"cannot truncate"});
  // Options.
  engine::EngineOptions o;
  o.prefill_chunk = 0;
  expect_error([&] { open("llama", o); }, {"prefill_chunk"});
}

TEST(Generate, UnknownArchitectureAndMissingWeights) {
  model::LoadedModel m = model::load_model(test::fixture_dir("qwen2"));
  m.config.arch = "mamba";
  try {
    Engine eng(std::move(m));
    FAIL() << "an unknown architecture was accepted";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'mamba'"), std::string::npos) << msg;
    for (const auto& a : model::supported_architectures()) EXPECT_NE(msg.find(a), std::string::npos) << msg;
  }
  model::LoadedModel q = model::load_model(test::fixture_dir("qwen2"));
  model::WeightStore w;
  w.source = q.weights.source;
  for (const auto& n : q.weights.names())
    if (n != "model.layers.1.self_attn.k_proj.bias") w.add(n, q.weights.get(n));
  q.weights = std::move(w);
  expect_error([&] { Engine eng(std::move(q)); }, {"model.layers.1.self_attn.k_proj.bias"});
}

}  // namespace
}  // namespace flagos
