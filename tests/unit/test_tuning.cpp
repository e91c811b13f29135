// Launch tables (flagos/tuning.h): the text format's parser (good files, malformed lines with
// file:line errors), validation against families, bucketing and lookup, forced configs; the CUDA
// backend's families and shipped tables; and on a GPU, that every config in each family's space
// computes what the heuristic's config computes (float64 references, random inputs, seed printed,
// poisoned outputs, odd sizes). GPU cases skip without a CUDA device.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "cuda_test_util.h"
#include "flagos/backend.h"
#include "flagos/error.h"
#include "flagos/ops.h"
#include "flagos/tensor.h"
#include "flagos/tuning.h"

using namespace flagos;
namespace ft = flagos::tuning;

namespace {

using cudatest::cuda_id;

// A family like the CUDA ones, without a device: key (m, n) bucketed pow2 / half-octave, config
// (a, b) with a in 1..4 and b even.
ft::Family test_family() {
  ft::Family f;
  f.name = "fam";
  f.description = "a test family";
  f.key_names = {"m", "n"};
  f.param_names = {"a", "b"};
  f.bucket = [](const ft::Ints& s) { return ft::Key{ft::bucket_pow2(s[0]), ft::bucket_half_octave(s[1])}; };
  f.space = [](int, const ft::Ints&) { return std::vector<ft::Config>{{1, 2}, {2, 2}}; };
  f.heuristic = [](int, const ft::Ints&) { return ft::Config{1, 2}; };
  f.check = [](const ft::Config& c) -> std::string {
    if (c[0] < 1 || c[0] > 4) return "a out of range";
    if (c[1] % 2) return "b must be even";
    return "";
  };
  return f;
}

// The message of the InvalidArgument thrown by parsing (and validating) `text`, or "".
std::string parse_error(const std::string& text, bool validate = true) {
  try {
    ft::Table t = ft::Table::parse(text, "t.txt");
    if (validate) t.validate({test_family()});
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}


std::mt19937_64 seeded_rng() {
  static const uint64_t seed = [] {
    uint64_t s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    if (const char* e = std::getenv("FLAGOS_TEST_SEED")) s = std::strtoull(e, nullptr, 10);
    std::printf("[tuning] seed %llu\n", static_cast<unsigned long long>(s));
    return s;
  }();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  uint64_t h = seed;
  for (const char* p = info->name(); *p; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 1099511628211ull;
  return std::mt19937_64(h);
}

std::vector<double> uniform(size_t n, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

std::vector<double> to_doubles(const Tensor& t) {
  Tensor h = ops::cast(t.to(Device::cpu()), DType::f64).contiguous();
  const double* p = h.data_as<double>();
  return std::vector<double>(p, p + h.numel());
}

}  // namespace

TEST(Tuning, Buckets) {
  EXPECT_EQ(ft::bucket_pow2(1), 1);
  EXPECT_EQ(ft::bucket_pow2(3), 4);
  EXPECT_EQ(ft::bucket_pow2(8), 8);
  EXPECT_EQ(ft::bucket_pow2(9), 16);
  EXPECT_EQ(ft::bucket_pow2(0), 0);
  EXPECT_EQ(ft::bucket_half_octave(896), 1024);
  EXPECT_EQ(ft::bucket_half_octave(3584), 4096);
  EXPECT_EQ(ft::bucket_half_octave(4864), 6144);
  EXPECT_EQ(ft::bucket_half_octave(6144), 6144);
  EXPECT_EQ(ft::bucket_half_octave(6145), 8192);
  EXPECT_EQ(ft::bucket_half_octave(18944), 24576);
  EXPECT_EQ(ft::bucket_half_octave(152064), 196608);
  EXPECT_EQ(ft::bucket_half_octave(3), 3);
  EXPECT_EQ(ft::bucket_half_octave(5), 6);
  // every bucket value is its own bucket, and buckets never shrink a size
  for (int64_t x = 1; x < 70000; x += 7) {
    const int64_t b = ft::bucket_half_octave(x);
    EXPECT_GE(b, x);
    EXPECT_EQ(ft::bucket_half_octave(b), b) << x;
    EXPECT_EQ(ft::bucket_pow2(ft::bucket_pow2(x)), ft::bucket_pow2(x)) << x;
  }
}

TEST(Tuning, ParsesGoodTable) {
  const std::string text =
      "# comment line\n"
      "arch sm_90   # trailing comment\n"
      "\n"
      "fam m=4 n=1024 -> a=2 b=4\n"
      "  fam   m=1 n=1024   ->   a=1 b=2  \r\n"
      "fam m=1 n=6144 -> a=4 b=8";  // no final newline
  ft::Table t = ft::Table::parse(text, "t.txt");
  t.validate({test_family()});
  EXPECT_EQ(t.arch(), "sm_90");
  ASSERT_EQ(t.entries().size(), 3u);
  EXPECT_EQ(t.entries()[0].key, (ft::Key{1, 1024}));  // sorted by key
  EXPECT_EQ(t.entries()[0].line, 5);
  const ft::Config* c = t.find("fam", ft::Key{4, 1024});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(*c, (ft::Config{2, 4}));
  EXPECT_EQ(t.find("fam", ft::Key{2, 1024}), nullptr);
  EXPECT_EQ(t.find("other", ft::Key{4, 1024}), nullptr);
  // lookup through the family's bucket: shape (3, 900) -> key (4, 1024)
  const ft::Family f = test_family();
  ASSERT_NE(t.find("fam", f.bucket(ft::Ints{3, 900})), nullptr);
  EXPECT_EQ(*t.find("fam", f.bucket(ft::Ints{3, 900})), (ft::Config{2, 4}));
  // format round-trips
  ft::Table u = ft::Table::parse(t.format({f}, "header\nsecond line"), "u.txt");
  u.validate({f});
  ASSERT_EQ(u.entries().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(u.entries()[i].key, t.entries()[i].key);
    EXPECT_EQ(u.entries()[i].config, t.entries()[i].config);
  }
  // set replaces or inserts in order
  u.set("fam", ft::Key{4, 1024}, ft::Config{3, 6});
  u.set("fam", ft::Key{2, 4096}, ft::Config{1, 2});
  EXPECT_EQ(*u.find("fam", ft::Key{4, 1024}), (ft::Config{3, 6}));
  EXPECT_EQ(*u.find("fam", ft::Key{2, 4096}), (ft::Config{1, 2}));
  EXPECT_EQ(u.entries().size(), 4u);
  // an arch line alone is a valid, empty table
  EXPECT_TRUE(ft::Table::parse("arch sm_80\n", "e.txt").entries().empty());
}

TEST(Tuning, MalformedLinesNameFileAndLine) {
  struct Bad {
    std::string text, want;  // want: a piece of the message (after "t.txt:")
  };
  const std::vector<Bad> bad = {
      {"fam m=1 n=1024 -> a=1 b=2\n", "t.txt: missing 'arch NAME'"},
      {"arch sm_90\narch sm_80\n", "t.txt:2: second arch line"},
      {"arch\n", "t.txt:1: expected 'arch NAME'"},
      {"arch sm_90\nfam m=1 n=1024 a=1 b=2\n", "t.txt:2: missing '->'"},
      {"arch sm_90\n\nfam m=1 n=1024 -> a=x b=2\n", "t.txt:3: field a: 'x' is not an integer"},
      {"arch sm_90\nfam m=1 n=10z4 -> a=1 b=2\n", "t.txt:2: field n: '10z4' is not an integer"},
      {"arch sm_90\nfam m=1 n -> a=1 b=2\n", "t.txt:2: expected NAME=INTEGER, got 'n'"},
      {"arch sm_90\nfam m=1 n=1024 -> -> a=1\n", "t.txt:2: second '->'"},
      {"arch sm_90\nfam -> a=1 b=2\n", "t.txt:2: empty key"},
      {"arch sm_90\nfam m=1 n=1024 ->\n", "t.txt:2: empty config"},
      {"arch sm_90\nFam m=1 n=1024 -> a=1 b=2\n", "t.txt:2: expected a family name"},
      {"arch sm_90\nfam m=1 n=1024 -> a=1 b=2\nfam m=1 n=1024 -> a=2 b=2\n", "t.txt:3: duplicate entry"},
      {"arch sm_90\nfam a=1 b=2 c=3 d=4 e=5 -> a=1\n", "t.txt:2: more than 4 key fields"},
      // validation against the family
      {"arch sm_90\nnope m=1 n=1024 -> a=1 b=2\n", "t.txt:2: unknown kernel family 'nope' (known: fam)"},
      {"arch sm_90\nfam m=1 k=1024 -> a=1 b=2\n", "t.txt:2: fam key fields are 'm n', got 'm k'"},
      {"arch sm_90\nfam m=1 n=1024 -> a=1 c=2\n", "t.txt:2: fam config fields are 'a b', got 'a c'"},
      {"arch sm_90\nfam m=1 -> a=1 b=2\n", "t.txt:2: fam key fields are 'm n', got 'm'"},
      {"arch sm_90\nfam m=1 n=1000 -> a=1 b=2\n", "t.txt:2: key is not a bucket value (its bucket is 'm=1 n=1024')"},
      {"arch sm_90\nfam m=3 n=1024 -> a=1 b=2\n", "t.txt:2: key is not a bucket value"},
      {"arch sm_90\nfam m=1 n=1024 -> a=9 b=2\n", "t.txt:2: invalid fam config: a out of range"},
      {"arch sm_90\n# ok\nfam m=1 n=1024 -> a=1 b=3\n", "t.txt:3: invalid fam config: b must be even"},
  };
  for (const Bad& b : bad) {
    const std::string msg = parse_error(b.text);
    EXPECT_NE(msg.find(b.want), std::string::npos) << "text:\n" << b.text << "message: " << msg;
  }
  EXPECT_EQ(parse_error("arch sm_90\nfam m=1 n=1024 -> a=1 b=2\n"), "");
}

TEST(Tuning, LoadNamesThePath) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / ("flagos_tuning_test_" + std::to_string(::getpid()) + ".txt")).string();
  {
    std::ofstream f(path);
    f << "arch sm_90\nfam m=1 n=1024 -> a=1 b=2\nfam m=2 n=1024 -> a=1\n";
  }
  ft::Table t = ft::Table::load(path);
  try {
    t.validate({test_family()});
    ADD_FAILURE() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":3: fam config"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  try {
    (void)ft::Table::load(path);
    ADD_FAILURE() << "expected an error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": cannot open"), std::string::npos) << e.what();
  }
}

TEST(Tuning, ForcedConfigsNest) {
  EXPECT_EQ(ft::forced("fam"), nullptr);
  ft::Table t = ft::Table::parse("arch sm_90\nfam m=1 n=1024 -> a=1 b=2\n", "t.txt");
  EXPECT_EQ(*ft::lookup(&t, "fam", ft::Key{1, 1024}), (ft::Config{1, 2}));
  {
    ft::ForceConfig a("fam", ft::Config{2, 4});
    EXPECT_EQ(*ft::lookup(&t, "fam", ft::Key{1, 1024}), (ft::Config{2, 4}));
    EXPECT_EQ(*ft::lookup(nullptr, "fam", ft::Key{8, 8}), (ft::Config{2, 4}));
    {
      ft::ForceConfig b("fam", ft::Config{});  // empty: "the heuristic"
      EXPECT_EQ(ft::forced("fam")->n, 0);
      ft::ForceConfig c("other", ft::Config{7});
      EXPECT_EQ(ft::forced("fam")->n, 0);
      EXPECT_EQ(*ft::forced("other"), (ft::Config{7}));
    }
    EXPECT_EQ(*ft::forced("fam"), (ft::Config{2, 4}));
  }
  EXPECT_EQ(ft::forced("fam"), nullptr);
  EXPECT_EQ(ft::lookup(nullptr, "fam", ft::Key{1, 1024}), nullptr);
}

// The CUDA backend registers its families (no GPU needed) and its shipped tables are valid.
TEST(CudaTuning, FamiliesAndShippedTables) {
  if (cuda_id() < 0) GTEST_SKIP() << "built without the CUDA backend";
  const ft::Tunables* t = ft::tunables(static_cast<uint16_t>(cuda_id()));
  ASSERT_NE(t, nullptr);
  std::vector<std::string> names;
  for (const auto& f : t->families) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"gemv", "softmax"}));
  EXPECT_FALSE(t->shipped.empty());
  for (const auto& [arch, text] : t->shipped) {
    ft::Table tab = ft::Table::parse(text, arch + ".txt");
    tab.validate(t->families);
    EXPECT_EQ(tab.arch(), arch);
  }
  // configs the kernels cannot run are rejected by the families' checks
  const ft::Family& g = t->families[0];
  EXPECT_EQ(g.check(ft::Config{2, 1, 256}), "");
  EXPECT_NE(g.check(ft::Config{3, 1, 256}), "");
  EXPECT_NE(g.check(ft::Config{2, 8, 128}), "");  // 8 warps splitting K in a 4-warp block
  EXPECT_NE(g.check(ft::Config{2, 1, 512}), "");
  const ft::Family& s = t->families[1];
  EXPECT_EQ(s.check(ft::Config{16, 512}), "");
  EXPECT_NE(s.check(ft::Config{0, 256}), "");
  EXPECT_NE(s.check(ft::Config{4, 96}), "");
  EXPECT_NE(s.check(ft::Config{4, 1024}), "");
  EXPECT_EQ(g.bucket(ft::Ints{3, 18944, 3584}), (ft::Key{4, 24576, 4096}));
  EXPECT_EQ(s.bucket(ft::Ints{2, 5, 152064}), (ft::Key{2, 8, 196608}));
}

