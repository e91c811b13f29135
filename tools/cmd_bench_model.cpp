// `flagos bench model`: prompt processing (ppP) and text generation (tgN) speed of a model, in the
// shape of llama-bench's table. Random token ids; times the forward passes only (no tokenization,
// no sampling). -b lists how many sequences run together (pp: b prompts in one pass per chunk;
// tg: b sequences decoded together, one token each per step); t/s counts all sequences' tokens.
//   flagos bench model [-m PATH | --random CONFIG.json] [-p 512] [-n 128] [-b 1,8] [-r 3] [-t THREADS]
//                      [--device D] [--dtype D] [--quant q8_0] [--json FILE] [--no-graph] [--no-warmup]
// --random: random weights for the architecture and shapes of a Hugging Face config.json, made on
// the device (default dtype bf16), for large shapes without the weights file. --no-graph: decode
// steps run eagerly instead of replaying a graph per batch bucket (as FLAGOS_CUDA_GRAPHS=0).
// Each test (pp/tg x batch) runs once untimed before its -r timed runs, as llama-bench does: the first
// run of a shape pays one-time costs (GEMM heuristics, cache and pool growth, graph capture) that
// made the first pp512 sample up to 2.5x slower than the second on the GPU. --no-warmup skips it.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "flagos/backend.h"
#include "flagos/engine.h"
#include "flagos/error.h"
#include "model_util.h"
#include "progress.h"

namespace flagos::cli {

namespace {

std::vector<int64_t> parse_list(const std::string& flag, const std::string& v) {
  std::vector<int64_t> r;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end || x < 0 || x > 1000000)
      fail<InvalidArgument>(flag, " ", v, ": expected comma-separated counts like 1,8");
    r.push_back(x);
  }
  if (r.empty()) fail<InvalidArgument>(flag, ": empty list");
  return r;
}

struct Stat {
  double mean = 0, sd = 0;
  std::vector<double> samples;
};

Stat stats(std::vector<double> v) {
  Stat s;
  s.samples = v;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(s.sd / static_cast<double>(v.size() - 1));
  }
  return s;
}

void sync(const engine::Engine& eng) { current_stream(eng.options().device).synchronize(); }

