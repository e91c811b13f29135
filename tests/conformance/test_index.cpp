// Conformance: gather, scatter (replace/add), index_select, index_add, cat, split, stack, repeat,
// pad, tril/triu, one_hot against float64 references built from the actual inputs. Data-movement
// ops must be exact for every dtype and layout; index_add / scatter-add compare with tolerances.
#include <cmath>
#include <cstring>
#include <functional>
#include <sstream>

#include "harness.h"

namespace flagos::test {
namespace {

const DType kPlain[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                        DType::u8,  DType::i16, DType::i32, DType::i64, DType::boolean};
const DType kArith[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                        DType::u8,  DType::i16, DType::i32, DType::i64};
const Layout kLayouts[] = {Layout::contiguous, Layout::transposed, Layout::strided, Layout::broadcast};

Range range_for(DType t, bool small = false) {
  if (t == DType::u8) return small ? Range{0, 8} : Range{0, 120};
  if (is_int(t)) return small ? Range{-8, 8} : Range{-100, 100};
  return {};
}

std::string dn(DType t) { return std::string(dtype_name(t)); }
template <typename T>
std::string shp(const T& s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

Tensor rand_index(const Shape& s, int64_t hi, DType it, Device dev, std::mt19937_64& rng, Layout l = Layout::contiguous) {
  return make_input(s, it, dev, rng, Range{0, static_cast<double>(hi)}, l);
}

double wrap_int(double v, DType t) {
  const int64_t i = static_cast<int64_t>(v);
  switch (t) {
    case DType::i8: return static_cast<int8_t>(i);
    case DType::u8: return static_cast<uint8_t>(i);
    case DType::i16: return static_cast<int16_t>(i);
    case DType::i32: return static_cast<int32_t>(i);
    default: return static_cast<double>(i);
  }
}

// These ops return new tensors (no `out` to poison): instead, leave a freed block full of 0xff
// (NaN for floats) where the allocator will likely place the result, so unwritten elements show.
void dirty_heap(const Shape& s, DType t) {
  const int64_t n = s.numel() * static_cast<int64_t>(element_size(t));
  if (n == 0) return;
  Tensor junk = Tensor::empty({n}, DType::u8);
  std::memset(junk.data(), 0xff, static_cast<size_t>(n));
}

using Coord = std::vector<int64_t>;

// A test case is a name and a closure; one parameterized suite runs them all.
struct Case {
  std::string name;
  std::function<void()> run;
};
std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

class Index : public ::testing::TestWithParam<Case> {};
TEST_P(Index, MatchesReference) { GetParam().run(); }

// ---------------------------------------------------------------- gather / scatter

void gather_case(Device dev, DType t, DType it, Shape xs, int64_t dim, Shape is, Layout xl, Layout il) {
  auto rng = rng_for_current_test();
  Tensor x = make_input(xs, t, dev, rng, range_for(t), xl);
  const int d = static_cast<int>(dim < 0 ? dim + xs.size() : dim);
  Tensor idx = rand_index(is, xs.size() ? xs[d] : 1, it, dev, rng, il);
  dirty_heap(is, t);
  Tensor out = ops::gather(x, dim, idx);
  ASSERT_EQ(out.shape(), is);
  ASSERT_EQ(out.dtype(), t);
  const auto xv = to_f64(x), iv = to_f64(idx);
  std::vector<double> ref(static_cast<size_t>(out.numel()));
  for (int64_t f = 0; f < out.numel(); ++f) {
    Coord c = unravel(f, is);
    if (!c.empty()) c[static_cast<size_t>(d)] = static_cast<int64_t>(iv[static_cast<size_t>(f)]);
    ref[static_cast<size_t>(f)] = xv[static_cast<size_t>(ravel(c, xs))];
  }
  expect_exact(out, ref, "gather");
}

void scatter_case(Device dev, DType t, DType it, Shape xs, int64_t dim, Shape is, Shape ss, bool add, Layout l) {
  auto rng = rng_for_current_test();
  Tensor x = make_input(xs, t, dev, rng, range_for(t, add), l);
  Tensor src = make_input(ss, t, dev, rng, range_for(t, add), l);
  const int d = static_cast<int>(dim < 0 ? dim + xs.size() : dim);
  Tensor idx = rand_index(is, xs.size() ? xs[d] : 1, it, dev, rng);  // few distinct targets: many repeated indices
  Tensor out = ops::scatter(x, dim, idx, src, add);
  ASSERT_EQ(out.shape(), xs);
  std::vector<double> ref = to_f64(x);
  const auto sv = to_f64(src), iv = to_f64(idx);
  // Row-major order visits writes to one element in increasing position along `dim`: the last wins.
  for (int64_t f = 0; f < idx.numel(); ++f) {
    Coord c = unravel(f, is);
    const double v = sv[static_cast<size_t>(ravel(c, ss))];
    if (!c.empty()) c[static_cast<size_t>(d)] = static_cast<int64_t>(iv[static_cast<size_t>(f)]);
    double& r = ref[static_cast<size_t>(ravel(c, xs))];
    if (!add) {
      r = v;
    } else if (t == DType::boolean) {
      r = (r != 0 || v != 0) ? 1 : 0;
    } else {
      r += v;
    }
  }
  if (add && is_float(t)) {
    expect_close(out, ref, 2 * default_tol(t), "scatter add");
  } else {
    expect_exact(out, ref, add ? "scatter add" : "scatter");
  }
}

// ---------------------------------------------------------------- index_select / index_add

void index_select_case(Device dev, DType t, DType it, Shape xs, int64_t dim, int64_t n, Layout l) {
  auto rng = rng_for_current_test();
  Tensor x = make_input(xs, t, dev, rng, range_for(t), l);
  const int d = static_cast<int>(dim < 0 ? dim + xs.size() : dim);
  Tensor idx = rand_index({n}, xs[d], it, dev, rng, l == Layout::strided ? Layout::strided : Layout::contiguous);
  Shape os = xs;
  os[d] = n;
  dirty_heap(os, t);
  Tensor out = ops::index_select(x, dim, idx);
  ASSERT_EQ(out.shape(), os);
  const auto xv = to_f64(x), iv = to_f64(idx);
  std::vector<double> ref(static_cast<size_t>(out.numel()));
  for (int64_t f = 0; f < out.numel(); ++f) {
    Coord c = unravel(f, os);
    c[static_cast<size_t>(d)] = static_cast<int64_t>(iv[static_cast<size_t>(c[static_cast<size_t>(d)])]);
    ref[static_cast<size_t>(f)] = xv[static_cast<size_t>(ravel(c, xs))];
  }
  expect_exact(out, ref, "index_select");
}

void index_add_case(Device dev, DType t, DType it, Shape xs, int64_t dim, int64_t n, double alpha, Layout l) {
  auto rng = rng_for_current_test();
  const int d = static_cast<int>(dim < 0 ? dim + xs.size() : dim);
  Shape ss = xs;
  ss[d] = n;
  Tensor x = make_input(xs, t, dev, rng, range_for(t, true), l);
  Tensor src = make_input(ss, t, dev, rng, range_for(t, true), l);
  // Half of the ids point at row 0 so repeated indices accumulate.
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) ids[static_cast<size_t>(k)] = k % 2 ? 0 : static_cast<int64_t>(rng() % static_cast<uint64_t>(xs[d]));
  Tensor idx = Tensor::from_vector(ids, {n}, it).to(dev);
  Tensor out = ops::index_add(x, dim, idx, src, alpha);
  ASSERT_EQ(out.shape(), xs);
  std::vector<double> ref = to_f64(x);
  const auto sv = to_f64(src);
  for (int64_t f = 0; f < src.numel(); ++f) {
    Coord c = unravel(f, ss);
    c[static_cast<size_t>(d)] = ids[static_cast<size_t>(c[static_cast<size_t>(d)])];
    ref[static_cast<size_t>(ravel(c, xs))] += alpha * sv[static_cast<size_t>(f)];
  }
  if (is_int(t))  // integers wrap like the kernel
    for (double& r : ref) r = wrap_int(r, t);
  if (is_float(t)) {
    expect_close(out, ref, 2 * default_tol(t), "index_add");
  } else {
    expect_exact(out, ref, "index_add");
  }
}

// ---------------------------------------------------------------- cat / stack / split

void cat_case(Device dev, std::vector<std::pair<Shape, DType>> ins, int64_t dim, Layout l) {
  auto rng = rng_for_current_test();
  std::vector<Tensor> xs;
  DType dt = ins[0].second;
  for (auto& [s, t] : ins) {
    xs.push_back(make_input(s, t, dev, rng, range_for(t), s.size() >= 2 ? l : Layout::contiguous));
    dt = promote_types(dt, t);
  }
  {
    Shape os = xs.back().shape();
    if (os.size()) os[0] *= static_cast<int64_t>(xs.size());
    dirty_heap(os, dt);
  }
  Tensor out = ops::cat(xs, dim);
  ASSERT_EQ(out.dtype(), dt);
  const Tensor* ref_t = nullptr;
  for (const Tensor& t : xs)
    if (!(t.dim() == 1 && t.size(0) == 0)) {
      ref_t = &t;
      break;
    }
  if (!ref_t) {
    EXPECT_EQ(out.shape(), Shape({0}));
    return;
  }
  const int d = static_cast<int>(dim < 0 ? dim + ref_t->dim() : dim);
  std::vector<double> ref(static_cast<size_t>(out.numel()), NAN);
  int64_t off = 0;
  for (const Tensor& t : xs) {
    if (t.dim() == 1 && t.size(0) == 0) continue;
    const auto v = to_f64(t);
    for (int64_t f = 0; f < t.numel(); ++f) {
      Coord c = unravel(f, t.shape());
      c[static_cast<size_t>(d)] += off;
      ref[static_cast<size_t>(ravel(c, out.shape()))] = round_to(v[static_cast<size_t>(f)], dt);
    }
    off += t.size(d);
  }
  ASSERT_EQ(out.size(d), off);
  expect_exact(out, ref, "cat");
}

void stack_case(Device dev, DType t, Shape s, int64_t dim, int count, Layout l) {
  auto rng = rng_for_current_test();
  std::vector<Tensor> xs;
  for (int i = 0; i < count; ++i) xs.push_back(make_input(s, t, dev, rng, range_for(t), l));
  Tensor out = ops::stack(xs, dim);
  const int d = static_cast<int>(dim < 0 ? dim + s.size() + 1 : dim);
  Shape os = s;
  os.insert(d, count);
  ASSERT_EQ(out.shape(), os);
  std::vector<double> ref(static_cast<size_t>(out.numel()));
  for (int64_t f = 0; f < out.numel(); ++f) {
    Coord c = unravel(f, os);
    const int64_t which = c[static_cast<size_t>(d)];
    c.erase(c.begin() + d);
    ref[static_cast<size_t>(f)] = to_f64(xs[static_cast<size_t>(which)])[static_cast<size_t>(ravel(c, s))];
  }
  expect_exact(out, ref, "stack");
}

// ---------------------------------------------------------------- repeat / pad / tri / one_hot

void repeat_case(Device dev, DType t, Shape xs, Dims reps, Layout l) {
  auto rng = rng_for_current_test();
  Tensor x = make_input(xs, t, dev, rng, range_for(t), l);
  {
    Shape os = reps;
    for (int i = 0; i < xs.size(); ++i) os[reps.size() - xs.size() + i] *= xs[i];
    dirty_heap(os, t);
  }
  Tensor out = ops::repeat(x, reps);
  const int lead = reps.size() - xs.size();
  Shape os = reps;
  for (int i = 0; i < xs.size(); ++i) os[lead + i] *= xs[i];
  ASSERT_EQ(out.shape(), os);
  const auto xv = to_f64(x);
  std::vector<double> ref(static_cast<size_t>(out.numel()));
  for (int64_t f = 0; f < out.numel(); ++f) {
    const Coord c = unravel(f, os);
    Coord xc(static_cast<size_t>(xs.size()));
    for (int i = 0; i < xs.size(); ++i) xc[static_cast<size_t>(i)] = c[static_cast<size_t>(lead + i)] % xs[i];
    ref[static_cast<size_t>(f)] = xv[static_cast<size_t>(ravel(xc, xs))];
  }
  expect_exact(out, ref, "repeat");
}

void pad_case(Device dev, DType t, Shape xs, std::vector<int64_t> pads, double value, Layout l) {
  auto rng = rng_for_current_test();
  Tensor x = make_input(xs, t, dev, rng, range_for(t), l);
  Shape os = xs;
  std::vector<int64_t> before(static_cast<size_t>(xs.size()), 0);
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    const int d = xs.size() - 1 - static_cast<int>(k);
    os[d] += pads[2 * k] + pads[2 * k + 1];
    before[static_cast<size_t>(d)] = pads[2 * k];
  }
  dirty_heap(os, t);
  Tensor out = ops::pad(x, pads, value);
  ASSERT_EQ(out.shape(), os);
  const auto xv = to_f64(x);
  std::vector<double> ref(static_cast<size_t>(out.numel()));
  for (int64_t f = 0; f < out.numel(); ++f) {
    Coord c = unravel(f, os);
    bool inside = true;
    for (int i = 0; i < xs.size(); ++i) {
      c[static_cast<size_t>(i)] -= before[static_cast<size_t>(i)];
      if (c[static_cast<size_t>(i)] < 0 || c[static_cast<size_t>(i)] >= xs[i]) inside = false;
    }
    ref[static_cast<size_t>(f)] = inside ? xv[static_cast<size_t>(ravel(c, xs))] : round_to(value, t);
  }
  expect_exact(out, ref, "pad");
}

void tri_case(Device dev, DType t, Shape xs, int64_t diag, bool upper, Layout l) {
  auto rng = rng_for_current_test();
  Tensor x = make_input(xs, t, dev, rng, range_for(t), l);
  dirty_heap(xs, t);
  Tensor out = upper ? ops::triu(x, diag) : ops::tril(x, diag);
  ASSERT_EQ(out.shape(), xs);
  const auto xv = to_f64(x);
  std::vector<double> ref(xv.size());
  const size_t n = static_cast<size_t>(xs.size());
  for (int64_t f = 0; f < x.numel(); ++f) {
    const Coord c = unravel(f, xs);
    const int64_t k = c[n - 1] - c[n - 2];
    const bool keep = upper ? k >= diag : k <= diag;
    ref[static_cast<size_t>(f)] = keep ? xv[static_cast<size_t>(f)] : 0.0;
  }
  expect_exact(out, ref, upper ? "triu" : "tril");
}

void one_hot_case(Device dev, DType t, DType it, Shape is, int64_t classes, Layout l) {
  auto rng = rng_for_current_test();
  const int64_t hi = classes < 0 ? 7 : classes;
  Tensor ids = rand_index(is, hi, it, dev, rng, l);
  const auto iv = to_f64(ids);
  int64_t c = classes;
  if (c < 0) c = static_cast<int64_t>(*std::max_element(iv.begin(), iv.end())) + 1;
  Shape os = is;
  os.push_back(c);
  dirty_heap(os, t);
  Tensor out = ops::one_hot(ids, classes, t);
  ASSERT_EQ(out.shape(), os);
  ASSERT_EQ(out.dtype(), t);
  std::vector<double> ref(static_cast<size_t>(out.numel()), 0.0);
  for (size_t k = 0; k < iv.size(); ++k) ref[k * static_cast<size_t>(c) + static_cast<size_t>(iv[k])] = 1.0;
  expect_exact(out, ref, "one_hot");
}

// ---------------------------------------------------------------- the case list

std::vector<Case> all_cases() {
  std::vector<Case> v;
  auto add = [&](std::string name, std::function<void()> f) {
    v.push_back({sanitize(name + "_" + std::to_string(v.size())), std::move(f)});
  };
  for (Device dev : test_devices()) {
    const std::string dv = device_tag(dev) + "_";
    // gather: every dtype; layouts, dims, index wider than x along dim, empty, 0-d
    for (DType t : kPlain)
      add(dv + "gather_" + dn(t), [=] { gather_case(dev, t, DType::i64, {5, 9}, 1, {4, 13}, Layout::contiguous, Layout::contiguous); });
    for (Layout l : kLayouts)
      for (DType it : {DType::i32, DType::i64})
        for (int64_t dim : {0, 1, -1, -3}) {
          add(dv + "gather_f32_" + layout_name(l) + "_" + dn(it) + "_dim" + std::to_string(dim),
              [=] { gather_case(dev, DType::f32, it, {3, 6, 7}, dim, {3, 5, 6}, l, Layout::contiguous); });
          add(dv + "gather_bf16_idx_" + layout_name(l) + "_" + dn(it) + "_dim" + std::to_string(dim),
              [=] { gather_case(dev, DType::bf16, it, {4, 6, 7}, dim, {3, 4, 5}, Layout::contiguous, l); });
        }
    add(dv + "gather_empty", [=] { gather_case(dev, DType::f32, DType::i64, {3, 4}, 1, {3, 0}, Layout::contiguous, Layout::contiguous); });
    add(dv + "gather_0d", [=] { gather_case(dev, DType::i32, DType::i64, {}, 0, {}, Layout::contiguous, Layout::contiguous); });
    add(dv + "gather_large", [=] { gather_case(dev, DType::f32, DType::i32, {64, 4099}, 1, {64, 1031}, Layout::contiguous, Layout::contiguous); });
    add(dv + "gather_large_dim0", [=] { gather_case(dev, DType::f16, DType::i64, {301, 257}, 0, {500, 257}, Layout::transposed, Layout::contiguous); });

    // scatter: replace with repeated indices (deterministic last write), add
    for (DType t : kPlain)
      for (bool a : {false, true})
        add(dv + "scatter_" + dn(t) + (a ? "_add" : ""),
            [=] { scatter_case(dev, t, DType::i64, {6, 5}, 0, {9, 4}, {10, 5}, a, Layout::contiguous); });
    for (Layout l : kLayouts)
      for (int64_t dim : {0, 1, 2, -1})
        for (bool a : {false, true})
          add(dv + "scatter_f32_" + layout_name(l) + "_dim" + std::to_string(dim) + (a ? "_add" : ""),
              [=] { scatter_case(dev, DType::f32, DType::i32, {4, 5, 6}, dim, {3, 4, 5}, {4, 5, 6}, a, l); });
    add(dv + "scatter_wide_index", [=] { scatter_case(dev, DType::f64, DType::i64, {3, 4}, 1, {3, 11}, {3, 12}, true, Layout::contiguous); });
    add(dv + "scatter_empty_index", [=] { scatter_case(dev, DType::f32, DType::i64, {3, 4}, 1, {3, 0}, {3, 2}, false, Layout::contiguous); });
    add(dv + "scatter_0d", [=] { scatter_case(dev, DType::f32, DType::i64, {}, 0, {}, {}, false, Layout::contiguous); });
    add(dv + "scatter_large", [=] { scatter_case(dev, DType::f32, DType::i64, {300, 517}, 0, {600, 517}, {600, 517}, true, Layout::contiguous); });

    // index_select: every dtype; rows (fast path) and strided/transposed (general path)
    for (DType t : kPlain) {
      add(dv + "index_select_rows_" + dn(t), [=] { index_select_case(dev, t, DType::i64, {11, 37}, 0, 20, Layout::contiguous); });
      add(dv + "index_select_cols_" + dn(t), [=] { index_select_case(dev, t, DType::i32, {5, 9}, 1, 12, Layout::contiguous); });
    }
    for (Layout l : kLayouts)
      for (int64_t dim : {0, 1, 2, -2})
        add(dv + "index_select_f32_" + layout_name(l) + "_dim" + std::to_string(dim),
            [=] { index_select_case(dev, DType::f32, DType::i64, {4, 6, 19}, dim, 7, l); });
    add(dv + "index_select_empty_ids", [=] { index_select_case(dev, DType::f32, DType::i64, {4, 6}, 0, 0, Layout::contiguous); });
    add(dv + "index_select_empty_x", [=] { index_select_case(dev, DType::f32, DType::i64, {4, 0}, 0, 3, Layout::contiguous); });
    add(dv + "index_select_table", [=] { index_select_case(dev, DType::bf16, DType::i32, {2000, 384}, 0, 300, Layout::contiguous); });
    add(dv + "index_select_batched_rows", [=] { index_select_case(dev, DType::f32, DType::i64, {3, 50, 33}, 1, 40, Layout::contiguous); });

    // index_add: every arithmetic dtype, repeated indices, alpha
    for (DType t : kArith)
      for (double alpha : {1.0, -2.0})
        add(dv + "index_add_" + dn(t) + "_alpha" + std::to_string(static_cast<int>(alpha)),
            [=] { index_add_case(dev, t, DType::i64, {7, 9}, 0, 12, alpha, Layout::contiguous); });
    for (Layout l : kLayouts)
      for (int64_t dim : {0, 1, -1})
        add(dv + "index_add_f32_" + layout_name(l) + "_dim" + std::to_string(dim),
            [=] { index_add_case(dev, DType::f32, DType::i32, {5, 6, 7}, dim, 9, 0.5, l); });
    add(dv + "index_add_large", [=] { index_add_case(dev, DType::f32, DType::i64, {500, 300}, 0, 1000, 1.0, Layout::contiguous); });
    add(dv + "index_add_empty", [=] { index_add_case(dev, DType::f32, DType::i64, {5, 6}, 0, 0, 1.0, Layout::contiguous); });

    // cat: every dtype, promotion, layouts, dims, empty tensors
    for (DType t : kPlain)
      add(dv + "cat_" + dn(t), [=] { cat_case(dev, {{{3, 5}, t}, {{2, 5}, t}, {{4, 5}, t}}, 0, Layout::contiguous); });
    for (Layout l : kLayouts)
      for (int64_t dim : {0, 1, 2, -1})
        add(dv + "cat_f32_" + layout_name(l) + "_dim" + std::to_string(dim), [=] {
          Shape a{3, 4, 5}, b{3, 4, 5};
          const int d = static_cast<int>(dim < 0 ? dim + 3 : dim);
          b[d] = 2;
          cat_case(dev, {{a, DType::f32}, {b, DType::f32}}, dim, l);
        });
    add(dv + "cat_promote", [=] { cat_case(dev, {{{2, 3}, DType::i32}, {{2, 4}, DType::f16}, {{2, 1}, DType::boolean}}, 1, Layout::contiguous); });
    add(dv + "cat_promote_bf16_f16", [=] { cat_case(dev, {{{2, 3}, DType::bf16}, {{1, 3}, DType::f16}}, 0, Layout::transposed); });
    add(dv + "cat_with_empty", [=] { cat_case(dev, {{{2, 0}, DType::f32}, {{2, 3}, DType::f32}, {{2, 0}, DType::f32}}, 1, Layout::contiguous); });
    add(dv + "cat_skip_1d_empty", [=] { cat_case(dev, {{{0}, DType::f32}, {{2, 3}, DType::f32}, {{0}, DType::i64}}, 0, Layout::contiguous); });
    add(dv + "cat_all_1d_empty", [=] { cat_case(dev, {{{0}, DType::f32}, {{0}, DType::f32}}, 0, Layout::contiguous); });
    add(dv + "cat_single", [=] { cat_case(dev, {{{3, 7}, DType::i16}}, -1, Layout::strided); });
    add(dv + "cat_large", [=] { cat_case(dev, {{{512, 300}, DType::f32}, {{512, 301}, DType::f32}}, 1, Layout::contiguous); });

    // stack
    for (int64_t dim : {0, 1, 2, -1, -3})
      add(dv + "stack_dim" + std::to_string(dim), [=] { stack_case(dev, DType::f32, {3, 4}, dim, 3, Layout::transposed); });
    add(dv + "stack_1d_u8", [=] { stack_case(dev, DType::u8, {5}, 0, 4, Layout::strided); });
    add(dv + "stack_0d", [=] { stack_case(dev, DType::i64, {}, 0, 3, Layout::contiguous); });
    add(dv + "stack_empty", [=] { stack_case(dev, DType::f16, {0, 3}, 1, 2, Layout::contiguous); });

    // repeat: every dtype; leading dims; layouts; zero repeats
    for (DType t : kPlain)
      add(dv + "repeat_" + dn(t), [=] { repeat_case(dev, t, {3, 5}, {2, 3}, Layout::contiguous); });
    for (Layout l : kLayouts) {
      add(dv + "repeat_lead_" + layout_name(l), [=] { repeat_case(dev, DType::f32, {3, 4}, {2, 1, 3}, l); });
      add(dv + "repeat_3d_" + layout_name(l), [=] { repeat_case(dev, DType::i16, {2, 3, 5}, {1, 2, 1, 3}, l); });
    }
    add(dv + "repeat_zero", [=] { repeat_case(dev, DType::f32, {3, 4}, {0, 2}, Layout::contiguous); });
    add(dv + "repeat_empty", [=] { repeat_case(dev, DType::f32, {3, 0}, {2, 2}, Layout::contiguous); });
    add(dv + "repeat_0d", [=] { repeat_case(dev, DType::f64, {}, {4}, Layout::contiguous); });
    add(dv + "repeat_0d_none", [=] { repeat_case(dev, DType::f64, {}, {}, Layout::contiguous); });
    add(dv + "repeat_1d", [=] { repeat_case(dev, DType::bf16, {7}, {5}, Layout::strided); });
    add(dv + "repeat_large", [=] { repeat_case(dev, DType::f32, {200, 301}, {3, 2}, Layout::contiguous); });

    // pad: every dtype; positive, negative (crop) and mixed pads; layouts
    for (DType t : kPlain)
      add(dv + "pad_" + dn(t), [=] { pad_case(dev, t, {3, 5}, {1, 2, 2, 0}, 1.0, Layout::contiguous); });
    for (Layout l : kLayouts) {
      add(dv + "pad_last_" + layout_name(l), [=] { pad_case(dev, DType::f32, {4, 6, 7}, {3, 1}, -1.5, l); });
      add(dv + "pad_crop_" + layout_name(l), [=] { pad_case(dev, DType::f32, {4, 6, 7}, {-2, 1, 1, -3, 0, 2}, 2.0, l); });
    }
    add(dv + "pad_crop_all", [=] { pad_case(dev, DType::i32, {3, 4}, {-3, 0}, 7.0, Layout::contiguous); });
    add(dv + "pad_crop_past", [=] { pad_case(dev, DType::f32, {3, 4}, {-6, 3}, 5.0, Layout::contiguous); });
    add(dv + "pad_to_empty", [=] { pad_case(dev, DType::f32, {3, 4}, {-2, -2}, 0.0, Layout::contiguous); });
    add(dv + "pad_empty_input", [=] { pad_case(dev, DType::f16, {0, 4}, {1, 1, 2, 1}, 3.0, Layout::contiguous); });
    add(dv + "pad_none", [=] { pad_case(dev, DType::u8, {3, 4}, {}, 0.0, Layout::transposed); });
    add(dv + "pad_1d", [=] { pad_case(dev, DType::f64, {9}, {2, 5}, -4.0, Layout::strided); });
    add(dv + "pad_large", [=] { pad_case(dev, DType::f32, {300, 400}, {1, 2, 3, 4}, 0.0, Layout::contiguous); });

    // tril / triu: every dtype; diagonals; batched; layouts
    for (DType t : kPlain)
      for (bool up : {false, true})
        add(dv + (up ? "triu_" : "tril_") + dn(t), [=] { tri_case(dev, t, {5, 7}, 0, up, Layout::contiguous); });
    for (Layout l : kLayouts)
      for (int64_t diag : {-3, -1, 0, 2, 9})
        for (bool up : {false, true})
          add(dv + (up ? "triu_" : "tril_") + layout_name(l) + "_diag" + std::to_string(diag),
              [=] { tri_case(dev, DType::f32, {2, 3, 6, 5}, diag, up, l); });
    add(dv + "tril_empty", [=] { tri_case(dev, DType::f32, {2, 0, 3}, 0, false, Layout::contiguous); });
    add(dv + "triu_large", [=] { tri_case(dev, DType::bf16, {513, 700}, 1, true, Layout::contiguous); });

    // one_hot
    for (DType t : kPlain)
      add(dv + "one_hot_" + dn(t), [=] { one_hot_case(dev, t, DType::i64, {3, 4}, 6, Layout::contiguous); });
    for (Layout l : kLayouts)
      add(dv + "one_hot_i32ids_" + layout_name(l), [=] { one_hot_case(dev, DType::f32, DType::i32, {3, 5}, 9, l); });
    add(dv + "one_hot_infer", [=] { one_hot_case(dev, DType::i64, DType::i64, {10}, -1, Layout::contiguous); });
    add(dv + "one_hot_0d", [=] { one_hot_case(dev, DType::i64, DType::i32, {}, 4, Layout::contiguous); });
    add(dv + "one_hot_empty", [=] { one_hot_case(dev, DType::f16, DType::i64, {0, 3}, 4, Layout::contiguous); });
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, Index, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// ---------------------------------------------------------------- split (views) and determinism

TEST(IndexSplit, ViewsBySizeAndList) {
  for (Device dev : test_devices()) {
    auto rng = rng_for_current_test();
    Tensor x = make_input({7, 10}, DType::f32, dev, rng);
    const auto xv = to_f64(x);
    auto parts = ops::split(x, 3, -1);
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_EQ(parts[3].shape(), Shape({7, 1}));
    int64_t off = 0;
    for (const Tensor& p : parts) {
      EXPECT_EQ(p.storage(), x.storage()) << "split must return views";
      const auto pv = to_f64(p);
      for (int64_t f = 0; f < p.numel(); ++f) {
        const Coord c = unravel(f, p.shape());
        EXPECT_EQ(pv[static_cast<size_t>(f)], xv[static_cast<size_t>(c[0] * 10 + c[1] + off)]);
      }
      off += p.size(1);
    }
    auto rows = ops::split(x, std::vector<int64_t>{2, 0, 5}, 0);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[1].shape(), Shape({0, 10}));
    EXPECT_EQ(to_f64(rows[2])[0], xv[20]);
    EXPECT_EQ(ops::split(x, 100, 0).size(), 1u);
    EXPECT_EQ(ops::split(ops::zeros({0, 3}), 2, 0).size(), 1u);
  }
}

TEST(IndexScatter, ReplaceIsDeterministic) {
  // Many writes to one element: the one at the largest position along dim wins, every run.
  for (Device dev : test_devices()) {
    const int64_t n = 100000;
    Tensor idx = ops::zeros({n}, DType::i64, dev);
    Tensor src = ops::arange(0, static_cast<double>(n), 1, DType::f32, dev);
    for (int r = 0; r < 3; ++r) {
      Tensor out = ops::scatter(ops::zeros({4}, DType::f32, dev), 0, idx, src);
      EXPECT_EQ(to_f64(out)[0], static_cast<double>(n - 1));
    }
  }
}

// ---------------------------------------------------------------- errors name the op and the bad index

void expect_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "expected InvalidArgument mentioning " << *parts.begin();
  } catch (const InvalidArgument& e) {
    for (const char* p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(IndexErrors, BadIndicesAreNamed) {
  for (Device dev : test_devices()) {
    Tensor x = ops::zeros({4, 5}, DType::f32, dev);
    Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 2, 7}, {1, 3}, DType::i64).to(dev);
    expect_error([&] { ops::gather(x, 1, bad); }, {"gather", "index 7", "size 5"});
    Tensor neg = Tensor::from_vector(std::vector<int32_t>{1, -1}, {2}, DType::i32).to(dev);
    expect_error([&] { ops::index_select(x, 0, neg); }, {"index_select", "index -1", "size 4"});
    expect_error([&] { ops::index_add(x, 0, neg, ops::zeros({2, 5}, DType::f32, dev)); }, {"index_add", "-1", "size 4"});
    Tensor big = Tensor::from_vector(std::vector<int64_t>{4}, {1, 1}, DType::i64).to(dev);
    expect_error([&] { ops::scatter(x, 0, big, x); }, {"scatter", "index 4", "size 4"});
    Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 12, 3}, {3}, DType::i64).to(dev);
    expect_error([&] { ops::one_hot(ids, 10); }, {"one_hot", "12", "10"});
    expect_error([&] { ops::gather(x, 2, bad); }, {"gather", "dim 2"});
    expect_error([&] { ops::cat({x, ops::zeros({4, 6}, DType::f32, dev)}, 0); }, {"cat", "[4, 6]"});
    expect_error([&] { ops::pad(x, {1, 2, 3}); }, {"pad"});
    expect_error([&] { ops::tril(ops::zeros({3}, DType::f32, dev)); }, {"tril"});
  }
}

}  // namespace
}  // namespace flagos::test
