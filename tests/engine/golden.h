// Golden fixtures of the engine tests (scripts/gen_golden_models.py): the tiny models under
// tests/fixtures/models/<arch>/ and their Hugging Face reference data.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flagos/device.h"
#include "flagos/engine.h"
#include "flagos/error.h"
#include "flagos/model.h"
#include "flagos/tensor.h"

namespace flagos::test {

inline const std::vector<std::string>& golden_archs() {
  static const std::vector<std::string> a = {"llama", "qwen2", "qwen3", "qwen3_moe", "gemma3"};
  return a;
}

inline std::string fixture_dir(const std::string& arch) { return std::string(FLAGOS_ENGINE_FIXTURES) + "/" + arch; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  FLAGOS_CHECK(f.good(), "cannot open ", path);
  return nlohmann::json::parse(f);
}

// A [rows, cols] f32 array of reference.f32.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> v;
  const float* row(int64_t r) const { return v.data() + r * cols; }
};

struct Golden {
  std::string arch, dir;
  nlohmann::json index;
  std::vector<float> floats;

  explicit Golden(const std::string& a) : arch(a), dir(fixture_dir(a)), index(read_json(dir + "/reference.json")) {
    std::ifstream f(dir + "/reference.f32", std::ios::binary | std::ios::ate);
    FLAGOS_CHECK(f.good(), "cannot open ", dir, "/reference.f32");
    floats.resize(static_cast<size_t>(f.tellg()) / 4);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(floats.data()), static_cast<std::streamsize>(floats.size() * 4));
  }
  Matrix matrix(const nlohmann::json& ref) const {
    Matrix m;
    m.rows = ref["shape"][0].get<int64_t>();
    m.cols = ref["shape"][1].get<int64_t>();
    const size_t off = ref["offset"].get<size_t>();
    FLAGOS_CHECK(off + static_cast<size_t>(m.rows * m.cols) <= floats.size(), arch, ": reference array out of range");
    m.v.assign(floats.begin() + static_cast<long>(off), floats.begin() + static_cast<long>(off + m.rows * m.cols));
    return m;
  }
  static std::vector<int32_t> ids(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }
};

// ||got - want|| / ||want|| of one row; NaN in got gives infinity (never passes).
inline double rel_l2(const float* got, const float* want, int64_t n) {
  double d = 0, w = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double e = static_cast<double>(got[i]) - want[i];
    d += e * e;
    w += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(d / (w > 0 ? w : 1e-300));
}

// Largest rel_l2 over the rows of `logits` (f32 [rows, V] on any device) against `want`.
inline double max_rel_err(const Tensor& logits, const Matrix& want, int64_t want_row0 = 0) {
  const std::vector<float> got = logits.to_vector<float>();
  const int64_t rows = logits.size(0), V = logits.size(1);
  FLAGOS_CHECK(V == want.cols && want_row0 + rows <= want.rows, "logits ", logits.shape(), " vs reference [",
               want.rows, ", ", want.cols, "]");
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r)
    worst = std::max(worst, rel_l2(got.data() + r * V, want.row(want_row0 + r), V));
  return worst;
}

// FLAGOS_ENGINE_TEST_DEVICE (e.g. "cuda") runs the engine on that device (weights loaded onto it);
// default the CPU. The reference and the tolerance are the same on every device.
inline Device test_device() {
  const char* d = std::getenv("FLAGOS_ENGINE_TEST_DEVICE");
  return d && *d ? parse_device(d) : Device::cpu();
}

// The engine of the model in `dir`, its weights loaded onto `device` (and the engine run there).
inline std::unique_ptr<engine::Engine> open_engine(const std::string& dir, engine::EngineOptions o = {},
                                                   Device device = test_device()) {
  model::LoadOptions lo;
  lo.device = o.device = device;
  return std::make_unique<engine::Engine>(model::load_model(dir, lo), o);
}

// Greedy decoding of exactly n tokens (end-of-sequence ignored).
inline engine::GenerationParams greedy(int64_t n) {
  engine::GenerationParams p;
  p.sampling.temperature = 0;
  p.max_new_tokens = n;
  p.ignore_eos = true;
  return p;
}

inline int32_t argmax_row(const Tensor& logits, int64_t row) {
  const std::vector<float> v = logits.narrow(0, row, 1).to_vector<float>();
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace flagos::test
