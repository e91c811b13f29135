// Reduction and scan kernels. Reductions see in[0] = [outer, inner] (any strides) and write
// out[0] (+ out[1] i64 indices for max/min) = [outer] (any stride); see src/ops/reduce.cpp.
//
// Each reduction is a small "reducer": a combinable State, chunk() folding up to kChunk
// values (loaded into the compute type: f32 for f32/f16/bf16, f64 for f64, i64 for integers
// and bool), combine() joining an earlier and a later state, and finish() storing the result.
// Float sums use 16 f32 lanes within a chunk and an f64 total across chunks (blocked
// summation), so 1e7-element f32 sums stay far inside the f32 tolerance. Rows run in parallel;
// when there are few long rows, each row is also split into segments that run in parallel and
// are combined in order (so first-index tie breaking still holds).
// Scans (cumsum/cumprod) see [rows, n] in and out and run rows in parallel, accumulating in
// f64 for float types and i64 for integers.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/row_simd.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

constexpr int64_t kChunk = 1024;
constexpr int kLanes = 16;

template <typename S>
using Compute = std::conditional_t<std::is_same_v<S, double>, double,
                                   std::conditional_t<std::is_same_v<S, float> || std::is_same_v<S, f16> ||
                                                          std::is_same_v<S, bf16>,
                                                      float, int64_t>>;

// Loads n values of a row starting at element j into the compute type; returns a pointer to
// them (the row itself when it already is contiguous compute-typed data).
template <typename S>
const Compute<S>* load_chunk(const char* row, int64_t stride, int64_t j, int64_t n, Compute<S>* buf) {
  using C = Compute<S>;
  const char* p = row + j * stride;
  if (stride == static_cast<int64_t>(sizeof(S))) {
    if constexpr (std::is_same_v<S, C>) {
      return reinterpret_cast<const C*>(p);
    } else if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
      cvt_to_f32(reinterpret_cast<const S*>(p), buf, n);
      return buf;
    }
  }
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<C>(Io<S>::load(p + i * stride));
  return buf;
}

// o[i] = exp(x[i] - sub) for a block. The generic exp_f32 does not auto-vectorize in this
// loop (GCC keeps its selects as branches), so AVX2 gets an explicit version: same Cephes
// polynomial, arguments clamped to the normal range, results below it flushed to 0 (also
// exp(-inf) = 0), NaN propagates. Only used with x - sub <= 88 (softmax / logsumexp).
inline void exp_sub_block(const float* x, float* o, int64_t n, float sub) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 vs = _mm256_set1_ps(sub), hi = _mm256_set1_ps(88.3762626647949f),
               lo = _mm256_set1_ps(-87.3365478515625f), log2e = _mm256_set1_ps(1.44269504088896341f),
               c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f), one = _mm256_set1_ps(1.0f);
  auto ex = [&](__m256 v) {
    const __m256 keep = _mm256_cmp_ps(v, lo, _CMP_NLT_UQ);  // false only for v < lo (not NaN)
    const __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, v));  // NaN passes through
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, c1, xc);
    r = _mm256_fnmadd_ps(k, c2, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), one);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
  };
  for (; i + 16 <= n; i += 16) {  // two independent chains per iteration
    const __m256 a = ex(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    const __m256 b = ex(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
    _mm256_storeu_ps(o + i, a);
    _mm256_storeu_ps(o + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, ex(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs)));
#endif
  for (; i < n; ++i) o[i] = exp_f32(x[i] - sub);
}

template <typename T>
inline void store(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <typename S, typename V>
inline void store_as(char* p, V v) {
  if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
    Io<S>::store(p, static_cast<float>(v));
  } else {
    store<S>(p, static_cast<S>(v));
  }
}

// Sum of n floating values: kLanes partial sums (vectorized), returned in the wide type.
template <typename C>
inline double lane_sum(const C* x, int64_t n) {
  C acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  for (; i < n; ++i) acc[0] += x[i];
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += static_cast<double>(acc[l]);
  return s;
}

template <typename C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return v != v;
  } else {
    return false;
  }
}