// Every gemv config computes the heuristic's result (and the float64 reference): odd N (partial
// row groups), K not a multiple of the split, 1..8 rows, bias, bf16 and f16.
TEST(CudaTuning, GemvEveryConfigAgrees) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const uint16_t id = static_cast<uint16_t>(cuda_id());
  const Device gpu{id, 0};
  const ft::Family& fam = ft::tunables(id)->families[0];
  auto rng = seeded_rng();
  struct S {
    int64_t m, n, k;
  };
  for (DType dt : {DType::bf16, DType::f16})
    for (const S& s : {S{1, 1, 8}, S{1, 333, 264}, S{3, 7, 4104}, S{8, 1029, 2056}, S{5, 64, 1024}, S{2, 4097, 896}}) {
      const auto xv = uniform(static_cast<size_t>(s.m * s.k), rng, -1, 1);
      const auto wv = uniform(static_cast<size_t>(s.n * s.k), rng, -1, 1);
      const auto bv = uniform(static_cast<size_t>(s.n), rng, -1, 1);
      Tensor x = Tensor::from_vector(xv, {s.m, s.k}, dt).to(gpu);
      Tensor w = Tensor::from_vector(wv, {s.n, s.k}, dt).to(gpu);
      Tensor b = Tensor::from_vector(bv, {s.n}, DType::f32).to(gpu);
      // float64 reference from the rounded inputs
      const auto xr = to_doubles(x), wr = to_doubles(w);
      std::vector<double> ref(static_cast<size_t>(s.m * s.n));
      double ss = 0;
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          double acc = bv[static_cast<size_t>(j)];
          for (int64_t q = 0; q < s.k; ++q)
            acc += xr[static_cast<size_t>(i * s.k + q)] * wr[static_cast<size_t>(j * s.k + q)];
          ref[static_cast<size_t>(i * s.n + j)] = acc;
          ss += acc * acc;
        }
      const double rms = std::sqrt(ss / static_cast<double>(ref.size()));
      auto run = [&](const ft::Config& c) {
        ft::ForceConfig force("gemv", c);
        Tensor y = ops::full({s.m, s.n}, NAN, dt, gpu);  // poisoned
        ops::linear(x, w, b, y);
        return to_doubles(y);
      };
      const auto def = run(ft::Config{});
      const auto space = fam.space(0, ft::Ints{s.m, s.n, s.k});
      ASSERT_GE(space.size(), 2u);
      for (const ft::Config& c : space) {
        const auto got = run(c);
        for (size_t i = 0; i < got.size(); ++i) {
          const double tol = 1.0 / 128 * std::fabs(ref[i]) + 1e-3 * rms + 1e-6 * static_cast<double>(s.k);
          ASSERT_TRUE(std::fabs(got[i] - ref[i]) <= tol)
              << dtype_name(dt) << " m=" << s.m << " n=" << s.n << " k=" << s.k << " config " << c[0] << "," << c[1]
              << "," << c[2] << " element " << i << ": " << got[i] << " vs reference " << ref[i];
          ASSERT_TRUE(std::fabs(got[i] - def[i]) <= tol) << "vs heuristic, element " << i;
        }
      }
    }
}

