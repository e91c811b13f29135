// `flagos run`: generate text from a model, streaming it as it comes (llama.cpp's flag names).
//   flagos run [-m PATH] [-p PROMPT | -f FILE | --chat] [-n N] [--device cpu] [--temp T] [--top-k K]
//              [--top-p P] [--min-p P] [--repeat-penalty R] [--presence-penalty P]
//              [--frequency-penalty F] [--seed S] [-c CTX] [-t THREADS] [--dtype D] [--quant q8_0]
//              [--system TEXT] [--stop STR]... [--ignore-eos] [--no-display-prompt]
// Without -m it uses the cached default model. --chat without -p reads user turns from stdin.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "cli.h"
#include "flagos/engine.h"
#include "flagos/error.h"
#include "model_util.h"

namespace flagos::cli {

namespace {

double parse_num(const std::string& flag, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !(x >= lo && x <= hi))
    fail<InvalidArgument>(flag, " ", v, ": expected a number in [", lo, ", ", hi, "]");
  return x;
}

struct RunArgs {
  std::optional<std::string> prompt;
  bool chat = false;
  bool display_prompt = true;
  bool graphs = true;  // --no-graph: decode steps run eagerly (A/B of the decode graphs)
  std::string system;
  engine::GenerationParams gen;
  int64_t ctx = 0;
};

RunArgs parse_run_args(Args& a) {
  RunArgs r;
  auto& s = r.gen.sampling;
  // llama.cpp's defaults, so habits carry over.
  s.temperature = 0.8f;
  s.top_k = 40;
  s.top_p = 0.95f;
  s.min_p = 0.05f;
  s.seed = std::random_device{}();
  r.gen.max_new_tokens = 256;
  auto p = a.value("-p");
  if (!p) p = a.value("--prompt");
  auto f = a.value("-f");
  if (!f) f = a.value("--file");
  if (p && f) fail<InvalidArgument>("give either -p PROMPT or -f FILE, not both");
  if (f) {
    std::ifstream in(*f, std::ios::binary);
    if (!in) fail<InvalidArgument>("-f ", *f, ": cannot open the file");
    std::stringstream ss;
    ss << in.rdbuf();
    p = ss.str();
  }
  r.prompt = p;
  r.chat = a.flag("--chat") || a.flag("-cnv") || a.flag("--conversation");
  if (auto v = a.value("-n"); v || (v = a.value("--n-predict")))
    r.gen.max_new_tokens = static_cast<int64_t>(parse_num("-n", *v, 1, 1e9));
  if (auto v = a.value("--temp")) s.temperature = static_cast<float>(parse_num("--temp", *v, 0, 100));
  if (auto v = a.value("--top-k")) s.top_k = static_cast<int32_t>(parse_num("--top-k", *v, 0, 1e9));
  if (auto v = a.value("--top-p")) s.top_p = static_cast<float>(parse_num("--top-p", *v, 0, 1));
  if (auto v = a.value("--min-p")) s.min_p = static_cast<float>(parse_num("--min-p", *v, 0, 1));
  if (auto v = a.value("--repeat-penalty"))
    s.repetition_penalty = static_cast<float>(parse_num("--repeat-penalty", *v, 0.01, 100));
  if (auto v = a.value("--presence-penalty"))
    s.presence_penalty = static_cast<float>(parse_num("--presence-penalty", *v, -100, 100));
  if (auto v = a.value("--frequency-penalty"))
    s.frequency_penalty = static_cast<float>(parse_num("--frequency-penalty", *v, -100, 100));
  if (auto v = a.value("--seed"); v || (v = a.value("-s"))) {
    const double x = parse_num("--seed", *v, -1, 1.8e19);
    if (x >= 0) s.seed = static_cast<uint64_t>(x);
  }
  if (auto v = a.value("-c"); v || (v = a.value("--ctx-size")))
    r.ctx = static_cast<int64_t>(parse_num("-c", *v, 0, 1e8));
  if (auto v = a.value("--system"); v || (v = a.value("-sys"))) r.system = *v;
  while (auto v = a.value("--stop")) r.gen.stop.push_back(*v);
  r.gen.ignore_eos = a.flag("--ignore-eos");
  r.display_prompt = !a.flag("--no-display-prompt");
  r.graphs = !a.flag("--no-graph");
  return r;
}

void print_stats(const engine::GenerationResult& g) {
  std::fprintf(stderr,
               "\n\n[flagos] prompt: %lld tokens, %.2f tok/s | generated: %lld tokens, %.2f tok/s (%s)\n",
               static_cast<long long>(g.prompt_tokens), g.prefill_tokens_per_second(),
               static_cast<long long>(g.generated_tokens), g.decode_tokens_per_second(),
               std::string(engine::to_string(g.finish)).c_str());
}

engine::TokenCallback printer() {
  return [](int32_t, std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
}

// Interactive chat: one KV sequence across turns, so earlier turns are not recomputed.
int chat_loop(engine::Engine& eng, const RunArgs& r) {
  std::vector<engine::ChatMessage> msgs;
  if (!r.system.empty()) msgs.push_back({"system", r.system});
  const engine::SeqId seq = eng.create_sequence();
  std::fprintf(stderr, "[flagos] chat (%s format); an empty line or Ctrl-D ends it\n",
               std::string(engine::to_string(eng.chat_template().format())).c_str());
  std::string line;
  while (true) {
    std::fprintf(stdout, "\n> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    msgs.push_back({"user", line});
    const auto ids = eng.encode_chat(msgs);
    const auto g = eng.generate(seq, ids, r.gen, printer());
    msgs.push_back({"assistant", g.text});
    print_stats(g);
  }
  return 0;
}

}  // namespace

int cmd_run(Args& a) {
  const ModelArgs m = parse_model_args(a);
  const RunArgs r = parse_run_args(a);
  a.finish("run");
  if (!r.prompt && !r.chat)
    fail<InvalidArgument>("flagos run: give a prompt (-p TEXT or -f FILE) or --chat for a conversation");

  model::LoadedModel lm = load_with_progress(m);
  const auto& c = lm.config;
  std::fprintf(stderr, "[flagos] %s: %s, %lld layers, hidden %lld, vocab %lld, %.1f M params, %s weights, on %s\n",
               lm.path.c_str(), c.arch.c_str(), static_cast<long long>(c.num_layers),
               static_cast<long long>(c.hidden_size), static_cast<long long>(c.vocab_size),
               static_cast<double>(lm.weights.total_params()) / 1e6, lm.format.c_str(),
               to_string(m.load.device).c_str());
  engine::EngineOptions eo;
  eo.device = m.load.device;
  eo.compute_dtype = compute_dtype_for(m, lm.config.weight_dtype);
  eo.max_context = r.ctx;
  eo.graphs = r.graphs;
  engine::Engine eng(std::move(lm), eo);

  if (r.chat && !r.prompt) return chat_loop(eng, r);
  std::vector<int32_t> ids;
  if (r.chat) {
    std::vector<engine::ChatMessage> msgs;
    if (!r.system.empty()) msgs.push_back({"system", r.system});
    msgs.push_back({"user", *r.prompt});
    ids = eng.encode_chat(msgs);
  } else {
    ids = eng.encode(*r.prompt);
    if (r.display_prompt) std::fwrite(r.prompt->data(), 1, r.prompt->size(), stdout);
  }
  const auto g = eng.generate(ids, r.gen, printer());
  print_stats(g);
  return 0;
}

}  // namespace flagos::cli