// Max (kMax) or min of n > 0 values; NaN wins. The lane loop is a plain compare/select that
// vectorizes; NaN is detected on the side through x * 0 (NaN for NaN and inf) and confirmed by
// a rescan, which also gives the first NaN's position in `nan_at` (-1 when there is none).
template <bool kMax, typename C>
C extreme(const C* x, int64_t n, int64_t& nan_at) {
  nan_at = -1;
  C acc[kLanes], z[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = x[0], z[l] = C{0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const C v = x[i + l];
      acc[l] = (kMax ? v > acc[l] : v < acc[l]) ? v : acc[l];
      if constexpr (std::is_floating_point_v<C>) z[l] += v * C{0};
    }
  C m = acc[0], zz = z[0];
  for (int l = 1; l < kLanes; ++l) m = (kMax ? acc[l] > m : acc[l] < m) ? acc[l] : m, zz += z[l];
  for (; i < n; ++i) {
    m = (kMax ? x[i] > m : x[i] < m) ? x[i] : m;
    if constexpr (std::is_floating_point_v<C>) zz += x[i] * C{0};
  }
  if constexpr (std::is_floating_point_v<C>) {
    if (zz != zz || m != m)
      for (int64_t k = 0; k < n; ++k)
        if (x[k] != x[k]) {
          nan_at = k;
          return x[k];
        }
  }
  return m;
}

// ---------------------------------------------------------------- reducers
template <typename S>
struct SumR {
  using C = Compute<S>;
  using State = std::conditional_t<std::is_floating_point_v<C>, double, uint64_t>;  // ints wrap
  using Out = std::conditional_t<std::is_floating_point_v<C>, S, int64_t>;
  bool mean = false;
  State init() const { return State{}; }
  void chunk(State& st, const C* x, int64_t n, int64_t) const {
    if constexpr (std::is_floating_point_v<C>) {
      st += lane_sum(x, n);
    } else {
      for (int64_t i = 0; i < n; ++i) st += static_cast<uint64_t>(x[i]);
    }
  }
  State combine(State a, State b) const { return a + b; }
  void finish(const State& st, int64_t count, char* o0, char*) const {
    if constexpr (std::is_floating_point_v<C>) {
      store_as<Out>(o0, mean ? st / static_cast<double>(count) : st);
    } else {
      store<int64_t>(o0, static_cast<int64_t>(st));
    }
  }
};

template <typename S>
struct ProdR {
  using C = Compute<S>;
  using State = std::conditional_t<std::is_floating_point_v<C>, double, uint64_t>;
  using Out = std::conditional_t<std::is_floating_point_v<C>, S, int64_t>;
  State init() const { return State{1}; }
  void chunk(State& st, const C* x, int64_t n, int64_t) const {
    for (int64_t i = 0; i < n; ++i) st *= static_cast<State>(x[i]);
  }
  State combine(State a, State b) const { return a * b; }
  void finish(const State& st, int64_t, char* o0, char*) const {
    if constexpr (std::is_floating_point_v<C>) {
      store_as<Out>(o0, st);
    } else {
      store<int64_t>(o0, static_cast<int64_t>(st));
    }
  }
};

// amax/amin (values only, vectorized), max/min (values + indices), argmax/argmin (indices).
// NaN wins and the first NaN's index is reported; ties keep the first index.
enum class MinMaxOut { value, both, index };
template <typename S, bool kMax, MinMaxOut kOut>
struct MinMaxR {
  using C = Compute<S>;
  struct State {
    C v{};
    int64_t idx = -1;  // -1: empty
  };
  static bool better(C a, C b) {  // a replaces the current best b
    if constexpr (std::is_floating_point_v<C>) {
      if (is_nan(b)) return false;
      if (is_nan(a)) return true;
    }
    return kMax ? a > b : a < b;
  }
  State init() const { return {}; }
  void chunk(State& st, const C* x, int64_t n, int64_t base) const {
    if (n <= 0) return;
    int64_t bi = 0;
    const C best = extreme<kMax>(x, n, bi);
    if constexpr (kOut != MinMaxOut::value) {
      if (bi < 0)  // first position of the extreme value (the chunk is in L1)
        for (bi = 0; bi < n && !(x[bi] == best); ++bi) {
        }
    }
    if (bi < 0) bi = 0;
    if (st.idx < 0 || better(best, st.v)) st = {best, base + bi};
  }
  State combine(State a, State b) const {
    if (a.idx < 0) return b;
    if (b.idx < 0) return a;
    return better(b.v, a.v) ? b : a;
  }
  void finish(const State& st, int64_t, char* o0, char* o1) const {
    if constexpr (kOut == MinMaxOut::index) {
      store<int64_t>(o0, st.idx);
    } else {
      store_as<S>(o0, st.v);
      if constexpr (kOut == MinMaxOut::both) store<int64_t>(o1, st.idx);
    }
  }
};

// var/std: per-chunk two-pass mean and M2, chunks joined with Chan's formula in f64.
template <typename S, bool kStd>
struct VarR {
  using C = Compute<S>;
  struct State {
    double n = 0, mean = 0, m2 = 0;
  };
  int64_t correction = 1;
  State init() const { return {}; }
  void chunk(State& st, const C* x, int64_t n, int64_t) const {
    if (n <= 0) return;
    const double m = lane_sum(x, n) / static_cast<double>(n);
    const C mc = static_cast<C>(m);
    C acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const C d = x[i + l] - mc;
        acc[l] += d * d;
      }
    for (; i < n; ++i) acc[0] += (x[i] - mc) * (x[i] - mc);
    double m2 = 0;
    for (int l = 0; l < kLanes; ++l) m2 += static_cast<double>(acc[l]);
    const double dm = m - static_cast<double>(mc);  // mc is m rounded to C
    m2 -= static_cast<double>(n) * dm * dm;
    st = combine(st, State{static_cast<double>(n), m, m2 < 0 ? 0 : m2});  // NaN stays
  }
  State combine(State a, State b) const {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const double n = a.n + b.n, d = b.mean - a.mean;
    return {n, a.mean + d * (b.n / n), a.m2 + b.m2 + d * d * (a.n * b.n / n)};
  }
  void finish(const State& st, int64_t, char* o0, char*) const {
    const double den = st.n - static_cast<double>(correction);
    double v = st.m2 / (den > 0 ? den : 0.0);
    if (kStd) v = std::sqrt(v);
    store_as<S>(o0, v);
  }
};