// One timed run; returns tokens per second over all sequences.
double run_once(engine::Engine& eng, bool prompt, int64_t tokens, int64_t batch, std::mt19937& rng) {
  const int64_t vocab = eng.config().vocab_size;
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  std::vector<engine::SeqId> seqs;
  for (int64_t b = 0; b < batch; ++b) seqs.push_back(eng.create_sequence());
  double seconds = 0;
  if (prompt) {
    const int64_t chunk = eng.options().prefill_chunk;
    for (int64_t done = 0; done < tokens; done += chunk) {
      std::vector<engine::StepItem> items;
      for (auto s : seqs) {
        engine::StepItem it{s, {}, false};
        for (int64_t i = done; i < std::min(tokens, done + chunk); ++i) it.tokens.push_back(tok(rng));
        items.push_back(std::move(it));
      }
      const auto t0 = std::chrono::steady_clock::now();
      eng.forward(items);
      sync(eng);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  } else {
    for (int64_t step = 0; step < tokens; ++step) {
      std::vector<engine::StepItem> items;
      for (auto s : seqs) items.push_back({s, {tok(rng)}, false});
      const auto t0 = std::chrono::steady_clock::now();
      eng.forward(items);
      sync(eng);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  for (auto s : seqs) eng.free_sequence(s);
  return static_cast<double>(tokens * batch) / seconds;
}

std::string human_params(int64_t p) {
  char buf[32];
  if (p >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2f B", static_cast<double>(p) / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.2f M", static_cast<double>(p) / 1e6);
  return buf;
}

}  // namespace

int cmd_bench_model(Args& a) {
  const auto random_config = a.value("--random");
  const ModelArgs m = parse_model_args(a, /*need_path=*/!random_config);
  auto pv = a.value("-p");
  if (!pv) pv = a.value("--n-prompt");
  auto nv = a.value("-n");
  if (!nv) nv = a.value("--n-gen");
  const auto prompts = parse_list("-p", pv.value_or("512"));
  const auto gens = parse_list("-n", nv.value_or("128"));
  const auto batches = parse_list("-b", a.value("-b").value_or("1"));
  const int64_t reps = parse_list("-r", a.value("-r").value_or("3")).at(0);
  const auto json = a.value("--json");
  const bool no_graph = a.flag("--no-graph");
  const bool warmup = !a.flag("--no-warmup");
  a.finish("bench model");
  if (reps < 1) fail<InvalidArgument>("-r: at least one repetition");
  for (auto b : batches)
    if (b < 1) fail<InvalidArgument>("-b: batch sizes must be >= 1");

  model::LoadedModel lm;
  if (random_config) {
    model::RandomModelOptions ro;
    ro.device = m.load.device;
    ro.dtype = m.load.dtype.value_or(DType::bf16);
    ro.quant = m.load.quant;
    ProgressBar rbar("random weights", /*bytes=*/false);
    ro.progress = [&rbar](int64_t d, int64_t t) { rbar.update(d, t); };
    lm = model::random_model(*random_config, ro);
  } else {
    lm = load_with_progress(m);
  }
  const std::string model_name = lm.config.arch + " " + std::filesystem::path(lm.path).filename().string();
  const int64_t bytes = lm.weights.total_bytes(), params = lm.weights.total_params();
  engine::EngineOptions eo;
  eo.device = m.load.device;
  eo.compute_dtype = compute_dtype_for(m, lm.config.weight_dtype);
  int64_t need = 0;
  for (auto p : prompts) need = std::max(need, p);
  for (auto n : gens) need = std::max(need, n);
  eo.max_context = std::max<int64_t>(need + 1, 16);
  eo.max_batch = *std::max_element(batches.begin(), batches.end());
  eo.graphs = !no_graph;
  engine::Engine eng(std::move(lm), eo);
  const DeviceProps props = backend_of(eo.device).device_props(eo.device.index);
  const std::string backend(backend_of(eo.device).name());

  std::mt19937 rng(1234);
  // Warm-up: page the weights in and size the caches.
  run_once(eng, true, std::min<int64_t>(16, need), 1, rng);
  run_once(eng, false, 2, 1, rng);

  struct Row {
    std::string test;
    int64_t n_prompt, n_gen, batch;
    Stat s;
  };
  std::vector<Row> rows;
  const int64_t total_runs =
      static_cast<int64_t>(batches.size() * (prompts.size() + gens.size())) * (reps + (warmup ? 1 : 0));
  int64_t done_runs = 0;
  ProgressBar bar("benchmarking", /*bytes=*/false);
  auto bench = [&](bool prompt, int64_t n, int64_t b) {
    if (n == 0) return;
    std::vector<double> v;
    if (warmup) {
      run_once(eng, prompt, n, b, rng);
      bar.update(++done_runs, total_runs);
    }
    for (int64_t r = 0; r < reps; ++r) {
      v.push_back(run_once(eng, prompt, n, b, rng));
      bar.update(++done_runs, total_runs);
    }
    rows.push_back({(prompt ? "pp" : "tg") + std::to_string(n), prompt ? n : 0, prompt ? 0 : n, b, stats(v)});
  };
  for (auto b : batches) {
    for (auto p : prompts) bench(true, p, b);
    for (auto n : gens) bench(false, n, b);
  }
  bar.finish();

  char size_buf[32];
  std::snprintf(size_buf, sizeof size_buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  std::printf("| %-36s | %12s | %10s | %-7s | %7s | %5s | %8s | %20s |\n", "model", "size", "params", "backend",
              "threads", "batch", "test", "t/s");
  std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", std::string(36, '-').c_str(), std::string(12, '-').c_str(),
              std::string(10, '-').c_str(), std::string(7, '-').c_str(), std::string(7, '-').c_str(),
              std::string(5, '-').c_str(), std::string(8, '-').c_str(), std::string(20, '-').c_str());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    char ts[48];
    std::snprintf(ts, sizeof ts, "%.2f ± %.2f", r.s.mean, r.s.sd);
    std::printf("| %-36s | %12s | %10s | %-7s | %7d | %5lld | %8s | %20s |\n", model_name.substr(0, 36).c_str(),
                size_buf, human_params(params).c_str(), backend.c_str(), props.compute_units,
                static_cast<long long>(r.batch), r.test.c_str(), ts);
    out.push_back({{"model", model_name},
                   {"model_path", eng.model().path},
                   {"size_bytes", bytes},
                   {"params", params},
                   {"backend", backend},
                   {"device", props.name},
                   {"threads", props.compute_units},
                   {"test", r.test},
                   {"n_prompt", r.n_prompt},
                   {"n_gen", r.n_gen},
                   {"batch", r.batch},
                   {"avg_ts", r.s.mean},
                   {"stddev_ts", r.s.sd},
                   {"samples_ts", r.s.samples}});
  }
  const engine::EngineStats st = eng.stats();
  std::printf("decode graphs: %s (%lld captured, %lld replays); KV pool: %lld blocks of %lld, grew %lld times\n",
              no_graph ? "off (--no-graph)" : (st.graphs_captured > 0 ? "on" : "not used"),
              static_cast<long long>(st.graphs_captured), static_cast<long long>(st.graph_replays),
              static_cast<long long>(st.kv_blocks), static_cast<long long>(st.kv_block_size),
              static_cast<long long>(st.kv_pool_growths));
  if (json) {
    std::ofstream f(*json);
    if (!f) fail<InvalidArgument>("--json ", *json, ": cannot write the file");
    f << out.dump(2) << "\n";
    std::printf("wrote %s\n", json->c_str());
  }
  return 0;
}

}  // namespace flagos::cli
