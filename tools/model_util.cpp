// Default-model location and model loading with progress for the CLI.
#include "model_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "flagos/error.h"
#include "progress.h"

namespace flagos::cli {

std::string cache_dir() {
  if (const char* c = std::getenv("FLAGOS_CACHE"); c && *c) return c;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/flagos";
}

std::string resolve_model_path(const std::optional<std::string>& m) {
  if (m) return *m;
  const std::string record = cache_dir() + "/models/default.path";
  std::ifstream f(record);
  std::string path;
  if (f && std::getline(f, path) && !path.empty() && std::filesystem::exists(path)) return path;
  fail<InvalidArgument>("no model given (-m PATH) and no default model cached (", record,
                        " is missing or stale); fetch it with: bash scripts/fetch_default_model.sh");
}

static DType parse_dtype_arg(const std::string& flag, const std::string& v, bool quant) {
  if (!quant) {
    if (v == "f32") return DType::f32;
    if (v == "bf16") return DType::bf16;
    if (v == "f16") return DType::f16;
    fail<InvalidArgument>(flag, " ", v, ": expected f32, bf16 or f16");
  }
  if (v == "q8_0") return DType::q8_0;
  fail<InvalidArgument>(flag, " ", v, ": expected q8_0");
}

ModelArgs parse_model_args(Args& a, bool need_path) {
  ModelArgs m;
  auto path = a.value("-m");
  if (!path) path = a.value("--model");
  if (auto t = a.value("-t"); t || (t = a.value("--threads"))) {
    char* end = nullptr;
    const long n = std::strtol(t->c_str(), &end, 10);
    if (*end || n < 1 || n > 1024) fail<InvalidArgument>("-t ", *t, ": expected a thread count in 1..1024");
    setenv("FLAGOS_NUM_THREADS", t->c_str(), 1);
  }
  if (auto d = a.value("--device")) m.load.device = parse_device(*d);
  if (auto d = a.value("--dtype")) m.load.dtype = parse_dtype_arg("--dtype", *d, false);
  if (auto q = a.value("--quant")) m.load.quant = parse_dtype_arg("--quant", *q, true);
  if (auto c = a.value("--compute-dtype")) m.compute = parse_dtype_arg("--compute-dtype", *c, false);
  if (need_path) m.path = resolve_model_path(path);
  else if (path) fail<InvalidArgument>("give either -m PATH or --random CONFIG, not both");
  return m;
}

DType compute_dtype_for(const ModelArgs& m, DType weight_dtype) {
  if (m.compute) return *m.compute;
  if (m.load.device.is_cpu()) return DType::f32;
  return weight_dtype == DType::bf16 || weight_dtype == DType::f16 ? weight_dtype : DType::f32;
}

model::LoadedModel load_with_progress(const ModelArgs& m) {
  ProgressBar bar("loading " + std::filesystem::path(m.path).filename().string());
  model::LoadOptions opts = m.load;
  opts.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
  model::LoadedModel lm = model::load_model(m.path, opts);
  bar.finish();
  return lm;
}

}  // namespace flagos::cli