template <typename S>
struct NormR {
  using C = Compute<S>;
  using State = double;
  double p = 2.0;
  State init() const { return std::isinf(p) && p < 0 ? std::numeric_limits<double>::infinity() : 0.0; }
  void chunk(State& st, const C* x, int64_t n, int64_t) const {
    if (p == 2.0) {
      C acc[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l] * x[i + l];
      for (; i < n; ++i) acc[0] += x[i] * x[i];
      for (int l = 0; l < kLanes; ++l) st += static_cast<double>(acc[l]);
    } else if (p == 1.0) {
      C acc[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += std::fabs(x[i + l]);
      for (; i < n; ++i) acc[0] += std::fabs(x[i]);
      for (int l = 0; l < kLanes; ++l) st += static_cast<double>(acc[l]);
    } else if (std::isinf(p)) {
      for (int64_t i = 0; i < n; ++i) {
        const double a = std::fabs(static_cast<double>(x[i]));
        if (a != a || (p > 0 ? a > st : a < st)) st = (st != st) ? st : a;
      }
    } else if (p == 0.0) {
      for (int64_t i = 0; i < n; ++i) st += x[i] != 0 ? 1.0 : 0.0;
    } else {
      for (int64_t i = 0; i < n; ++i) st += std::pow(std::fabs(static_cast<double>(x[i])), p);
    }
  }
  State combine(State a, State b) const {
    if (std::isinf(p)) {
      if (a != a || b != b) return a != a ? a : b;
      return p > 0 ? (a > b ? a : b) : (a < b ? a : b);
    }
    return a + b;
  }
  void finish(const State& st, int64_t, char* o0, char*) const {
    double v = st;
    if (p == 2.0) {
      v = std::sqrt(st);
    } else if (!std::isinf(p) && p != 1.0 && p != 0.0) {
      v = std::pow(st, 1.0 / p);
    }
    store_as<S>(o0, v);
  }
};

template <typename S, bool kAny>
struct AnyAllR {
  using C = Compute<S>;
  using State = bool;
  State init() const { return !kAny; }
  void chunk(State& st, const C* x, int64_t n, int64_t) const {
    if (st == kAny) return;  // decided
    for (int64_t i = 0; i < n; ++i)
      if ((x[i] != 0) == kAny) {
        st = kAny;
        return;
      }
  }
  State combine(State a, State b) const { return kAny ? (a || b) : (a && b); }
  void finish(const State& st, int64_t, char* o0, char*) const { store<uint8_t>(o0, st ? 1 : 0); }
};

// logsumexp: running (max, sum of exp(x - max)); rows whose max is +-inf or NaN give the max.
template <typename S>
struct LseR {
  using C = Compute<S>;
  struct State {
    double m = -std::numeric_limits<double>::infinity();
    double s = 0;
  };
  State init() const { return {}; }
  static C ex(C v) {
    if constexpr (std::is_same_v<C, float>) {
      return exp_f32(v);
    } else {
      return std::exp(v);
    }
  }
  void chunk(State& st, const C* x, int64_t n, int64_t) const {
    if (n <= 0) return;
    int64_t nan_at = 0;
    const C m = extreme<true>(x, n, nan_at);
    State c{static_cast<double>(m), 0.0};
    if (std::isfinite(m)) {
      C e[kChunk];
      if constexpr (std::is_same_v<C, float>) {
        exp_sub_block(x, e, n, m);
      } else {
        for (int64_t i = 0; i < n; ++i) e[i] = ex(x[i] - m);
      }
      c.s = lane_sum(e, n);
    }
    st = combine(st, c);
  }
  State combine(State a, State b) const {
    if (a.m != a.m || b.m != b.m) return {std::numeric_limits<double>::quiet_NaN(), 0};
    if (!std::isfinite(a.m) || !std::isfinite(b.m)) {  // +inf dominates; -inf contributes nothing
      if (a.m == std::numeric_limits<double>::infinity() || b.m == std::numeric_limits<double>::infinity())
        return {std::numeric_limits<double>::infinity(), 0};
      return a.m == -std::numeric_limits<double>::infinity() ? b : a;
    }
    const double m = a.m > b.m ? a.m : b.m;
    return {m, a.s * std::exp(a.m - m) + b.s * std::exp(b.m - m)};
  }
  void finish(const State& st, int64_t, char* o0, char*) const {
    const double v = std::isfinite(st.m) ? st.m + std::log(st.s) : st.m;
    store_as<S>(o0, v);
  }
};

// ---------------------------------------------------------------- driver
template <typename S, typename R>
void run_reduce(const KernelArgs& a, const R& r) {
  using C = Compute<S>;
  using State = typename R::State;
  const Tensor& x = *a.in[0];
  const int64_t outer = x.size(0), inner = x.size(1);
  const int64_t rs = x.stride(0), cs = x.stride(1);
  const char* base = static_cast<const char*>(x.data());
  char* o0 = static_cast<char*>(a.out[0]->data());
  const int64_t os0 = a.out[0]->stride(0);
  char* o1 = a.out.size() > 1 ? static_cast<char*>(a.out[1]->data()) : nullptr;
  const int64_t os1 = a.out.size() > 1 ? a.out[1]->stride(0) : 0;
  auto fold = [&](State& st, const char* row, int64_t j0, int64_t j1, C* buf) {
    for (int64_t j = j0; j < j1; j += kChunk) {
      const int64_t n = std::min(kChunk, j1 - j);
      r.chunk(st, load_chunk<S>(row, cs, j, n, buf), n, j);
    }
  };
  auto finish = [&](const State& st, int64_t row) {
    r.finish(st, inner, o0 + row * os0, o1 ? o1 + row * os1 : nullptr);
  };
  constexpr int64_t kSeg = 1 << 16;
  const int64_t nseg = (inner >= 2 * kSeg && outer < 4 * num_threads()) ? (inner + kSeg - 1) / kSeg : 1;
  if (nseg == 1) {
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(inner, 1));
    parallel_for(outer, grain, [&](int64_t b, int64_t e) {
      C buf[kChunk];
      for (int64_t row = b; row < e; ++row) {
        State st = r.init();
        fold(st, base + row * rs, 0, inner, buf);
        finish(st, row);
      }
    });
    return;
  }
  std::vector<State> parts(static_cast<size_t>(outer * nseg));
  parallel_for(outer * nseg, 1, [&](int64_t b, int64_t e) {
    C buf[kChunk];
    for (int64_t t = b; t < e; ++t) {
      const int64_t row = t / nseg, seg = t % nseg;
      State st = r.init();
      fold(st, base + row * rs, seg * kSeg, std::min(inner, (seg + 1) * kSeg), buf);
      parts[static_cast<size_t>(t)] = st;
    }
  });
  for (int64_t row = 0; row < outer; ++row) {
    State st = parts[static_cast<size_t>(row * nseg)];
    for (int64_t s = 1; s < nseg; ++s) st = r.combine(st, parts[static_cast<size_t>(row * nseg + s)]);
    finish(st, row);
  }
}

