#include "harness.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace flagos::test {

uint64_t base_seed() {
  static const uint64_t seed = [] {
    uint64_t s;
    if (const char* e = std::getenv("FLAGOS_TEST_SEED")) {
      s = std::strtoull(e, nullptr, 10);
    } else {
      s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) % 1000000007ull;
    }
    std::printf("[flagos] test seed %llu (reproduce with FLAGOS_TEST_SEED=%llu)\n", static_cast<unsigned long long>(s),
                static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

std::mt19937_64 rng_for_current_test() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "none";
  uint64_t h = 1469598103934665603ull;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return std::mt19937_64(base_seed() ^ h);
}

std::vector<Device> test_devices() {
  std::vector<Device> out;
  const char* env = std::getenv("FLAGOS_TEST_BACKENDS");
  for (int b = 0; b < backend_count(); ++b) {
    Backend& be = backend(static_cast<uint16_t>(b));
    if (be.device_count() == 0) continue;
    if (env) {
      const std::string list = std::string(",") + env + ",";
      if (list.find("," + std::string(be.name()) + ",") == std::string::npos) continue;
    }
    out.push_back(Device{static_cast<uint16_t>(b), 0});
  }
  return out;
}

std::string device_tag(Device d) { return std::string(backend(d.backend).name()); }

std::string layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contig";
    case Layout::transposed: return "transposed";
    case Layout::strided: return "strided";
    case Layout::broadcast: return "bcast";
  }
  return "?";
}

double round_to(double v, DType dtype) {
  alignas(8) unsigned char buf[8];
  store_from_double(buf, dtype, v);
  return load_as_double(buf, dtype);
}

static void fill_random(Tensor& h, std::mt19937_64& rng, Range r) {
  std::uniform_real_distribution<double> u(r.lo, r.hi);
  const size_t es = element_size(h.dtype());
  char* p = static_cast<char*>(h.data());
  for (int64_t i = 0; i < h.numel(); ++i) {
    double v = u(rng);
    if (!is_float(h.dtype())) v = h.dtype() == DType::boolean ? (v > (r.lo + r.hi) / 2 ? 1 : 0) : std::floor(v);
    store_from_double(p + static_cast<size_t>(i) * es, h.dtype(), v);
  }
}

Tensor make_input(const Shape& shape, DType dtype, Device dev, std::mt19937_64& rng, Range r, Layout layout) {
  switch (layout) {
    case Layout::contiguous: {
      Tensor h = Tensor::empty(shape, dtype);
      fill_random(h, rng, r);
      return h.to(dev);
    }
    case Layout::transposed: {
      if (shape.size() < 2) return make_input(shape, dtype, dev, rng, r, Layout::strided);
      Shape s = shape;
      std::swap(s[s.size() - 1], s[s.size() - 2]);
      return make_input(s, dtype, dev, rng, r, Layout::contiguous).transpose(-1, -2);
    }
    case Layout::strided: {
      Shape big = shape;
      for (int i = 0; i < big.size(); ++i) big[i] = shape[i] * 2 + 1;
      Tensor t = make_input(big, dtype, dev, rng, r, Layout::contiguous);
      for (int i = 0; i < shape.size(); ++i) t = t.slice(i, 1, 1 + 2 * shape[i], 2);
      return t;
    }
    case Layout::broadcast: {
      Shape small = shape;
      for (int i = 0; i < small.size(); i += 2)
        if (small[i] > 1) small[i] = 1;
      return make_input(small, dtype, dev, rng, r, Layout::contiguous).expand(shape);
    }
  }
  return {};
}

Tensor with_specials(const Tensor& t, std::mt19937_64& rng, double fraction) {
  if (!is_float(t.dtype())) return t;
  Tensor h = t.to(Device::cpu()).contiguous().clone();
  std::uniform_real_distribution<double> u(0, 1);
  const double vals[3] = {INFINITY, -INFINITY, NAN};
  const size_t es = element_size(h.dtype());
  for (int64_t i = 0; i < h.numel(); ++i)
    if (u(rng) < fraction)
      store_from_double(static_cast<char*>(h.data()) + static_cast<size_t>(i) * es, h.dtype(), vals[rng() % 3]);
  return h.to(t.device());
}

std::vector<double> to_f64(const Tensor& t) {
  if (is_quant(t.dtype())) return ops::dequantize(t, DType::f32).to_vector<double>();
  return t.to_vector<double>();
}

std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(static_cast<size_t>(shape.size()));
  for (int i = shape.size() - 1; i >= 0; --i) {
    idx[static_cast<size_t>(i)] = shape[i] ? flat % shape[i] : 0;
    flat = shape[i] ? flat / shape[i] : 0;
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t f = 0;
  for (int i = 0; i < shape.size(); ++i) f = f * shape[i] + idx[static_cast<size_t>(i)];
  return f;
}