// Every softmax config computes the heuristic's result and the float64 reference on the block
// path: long rows (contiguous, odd lengths that are not a multiple of the vector width, strided).
TEST(CudaTuning, SoftmaxEveryConfigAgrees) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const uint16_t id = static_cast<uint16_t>(cuda_id());
  const Device gpu{id, 0};
  const ft::Family& fam = ft::tunables(id)->families[1];
  auto rng = seeded_rng();
  struct S {
    int64_t rows, n;
    bool strided;
  };
  for (DType dt : {DType::f32, DType::bf16})
    for (const S& s : {S{1, 40000, false}, S{3, 131071, false}, S{64, 16392, false}, S{2, 20000, true}}) {
      const auto xv = uniform(static_cast<size_t>(s.rows * s.n), rng, -8, 8);
      Tensor x;
      if (s.strided)  // [n, rows] transposed: rows with element stride `rows`
        x = Tensor::from_vector(xv, {s.n, s.rows}, dt).to(gpu).transpose(0, 1);
      else
        x = Tensor::from_vector(xv, {s.rows, s.n}, dt).to(gpu);
      const auto xr = to_doubles(x.contiguous());
      std::vector<double> ref(xr.size());
      for (int64_t r = 0; r < s.rows; ++r) {
        double mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < s.n; ++i) mx = std::max(mx, xr[static_cast<size_t>(r * s.n + i)]);
        for (int64_t i = 0; i < s.n; ++i) sum += std::exp(xr[static_cast<size_t>(r * s.n + i)] - mx);
        for (int64_t i = 0; i < s.n; ++i)
          ref[static_cast<size_t>(r * s.n + i)] = std::exp(xr[static_cast<size_t>(r * s.n + i)] - mx) / sum;
      }
      const double rel = dt == DType::f32 ? 5e-5 : 1.0 / 128;  // f32: sums of ~1e5 terms in another order
      auto run = [&](const ft::Config& c) {
        ft::ForceConfig force("softmax", c);
        Tensor y = ops::full({s.rows, s.n}, NAN, dt, gpu);
        ops::softmax(x, -1, y);
        return to_doubles(y);
      };
      const auto def = run(ft::Config{});
      const int64_t es = static_cast<int64_t>(element_size(dt));
      const auto space = fam.space(0, ft::Ints{es, s.rows, s.n});
      ASSERT_GE(space.size(), 2u);
      for (const ft::Config& c : space) {
        const auto got = run(c);
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_TRUE(std::fabs(got[i] - ref[i]) <= rel * ref[i] + 1e-9)
              << dtype_name(dt) << " rows=" << s.rows << " n=" << s.n << (s.strided ? " strided" : "") << " config "
              << c[0] << "," << c[1] << " element " << i << ": " << got[i] << " vs reference " << ref[i];
          ASSERT_TRUE(std::fabs(got[i] - def[i]) <= rel * ref[i] + 1e-9) << "vs heuristic, element " << i;
        }
      }
    }
}

// The table launches use on device 0: the shipped one of its arch (valid) or none.
TEST(CudaTuning, ActiveTable) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const ft::Tunables* t = ft::tunables(static_cast<uint16_t>(cuda_id()));
  const std::string arch = t->arch(0);
  EXPECT_EQ(arch.rfind("sm_", 0), 0u) << arch;
  const ft::Table* tab = t->active_table(0);
  if (tab) {
    EXPECT_EQ(tab->arch(), arch);
  }
}