// Column sums: the reduced dim is strided and the kept dim contiguous (sum over dim 0 of a
// row-major matrix). Each task owns a block of up to kCols kept columns and a range of reduced
// rows; rows are added into f32 column accumulators (vectorized, contiguous loads) that are
// flushed into f64 totals every kChunk rows. Row ranges are split only when there are too few
// column blocks for the threads; their partial totals are added in order.
template <typename S>
bool column_sum(const KernelArgs& a, bool mean) {
  using C = Compute<S>;
  if constexpr (!std::is_same_v<C, float>) {
    return false;
  } else {
    const Tensor& x = *a.in[0];
    const int64_t outer = x.size(0), inner = x.size(1);
    const int64_t rs = x.stride(0), cs = x.stride(1);
    if (rs != static_cast<int64_t>(sizeof(S)) || cs == rs || outer < 16 || inner < 2) return false;
    constexpr int64_t kCols = 512;
    const int64_t nt = num_threads();
    // Column block width: a multiple of 16 giving a few tasks per thread.
    int64_t w = (outer + 4 * nt - 1) / (4 * nt);
    w = std::min<int64_t>(kCols, std::max<int64_t>(64, (w + 15) / 16 * 16));
    const int64_t ncb = (outer + w - 1) / w;
    int64_t nrs = 1;
    if (ncb < 4 * nt && outer * inner >= 4 * kElementwiseGrain)
      nrs = std::min<int64_t>((4 * nt + ncb - 1) / ncb, (inner + kChunk - 1) / kChunk);
    const int64_t rseg = (inner + nrs - 1) / nrs;
    std::vector<double> tot(static_cast<size_t>(nrs * outer), 0.0);
    const char* base = static_cast<const char*>(x.data());
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(w * inner / nrs, 1));
    parallel_for(ncb * nrs, grain, [&](int64_t b, int64_t e) {
      float acc[kCols], buf[kCols];
      for (int64_t t = b; t < e; ++t) {
        const int64_t cb = t % ncb, rsg = t / ncb;
        const int64_t c0 = cb * w, cw = std::min(w, outer - c0);
        const int64_t j0 = rsg * rseg, j1 = std::min(inner, j0 + rseg);
        double* dst = tot.data() + rsg * outer + c0;
        for (int64_t jb = j0; jb < j1; jb += kChunk) {
          const int64_t je = std::min(j1, jb + kChunk);
          for (int64_t c = 0; c < cw; ++c) acc[c] = 0.0f;
          for (int64_t j = jb; j < je; ++j) {
            const float* v = rowsimd::load_f32<S>(base + j * cs + c0 * rs, rs, cw, buf);
            for (int64_t c = 0; c < cw; ++c) acc[c] += v[c];
          }
          for (int64_t c = 0; c < cw; ++c) dst[c] += static_cast<double>(acc[c]);
        }
      }
    });
    char* o0 = static_cast<char*>(a.out[0]->data());
    const int64_t os0 = a.out[0]->stride(0);
    for (int64_t c = 0; c < outer; ++c) {
      double v = tot[static_cast<size_t>(c)];
      for (int64_t k = 1; k < nrs; ++k) v += tot[static_cast<size_t>(k * outer + c)];
      store_as<S>(o0 + c * os0, mean ? v / static_cast<double>(inner) : v);
    }
    return true;
  }
}