int64_t broadcast_index(const std::vector<int64_t>& out_idx, const Shape& in_shape) {
  const int off = static_cast<int>(out_idx.size()) - in_shape.size();
  int64_t f = 0;
  for (int i = 0; i < in_shape.size(); ++i) {
    const int64_t c = in_shape[i] == 1 ? 0 : out_idx[static_cast<size_t>(i + off)];
    f = f * in_shape[i] + c;
  }
  return f;
}

Tensor poisoned(const Shape& shape, DType dtype, Device dev) {
  Tensor h = Tensor::empty(shape, dtype);
  if (is_float(dtype)) {
    const size_t es = element_size(dtype);
    for (int64_t i = 0; i < h.numel(); ++i)
      store_from_double(static_cast<char*>(h.data()) + static_cast<size_t>(i) * es, dtype, NAN);
  } else if (h.nbytes()) {
    std::memset(h.data(), 0x5a, h.nbytes());
  }
  return h.to(dev);
}

double default_tol(DType t) {
  switch (t) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-5;
    case DType::f16: return 1e-3;
    case DType::bf16: return 1e-2;
    default: return 0.0;
  }
}

static std::string seed_note(const std::string& what) {
  std::ostringstream os;
  os << what << " [seed " << base_seed() << ", reproduce with FLAGOS_TEST_SEED=" << base_seed() << "]";
  return os.str();
}

void expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what) {
  if (!is_float(got.dtype())) return expect_exact(got, ref, what);
  const std::vector<double> g = to_f64(got);
  ASSERT_EQ(g.size(), ref.size()) << seed_note(what);
  double num = 0, den = 0;
  int64_t bad_nan = 0, bad_inf = 0, first_bad = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const double a = g[i], r = ref[i];
    if (std::isnan(r) || std::isnan(a)) {
      if (std::isnan(r) != std::isnan(a)) {
        ++bad_nan;
        if (first_bad < 0) first_bad = static_cast<int64_t>(i);
      }
      continue;
    }
    if (std::isinf(r) || std::isinf(a)) {
      if (a != r) {
        ++bad_inf;
        if (first_bad < 0) first_bad = static_cast<int64_t>(i);
      }
      continue;
    }
    num += (a - r) * (a - r);
    den += r * r;
  }
  const double err = std::sqrt(num / std::max(den, 1e-300));
  const double rel = den == 0 ? std::sqrt(num) : err;
  EXPECT_EQ(bad_nan, 0) << seed_note(what) << ": NaN mismatch, first at flat index " << first_bad << " got "
                        << (first_bad >= 0 ? g[static_cast<size_t>(first_bad)] : 0) << " expected "
                        << (first_bad >= 0 ? ref[static_cast<size_t>(first_bad)] : 0);
  EXPECT_EQ(bad_inf, 0) << seed_note(what) << ": inf mismatch, first at flat index " << first_bad << " got "
                        << (first_bad >= 0 ? g[static_cast<size_t>(first_bad)] : 0) << " expected "
                        << (first_bad >= 0 ? ref[static_cast<size_t>(first_bad)] : 0);
  if (!(rel <= tol)) {
    // locate the worst element for the message
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < g.size(); ++i)
      if (std::isfinite(ref[i]) && std::abs(g[i] - ref[i]) > wd) {
        wd = std::abs(g[i] - ref[i]);
        worst = i;
      }
    ADD_FAILURE() << seed_note(what) << ": relative L2 error " << rel << " > tol " << tol << "; worst at flat index "
                  << worst << ": got " << g[worst] << " expected " << ref[worst];
  }
}

void expect_exact(const Tensor& got, const std::vector<double>& ref, const std::string& what) {
  const std::vector<double> g = to_f64(got);
  ASSERT_EQ(g.size(), ref.size()) << seed_note(what);
  for (size_t i = 0; i < g.size(); ++i) {
    const bool same = g[i] == ref[i] || (std::isnan(g[i]) && std::isnan(ref[i]));
    if (!same) {
      ADD_FAILURE() << seed_note(what) << ": mismatch at flat index " << i << ": got " << g[i] << " expected "
                    << ref[i];
      return;
    }
  }
}

std::vector<Shape> elementwise_shapes(bool include_large) {
  std::vector<Shape> v = {Shape{}, Shape{0}, Shape{1}, Shape{7}, Shape{33}, Shape{3, 5}, Shape{2, 0, 3},
                          Shape{4, 1, 9}, Shape{17, 65}, Shape{2, 3, 4, 5}};
  if (include_large) v.push_back(Shape{1000003});
  return v;
}

std::string sanitize(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

}  // namespace flagos::test
