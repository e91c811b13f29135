// Reductions, part 2: amax/amin, max/min (values + i64 indices), argmax/argmin, var/std, norm and
// logsumexp (driver in reduce.cuh). NaN wins max/min and its first index is reported; ties keep
// the first index; floats compute in f32 (f64 for f64).
#include "backends/cuda/kernels/families.h"
#include "backends/cuda/kernels/reduce.cuh"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

enum class MinMaxOut : uint8_t { value, both, index };

template <typename T>
struct MinMaxR {
  using V = acc_t<T>;
  struct State {
    V v;
    int64_t idx;  // -1: empty
  };
  bool is_max;
  MinMaxOut out;
  __device__ bool better(V a, V b) const {  // a replaces the current best b
    if constexpr (is_float_v<T>) {
      if (b != b) return false;
      if (a != a) return true;
    }
    return is_max ? a > b : a < b;
  }
  __device__ State init() const { return State{V(0), -1}; }
  __device__ void add(State& s, V v, int64_t j) const {
    if (s.idx < 0 || better(v, s.v)) s = State{v, j};  // j increases per thread: ties keep the first
  }
  __device__ State combine(State a, State b) const {
    if (a.idx < 0) return b;
    if (b.idx < 0) return a;
    if (better(b.v, a.v)) return b;
    if (better(a.v, b.v)) return a;
    return a.idx <= b.idx ? a : b;
  }
  __device__ void finish(State s, int64_t, char* o0, char* o1) const {
    if (out == MinMaxOut::index) {
      *reinterpret_cast<int64_t*>(o0) = s.idx;
      return;
    }
    store_result<T>(o0, s.v);
    if (out == MinMaxOut::both) *reinterpret_cast<int64_t*>(o1) = s.idx;
  }
};

// Welford per thread, Chan's formula to combine.
template <typename T>
struct VarR {
  using V = acc_t<T>;
  struct State {
    int64_t n;
    V mean, m2;
  };
  int64_t correction;
  bool is_std;
  __device__ State init() const { return State{0, V(0), V(0)}; }
  __device__ void add(State& s, V v, int64_t) const {
    ++s.n;
    const V d = v - s.mean;
    s.mean += d / static_cast<V>(s.n);
    s.m2 += d * (v - s.mean);
  }
  __device__ State combine(State a, State b) const {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const int64_t n = a.n + b.n;
    const V d = b.mean - a.mean, fn = static_cast<V>(n);
    return State{n, a.mean + d * (static_cast<V>(b.n) / fn),
                 a.m2 + b.m2 + d * d * (static_cast<V>(a.n) * static_cast<V>(b.n) / fn)};
  }
  __device__ void finish(State s, int64_t, char* o, char*) const {
    const V den = static_cast<V>(s.n - correction);
    V r = s.m2 / (den > V(0) ? den : V(0));
    if (is_std) r = std::is_same_v<V, double> ? ::sqrt(r) : ::sqrtf(r);
    store_result<T>(o, r);
  }
};

template <typename T>
struct NormR {
  using V = acc_t<T>;
  using State = V;
  V p;
  bool inf_p;
  __device__ State init() const { return inf_p && p < V(0) ? V(INFINITY) : V(0); }
  __device__ State pick(State a, State b) const {  // NaN-propagating max (p = inf) or min (p = -inf)
    if (a != a) return a;
    if (b != b) return b;
    return p > V(0) ? (a > b ? a : b) : (a < b ? a : b);
  }
  __device__ void add(State& s, V v, int64_t) const {
    const V a = v < V(0) ? -v : v;
    if (p == V(2)) s += a * a;
    else if (p == V(1)) s += a;
    else if (inf_p) s = pick(s, a);
    else if (p == V(0)) s += v != V(0) ? V(1) : V(0);
    else s += std::is_same_v<V, double> ? ::pow(a, p) : ::powf(a, p);
  }
  __device__ State combine(State a, State b) const { return inf_p ? pick(a, b) : a + b; }
  __device__ void finish(State s, int64_t, char* o, char*) const {
    constexpr bool d = std::is_same_v<V, double>;
    if (p == V(2)) s = d ? ::sqrt(s) : ::sqrtf(s);
    else if (!inf_p && p != V(1) && p != V(0)) s = d ? ::pow(s, V(1) / p) : ::powf(s, V(1) / p);
    store_result<T>(o, s);
  }
};