template <DType D>
void sum_k(const KernelArgs& a) {
  if (column_sum<typename StorageOf<D>::type>(a, false)) return;
  run_reduce<typename StorageOf<D>::type>(a, SumR<typename StorageOf<D>::type>{false});
}
template <DType D>
void mean_k(const KernelArgs& a) {
  if (column_sum<typename StorageOf<D>::type>(a, true)) return;
  run_reduce<typename StorageOf<D>::type>(a, SumR<typename StorageOf<D>::type>{true});
}
template <DType D>
void prod_k(const KernelArgs& a) {
  run_reduce<typename StorageOf<D>::type>(a, ProdR<typename StorageOf<D>::type>{});
}
template <DType D, bool kMax, MinMaxOut kOut>
void minmax_k(const KernelArgs& a) {
  run_reduce<typename StorageOf<D>::type>(a, MinMaxR<typename StorageOf<D>::type, kMax, kOut>{});
}
template <DType D, bool kStd>
void var_k(const KernelArgs& a) {
  run_reduce<typename StorageOf<D>::type>(a, VarR<typename StorageOf<D>::type, kStd>{a.p<ReduceParams>().correction});
}
template <DType D>
void norm_k(const KernelArgs& a) {
  run_reduce<typename StorageOf<D>::type>(a, NormR<typename StorageOf<D>::type>{a.p<ReduceParams>().p});
}
template <DType D, bool kAny>
void anyall_k(const KernelArgs& a) {
  run_reduce<typename StorageOf<D>::type>(a, AnyAllR<typename StorageOf<D>::type, kAny>{});
}
template <DType D>
void lse_k(const KernelArgs& a) {
  run_reduce<typename StorageOf<D>::type>(a, LseR<typename StorageOf<D>::type>{});
}

