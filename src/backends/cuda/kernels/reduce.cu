// Reductions, part 1: sum/mean, prod, any/all (driver in reduce.cuh). Floats accumulate in f32
// (f64 for f64) and keep their dtype; integers and bool accumulate in 64 bits (wrapping) and give
// i64; any/all give bool.
#include "backends/cuda/kernels/families.h"
#include "backends/cuda/kernels/reduce.cuh"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

template <typename T>
using WideAcc = std::conditional_t<is_float_v<T>, acc_t<T>, uint64_t>;

template <typename T>
__device__ __forceinline__ WideAcc<T> widen(acc_t<T> v) {
  if constexpr (is_float_v<T>)
    return v;
  else
    return static_cast<uint64_t>(static_cast<int64_t>(v));
}

template <typename T>
__device__ __forceinline__ void store_wide(char* p, WideAcc<T> v) {
  if constexpr (is_float_v<T>)
    store_result<T>(p, v);
  else
    *reinterpret_cast<int64_t*>(p) = static_cast<int64_t>(v);
}

template <typename T>
struct SumR {
  using State = WideAcc<T>;
  bool mean;
  __device__ State init() const { return State(0); }
  __device__ void add(State& s, acc_t<T> v, int64_t) const { s += widen<T>(v); }
  __device__ State combine(State a, State b) const { return a + b; }
  __device__ void finish(State s, int64_t n, char* o, char*) const {
    if constexpr (is_float_v<T>)
      if (mean) s = s / static_cast<State>(n);
    store_wide<T>(o, s);
  }
};

template <typename T>
struct ProdR {
  using State = WideAcc<T>;
  __device__ State init() const { return State(1); }
  __device__ void add(State& s, acc_t<T> v, int64_t) const { s *= widen<T>(v); }
  __device__ State combine(State a, State b) const { return a * b; }
  __device__ void finish(State s, int64_t, char* o, char*) const { store_wide<T>(o, s); }
};

template <typename T>
struct AnyAllR {
  using State = int;
  bool any;
  __device__ State init() const { return any ? 0 : 1; }
  __device__ void add(State& s, acc_t<T> v, int64_t) const {
    const bool nz = v != acc_t<T>(0);
    s = any ? (s | nz) : (s & nz);
  }
  __device__ State combine(State a, State b) const { return any ? (a | b) : (a & b); }
  __device__ void finish(State s, int64_t, char* o, char*) const { *reinterpret_cast<bool*>(o) = s != 0; }
};

template <DType D>
void sum_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, SumR<type_of<D>>{false});
}
template <DType D>
void mean_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, SumR<type_of<D>>{true});
}
template <DType D>
void prod_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, ProdR<type_of<D>>{});
}
template <DType D, bool kAny>
void anyall_k(const KernelArgs& a) {
  run_reduce<type_of<D>>(a, AnyAllR<type_of<D>>{kAny});
}

}  // namespace

void register_reduce(KernelRegistry& reg, uint16_t b) {
#define FLAGOS_REG_NUM(t)                                                  \
  reg.add("sum", b, KernelKey{DType::t}, &sum_k<DType::t>);                \
  reg.add("prod", b, KernelKey{DType::t}, &prod_k<DType::t>);              \
  reg.add("any", b, KernelKey{DType::t}, &anyall_k<DType::t, true>);       \
  reg.add("all", b, KernelKey{DType::t}, &anyall_k<DType::t, false>);
#define FLAGOS_REG_MEAN(t) reg.add("mean", b, KernelKey{DType::t}, &mean_k<DType::t>);
  FLAGOS_CUDA_FLOATS(FLAGOS_REG_NUM)
  FLAGOS_CUDA_INTS(FLAGOS_REG_NUM)
  FLAGOS_REG_NUM(boolean)
  FLAGOS_CUDA_FLOATS(FLAGOS_REG_MEAN)
#undef FLAGOS_REG_MEAN
#undef FLAGOS_REG_NUM
}

}  // namespace flagos::cuda
