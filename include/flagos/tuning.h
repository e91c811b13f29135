// Kernel launch tables: per kernel family, (bucketed shape -> launch config) entries for one
// chip architecture. Backends ship one table per architecture (compiled in) and consult it once
// per launch with a cheap key; without a matching entry the family's built-in heuristic decides.
// Nothing is tuned while a model runs: `flagos tune ops` times each family's candidate configs on
// the machine at hand and writes a new table (see docs/perf/cuda.md).
//
// Table text format (one entry per line, '#' starts a comment):
//   arch sm_90
//   gemv    m=1 n=4096 k=4096   -> rows=2 ksplit=1 threads=256
//   softmax esize=4 rows=1 n=196608 -> segments=16 threads=512
// Key and config fields are name=integer, in the family's order; keys are bucket values.
#pragma once
#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flagos::tuning {

constexpr int kMaxInts = 4;

// A short list of integers (a bucketed shape key or a launch config); no allocation.
struct Ints {
  std::array<int64_t, kMaxInts> v{};
  int n = 0;
  Ints() = default;
  Ints(std::initializer_list<int64_t> l);
  int64_t operator[](int i) const { return v[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return v[static_cast<size_t>(i)]; }
  void push(int64_t x);
  bool operator==(const Ints& o) const;
  std::strong_ordering operator<=>(const Ints& o) const;
};
using Key = Ints;
using Config = Ints;

// Bucket helpers: the smallest power of two >= x; the smallest of {2^k, 3 * 2^(k-1)} >= x
// (half-octave steps: 896 -> 1024, 3584 -> 4096, 4864 -> 6144, 18944 -> 24576). x <= 0 -> x.
int64_t bucket_pow2(int64_t x);
int64_t bucket_half_octave(int64_t x);

// A tunable kernel family of a backend.
struct Family {
  std::string name;                     // "gemv"
  std::string description;              // one line for `flagos tune ops`
  std::vector<std::string> key_names;   // names of the key fields: {"m", "n", "k"}
  std::vector<std::string> param_names; // names of the config fields: {"rows", "ksplit", "threads"}
  // Shape -> key (the same function the launch uses).
  std::function<Key(const Ints& shape)> bucket;
  // Every candidate config for a key (the first is the heuristic's choice on `device`).
  std::function<std::vector<Config>(int device, const Key& key)> space;
  // The built-in heuristic for a key on `device`.
  std::function<Config(int device, const Key& key)> heuristic;
  // "" when `c` is a config the kernel can run, else why not.
  std::function<std::string(const Config& c)> check;
};

struct Entry {
  std::string family;
  Key key;
  Config config;
  int line = 0;  // in the source text (0: added in code)
  std::vector<std::string> key_names, param_names;  // as written in the text (checked by validate)
};

// One architecture's table.
class Table {
 public:
  // Parses the text format; `source` names the text in errors ("file:line: what").
  // Throws InvalidArgument on malformed lines, duplicate entries or a missing/duplicate arch line.
  static Table parse(std::string_view text, const std::string& source);
  static Table load(const std::string& path);  // parse(file contents, path)

  // Checks every entry against `families` (known family, field names and count, key equals its
  // bucket, config passes the family's check); throws InvalidArgument naming source:line.
  void validate(const std::vector<Family>& families) const;

  const std::string& arch() const { return arch_; }
  void set_arch(std::string a) { arch_ = std::move(a); }
  const std::string& source() const { return source_; }
  const std::vector<Entry>& entries() const { return entries_; }
  // Adds or replaces the entry of (family, key).
  void set(const std::string& family, const Key& key, const Config& config);
  // The config of (family, key), or nullptr. Cheap: a family scan and a binary search.
  const Config* find(std::string_view family, const Key& key) const;
  // The text format; `families` supplies field names (entries of unknown families are skipped).
  std::string format(const std::vector<Family>& families, const std::string& header_comment = "") const;

 private:
  std::string arch_, source_;
  std::vector<Entry> entries_;  // sorted by (family, key)
};

// What a backend offers for tuning (registered by the backend when it registers its kernels).
struct Tunables {
  std::vector<Family> families;
  std::function<std::string(int device)> arch;          // "sm_90"
  std::function<const Table*(int device)> active_table;  // the table launches use (null: none)
  std::vector<std::pair<std::string, std::string>> shipped;  // (arch, text) of the compiled-in tables
};
void set_tunables(uint16_t backend_id, Tunables t);
const Tunables* tunables(uint16_t backend_id);  // nullptr when the backend has none

// Forces a config for a family on this thread while alive (the tuner times candidates this way;
// launches check it before the table). Nests; the innermost wins.
class ForceConfig {
 public:
  ForceConfig(std::string family, Config c);
  ~ForceConfig();
  ForceConfig(const ForceConfig&) = delete;
  ForceConfig& operator=(const ForceConfig&) = delete;

 private:
  std::string family_;
  Config config_;
  const ForceConfig* prev_;
  friend const Config* forced(std::string_view family);
};
// The forced config of `family` on this thread, or nullptr (one thread-local load when none).
const Config* forced(std::string_view family);

// Config for a launch: forced, else the table's entry, else nullptr (use the heuristic).
inline const Config* lookup(const Table* t, std::string_view family, const Key& key) {
  if (const Config* c = forced(family)) return c;
  return t ? t->find(family, key) : nullptr;
}

}  // namespace flagos::tuning
