// The CUDA backend's tunable families and their tables (see tuning.h, docs/perf/cuda.md).
#include "backends/cuda/tuning.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/tuning_embedded.h"
#include "flagos/error.h"

namespace flagos::cuda::tuning {

namespace ft = flagos::tuning;

namespace {

constexpr const char* kGemv = "gemv";
constexpr const char* kSoftmax = "softmax";

bool pow2(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

// ---------------------------------------------------------------- gemv

Key gemv_key(int64_t M, int64_t N, int64_t K) {
  return Key{ft::bucket_pow2(M), ft::bucket_half_octave(N), ft::bucket_half_octave(K)};
}

std::string gemv_check(const Config& c) {
  if (c.n != 3) return detail::concat("expected 3 fields (rows ksplit threads), got ", c.n);
  if (c[0] != 1 && c[0] != 2 && c[0] != 4) return detail::concat("rows=", c[0], " (1, 2 or 4)");
  if (c[2] != 64 && c[2] != 128 && c[2] != 256) return detail::concat("threads=", c[2], " (64, 128 or 256)");
  if (!pow2(c[1]) || c[1] > 8) return detail::concat("ksplit=", c[1], " (1, 2, 4 or 8)");
  if (c[1] > c[2] / 32) return detail::concat("ksplit=", c[1], " exceeds the ", c[2] / 32, " warps of a block");
  return "";
}

Config to_config(const GemvConfig& g) { return Config{g.rows, g.ksplit, g.threads}; }

std::vector<Config> gemv_space(int /*device*/, const ft::Ints& shape) {
  const int64_t K = shape[2];
  std::vector<Config> out{to_config(gemv_heuristic())};
  for (int threads : {128, 256})
    for (int rows : {1, 2, 4})
      for (int ksplit : {1, 2, 4, 8}) {
        const Config c{rows, ksplit, threads};
        if (!gemv_check(c).empty() || c == out.front()) continue;
        if (ksplit > 1 && K / 8 < 32 * ksplit) continue;  // fewer 8-element pieces than lanes
        out.push_back(c);
      }
  return out;
}

// ---------------------------------------------------------------- softmax

Key softmax_key(int64_t esize, int64_t rows, int64_t n) {
  return Key{esize, ft::bucket_pow2(rows), ft::bucket_half_octave(n)};
}

std::string softmax_check(const Config& c) {
  if (c.n != 2) return detail::concat("expected 2 fields (segments threads), got ", c.n);
  if (c[0] < 1 || c[0] > 1024) return detail::concat("segments=", c[0], " (1 .. 1024)");
  // <= 512: the kernels carry no launch bounds, and 512 threads fit any register count <= 128
  if (!pow2(c[1]) || c[1] < 64 || c[1] > 512) return detail::concat("threads=", c[1], " (64 .. 512, a power of two)");
  return "";
}

std::vector<Config> softmax_space(int device, const ft::Ints& shape) {
  const int64_t rows = shape[1], n = shape[2];
  const SoftmaxConfig h = softmax_heuristic(device, static_cast<int>(shape[0]), rows, n);
  std::vector<Config> out{Config{h.segments, h.threads}};
  const int64_t sms = sm_count(device);
  for (int threads : {128, 256, 512})
    for (int seg = 1; seg <= 256; seg *= 2) {
      const Config c{seg, threads};
      if (c == out.front()) continue;
      if (seg > 1 && (n / seg < 2048 || rows * seg > 16 * sms)) continue;  // tiny segments, huge grids
      out.push_back(c);
    }
  return out;
}

// ---------------------------------------------------------------- tables

std::vector<ft::Family> make_families() {
  std::vector<ft::Family> f(2);
  f[0].name = kGemv;
  f[0].description =
      "gemv: skinny linear, 16-bit x and w of one dtype, M <= 8; key (pow2 M, half-octave N, K); "
      "rows per warp group, warps splitting K, block threads";
  f[0].key_names = {"m", "n", "k"};
  f[0].param_names = {"rows", "ksplit", "threads"};
  f[0].bucket = [](const ft::Ints& s) { return gemv_key(s[0], s[1], s[2]); };
  f[0].space = gemv_space;
  f[0].heuristic = [](int, const ft::Ints&) { return to_config(gemv_heuristic()); };
  f[0].check = gemv_check;
  f[1].name = kSoftmax;
  f[1].description =
      "softmax: block path of softmax/log_softmax (long rows); key (element bytes, pow2 rows, half-octave n); "
      "segments per row, block threads";
  f[1].key_names = {"esize", "rows", "n"};
  f[1].param_names = {"segments", "threads"};
  f[1].bucket = [](const ft::Ints& s) { return softmax_key(s[0], s[1], s[2]); };
  f[1].space = softmax_space;
  f[1].heuristic = [](int device, const ft::Ints& s) {
    const SoftmaxConfig h = softmax_heuristic(device, static_cast<int>(s[0]), s[1], s[2]);
    return Config{h.segments, h.threads};
  };
  f[1].check = softmax_check;
  return f;
}

const std::vector<ft::Family>& families() {
  static const std::vector<ft::Family> f = make_families();
  return f;
}

constexpr int kMaxDevices = 64;
struct Slot {
  std::once_flag once;
  const ft::Table* table = nullptr;
};
Slot g_slots[kMaxDevices];
std::mutex g_mu;
std::deque<ft::Table> g_tables;                   // loaded tables, never freed
std::map<std::string, const ft::Table*> g_by_arch;  // arch -> loaded table (or null)

const ft::Table* load_for(int device) {
  const std::string arch = arch_name(device);
  std::lock_guard lk(g_mu);
  if (auto it = g_by_arch.find(arch); it != g_by_arch.end()) return it->second;
  const ft::Table* result = nullptr;
  const char* env = std::getenv("FLAGOS_CUDA_TUNING_TABLE");
  if (env && *env) {
    ft::Table t = ft::Table::load(env);
    t.validate(families());
    if (t.arch() != arch)
      fail("FLAGOS_CUDA_TUNING_TABLE=", env, ": the table is for ", t.arch(), " but CUDA device ", device, " is ", arch);
    g_tables.push_back(std::move(t));
    result = &g_tables.back();
  } else {
    for (int i = 0; i < embedded::kCount; ++i) {
      if (arch != embedded::kTables[i].arch) continue;
      ft::Table t = ft::Table::parse(embedded::kTables[i].text, detail::concat(embedded::kTables[i].path, " (compiled in)"));
      t.validate(families());
      g_tables.push_back(std::move(t));
      result = &g_tables.back();
    }
  }
  g_by_arch[arch] = result;
  return result;
}

const Config* lookup(int device, const char* family, const Key& key) {
  if (const Config* c = ft::forced(family)) return c;
  const ft::Table* t = active_table(device);
  return t ? t->find(family, key) : nullptr;
}

}  // namespace

GemvConfig gemv_heuristic() { return GemvConfig{}; }

GemvConfig gemv_config(int device, int64_t M, int64_t N, int64_t K) {
  const Config* c = lookup(device, kGemv, gemv_key(M, N, K));
  // An empty forced config means "the heuristic"; table entries were validated at load.
  if (!c || c->n == 0 || !gemv_check(*c).empty()) return gemv_heuristic();
  return GemvConfig{static_cast<int>((*c)[0]), static_cast<int>((*c)[1]), static_cast<int>((*c)[2])};
}

SoftmaxConfig softmax_heuristic(int device, int /*esize*/, int64_t rows, int64_t n) {
  // few long rows: split each row over segments so that ~2 blocks per SM run
  const int64_t want = 2 * static_cast<int64_t>(sm_count(device));
  int64_t nseg = 1;
  if (rows < want) nseg = std::min((want + rows - 1) / rows, std::max<int64_t>(1, n / 8192));
  return SoftmaxConfig{static_cast<int>(std::min<int64_t>(nseg, 1024)), 256};
}

SoftmaxConfig softmax_config(int device, int esize, int64_t rows, int64_t n) {
  const Config* c = lookup(device, kSoftmax, softmax_key(esize, rows, n));
  if (!c || c->n == 0 || !softmax_check(*c).empty()) return softmax_heuristic(device, esize, rows, n);
  return SoftmaxConfig{static_cast<int>((*c)[0]), static_cast<int>((*c)[1])};
}

std::string arch_name(int device) {
  int major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return detail::concat("sm_", major, minor);
}

const ft::Table* active_table(int device) {
  if (device < 0 || device >= kMaxDevices) fail("CUDA tuning: device index ", device, " out of range");
  Slot& s = g_slots[device];
  std::call_once(s.once, [&] { s.table = load_for(device); });
  return s.table;
}

std::string shipped_table_text(const std::string& arch) {
  for (int i = 0; i < embedded::kCount; ++i)
    if (arch == embedded::kTables[i].arch) return embedded::kTables[i].text;
  return "";
}

void register_tunables(uint16_t backend_id) {
  ft::Tunables t;
  t.families = families();
  t.arch = [](int device) { return arch_name(device); };
  t.active_table = [](int device) { return active_table(device); };
  for (int i = 0; i < embedded::kCount; ++i) t.shipped.emplace_back(embedded::kTables[i].arch, embedded::kTables[i].text);
  ft::set_tunables(backend_id, std::move(t));
}

}  // namespace flagos::cuda::tuning