// ---------------------------------------------------------------- scans
template <DType D, bool kProd>
void scan_k(const KernelArgs& a) {
  using S = typename StorageOf<D>::type;
  using C = Compute<S>;
  using Acc = std::conditional_t<std::is_floating_point_v<C>, double, uint64_t>;
  using Out = std::conditional_t<std::is_floating_point_v<C>, S, int64_t>;
  const Tensor& x = *a.in[0];
  const Tensor& o = *a.out[0];
  const int64_t rows = x.size(0), n = x.size(1);
  const int64_t xr = x.stride(0), xc = x.stride(1), orr = o.stride(0), oc = o.stride(1);
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(o.data());
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1));
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const char* xp = xb + r * xr;
      char* op = ob + r * orr;
      Acc acc = kProd ? Acc{1} : Acc{0};
      for (int64_t i = 0; i < n; ++i) {
        const Acc v = static_cast<Acc>(static_cast<C>(Io<S>::load(xp + i * xc)));
        acc = kProd ? acc * v : acc + v;
        if constexpr (std::is_floating_point_v<C>) {
          store_as<Out>(op + i * oc, acc);
        } else {
          store<int64_t>(op + i * oc, static_cast<int64_t>(acc));
        }
      }
    }
  });
}

}  // namespace

void register_reduce(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_ALL_FLOATS(X) X(f32) X(f64) X(f16) X(bf16)
#define FLAGOS_ALL_INTS(X) X(i8) X(u8) X(i16) X(i32) X(i64)
#define FLAGOS_REG_FLOAT(t)                                                                       \
  reg.add("mean", b, KernelKey{DType::t}, &mean_k<DType::t>);                                     \
  reg.add("var", b, KernelKey{DType::t}, &var_k<DType::t, false>);                                \
  reg.add("std", b, KernelKey{DType::t}, &var_k<DType::t, true>);                                 \
  reg.add("norm", b, KernelKey{DType::t}, &norm_k<DType::t>);                                     \
  reg.add("logsumexp", b, KernelKey{DType::t}, &lse_k<DType::t>);
#define FLAGOS_REG_NUM(t)                                                                                \
  reg.add("sum", b, KernelKey{DType::t}, &sum_k<DType::t>);                                              \
  reg.add("prod", b, KernelKey{DType::t}, &prod_k<DType::t>);                                            \
  reg.add("amax", b, KernelKey{DType::t}, &minmax_k<DType::t, true, MinMaxOut::value>);                  \
  reg.add("amin", b, KernelKey{DType::t}, &minmax_k<DType::t, false, MinMaxOut::value>);                 \
  reg.add("max", b, KernelKey{DType::t}, &minmax_k<DType::t, true, MinMaxOut::both>);                    \
  reg.add("min", b, KernelKey{DType::t}, &minmax_k<DType::t, false, MinMaxOut::both>);                   \
  reg.add("argmax", b, KernelKey{DType::t}, &minmax_k<DType::t, true, MinMaxOut::index>);                \
  reg.add("argmin", b, KernelKey{DType::t}, &minmax_k<DType::t, false, MinMaxOut::index>);               \
  reg.add("any", b, KernelKey{DType::t}, &anyall_k<DType::t, true>);                                     \
  reg.add("all", b, KernelKey{DType::t}, &anyall_k<DType::t, false>);                                    \
  reg.add("cumsum", b, KernelKey{DType::t}, &scan_k<DType::t, false>);                                   \
  reg.add("cumprod", b, KernelKey{DType::t}, &scan_k<DType::t, true>);
  FLAGOS_ALL_FLOATS(FLAGOS_REG_FLOAT)
  FLAGOS_ALL_FLOATS(FLAGOS_REG_NUM)
  FLAGOS_ALL_INTS(FLAGOS_REG_NUM)
  // bool: sum/prod/cumsum/cumprod (as i64), any/all.
  reg.add("sum", b, KernelKey{DType::boolean}, &sum_k<DType::boolean>);
  reg.add("prod", b, KernelKey{DType::boolean}, &prod_k<DType::boolean>);
  reg.add("cumsum", b, KernelKey{DType::boolean}, &scan_k<DType::boolean, false>);
  reg.add("cumprod", b, KernelKey{DType::boolean}, &scan_k<DType::boolean, true>);
  reg.add("any", b, KernelKey{DType::boolean}, &anyall_k<DType::boolean, true>);
  reg.add("all", b, KernelKey{DType::boolean}, &anyall_k<DType::boolean, false>);
#undef FLAGOS_REG_NUM
#undef FLAGOS_REG_FLOAT
#undef FLAGOS_ALL_INTS
#undef FLAGOS_ALL_FLOATS
}

}  // namespace flagos::cpu::FLAGOS_ISA
