// A model with random weights from a Hugging Face config.json alone: the architecture's expected
// weights (expected_weights) filled with uniform values, created directly on the target device.
// For benchmarks of large shapes (e.g. a Qwen2.5-7B-shaped model on a GPU) without a 15 GB file.
//
// Values: one block of kBlock random values is generated on the host once (xorshift, seeded),
// uploaded once per dtype, and copied device-to-device into every weight (scaled per tensor is not
// needed for speed measurements; magnitudes are kept small so activations stay finite):
// matrices get U(-0.02, 0.02), norm weights 1, biases 0.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "flagos/error.h"
#include "flagos/model.h"
#include "flagos/ops.h"
#include "model/loaders.h"

namespace flagos::model {

namespace {

constexpr int64_t kBlock = int64_t{1} << 24;  // 16 Mi values

Tensor random_block(uint64_t seed, DType dtype, Device dev) {
  std::vector<float> v(static_cast<size_t>(kBlock));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = (static_cast<float>(s >> 40) / static_cast<float>(1 << 24) - 0.5f) * 0.04f;
  }
  Tensor host = Tensor::from_vector(v, {kBlock}, DType::f32);
  return ops::cast(host, dtype).to(dev);
}

// Fills a contiguous tensor by repeating `block`.
void fill_from_block(Tensor& t, const Tensor& block) {
  const int64_t n = t.numel();
  Tensor flat = t.view({n});
  for (int64_t off = 0; off < n; off += kBlock) {
    const int64_t len = std::min(kBlock, n - off);
    Tensor dst = flat.narrow(0, off, len);
    dst.copy_from(block.narrow(0, 0, len));
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

LoadedModel random_model(const std::string& config_json_path, const RandomModelOptions& opts) {
  std::ifstream f(config_json_path, std::ios::binary);
  if (!f) fail<InvalidArgument>(config_json_path, ": cannot open the config file");
  std::stringstream ss;
  ss << f.rdbuf();
  LoadedModel lm;
  lm.config = loaders::config_from_hf_json(ss.str(), config_json_path);
  loaders::validate_config(lm.config, config_json_path);
  lm.config.weight_dtype = opts.dtype;
  lm.path = config_json_path;
  lm.format = "random";
  lm.weights.source = config_json_path + " (random weights)";
  const Tensor block = random_block(opts.seed, opts.dtype, opts.device);
  const auto expected = expected_weights(lm.config);
  int64_t total = 0, done = 0;
  for (const auto& e : expected)
    if (e.required) total += e.shape.numel();
  for (const auto& e : expected) {
    if (!e.required) continue;
    const bool vec = e.shape.size() == 1;
    Tensor t = Tensor::empty(e.shape, vec ? DType::f32 : opts.dtype, opts.device);
    if (vec)
      ops::fill(t, ends_with(e.name, "norm.weight") ? 1.0 : 0.0);
    else
      fill_from_block(t, block);
    if (opts.quant && !vec && e.shape.size() == 2 && e.name.find("embed_tokens") == std::string::npos)
      t = ops::quantize(opts.dtype == DType::f32 ? t : ops::cast(t, DType::f32), *opts.quant);
    lm.weights.add(e.name, std::move(t));
    done += e.shape.numel();
    if (opts.progress) opts.progress(done, total);
  }
  current_stream(opts.device).synchronize();
  return lm;
}

}  // namespace flagos::model