// logsumexp as a running (max, sum of exp(x - max)); rows whose max is +-inf or NaN give the max.
template <typename T>
struct LseR {
  using V = acc_t<T>;
  struct State {
    V m, s;
  };
  __device__ State init() const { return State{V(-INFINITY), V(0)}; }
  __device__ State combine(State a, State b) const {
    if (a.m != a.m || b.m != b.m) return State{V(NAN), V(0)};
    if (a.m == V(INFINITY) || b.m == V(INFINITY)) return State{V(INFINITY), V(0)};
    if (a.m == V(-INFINITY)) return b;
    if (b.m == V(-INFINITY)) return a;
    constexpr bool d = std::is_same_v<V, double>;
    if (a.m >= b.m) return State{a.m, a.s + b.s * (d ? ::exp(b.m - a.m) : ::expf(b.m - a.m))};
    return State{b.m, b.s + a.s * (d ? ::exp(a.m - b.m) : ::expf(a.m - b.m))};
  }
  __device__ void add(State& s, V v, int64_t) const { s = combine(s, State{v, V(1)}); }
  __device__ void finish(State s, int64_t, char* o, char*) const {
    const bool finite = s.m == s.m && s.m != V(INFINITY) && s.m != V(-INFINITY);
    constexpr bool d = std::is_same_v<V, double>;
    store_result<T>(o, finite ? s.m + (d ? ::log(s.s) : ::logf(s.s)) : s.m);
  }
};

template <DType D, bool kMax, MinMaxOut kOut>
void minmax_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, MinMaxR<type_of<D>>{kMax, kOut});
}
template <DType D, bool kStd>
void var_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, VarR<type_of<D>>{a.p<ReduceParams>().correction, kStd});
}
template <DType D>
void norm_k(const KernelArgs& a) {
  using V = acc_t<type_of<D>>;
  const double p = a.p<ReduceParams>().p;
  run_reduce<type_of<D>>(a, NormR<type_of<D>>{static_cast<V>(p), std::isinf(p)});
}
template <DType D>
void lse_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, LseR<type_of<D>>{});
}

}  // namespace

void register_reduce_stats(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG_NUM(t)                                                                           \
  reg.add("amax", b, KernelKey{DType::t}, &minmax_k<DType::t, true, MinMaxOut::value>);             \
  reg.add("amin", b, KernelKey{DType::t}, &minmax_k<DType::t, false, MinMaxOut::value>);            \
  reg.add("max", b, KernelKey{DType::t}, &minmax_k<DType::t, true, MinMaxOut::both>);               \
  reg.add("min", b, KernelKey{DType::t}, &minmax_k<DType::t, false, MinMaxOut::both>);              \
  reg.add("argmax", b, KernelKey{DType::t}, &minmax_k<DType::t, true, MinMaxOut::index>);           \
  reg.add("argmin", b, KernelKey{DType::t}, &minmax_k<DType::t, false, MinMaxOut::index>);
#define FLAGOS_REG_FLOAT(t)                                                  \
  reg.add("var", b, KernelKey{DType::t}, &var_k<DType::t, false>);           \
  reg.add("std", b, KernelKey{DType::t}, &var_k<DType::t, true>);            \
  reg.add("norm", b, KernelKey{DType::t}, &norm_k<DType::t>);                \
  reg.add("logsumexp", b, KernelKey{DType::t}, &lse_k<DType::t>);
  FLAGOS_CUDA_FLOATS(FLAGOS_REG_NUM)
  FLAGOS_CUDA_INTS(FLAGOS_REG_NUM)
  FLAGOS_CUDA_FLOATS(FLAGOS_REG_FLOAT)
#undef FLAGOS_REG_FLOAT
#undef FLAGOS_REG_NUM
}

}  // namespace flagos::cuda
