// Binary elementwise family: add, sub, mul, div, pow, maximum, minimum, remainder (result in the
// compute dtype), the comparisons and logical_and/or (bool result), tensor-tensor (inputs already
// broadcast and cast by the op layer) and tensor-scalar (one input, the scalar in
// ScalarParams::a); plus where, clamp and lerp. The op is a runtime switch inside one kernel per
// dtype (see unary.cu); integers wrap (computed unsigned), f16/bf16 compute in f32.
#include "backends/cuda/kernels/elementwise.cuh"
#include "backends/cuda/kernels/families.h"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

enum class B : uint8_t { add, sub, mul, div, pow, maximum, minimum, remainder };
enum class Cmp : uint8_t { eq, ne, lt, le, gt, ge, logical_and, logical_or };

template <typename C>
__device__ __forceinline__ C arith(B op, C x, C y) {
  if constexpr (std::is_integral_v<C>) {
    using Un = std::make_unsigned_t<C>;
    using W = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, Un>;  // no int promotion
    switch (op) {
      case B::add: return static_cast<C>(static_cast<Un>(x) + static_cast<Un>(y));
      case B::sub: return static_cast<C>(static_cast<Un>(x) - static_cast<Un>(y));
      case B::mul: return static_cast<C>(static_cast<W>(static_cast<Un>(x)) * static_cast<W>(static_cast<Un>(y)));
      case B::maximum: return x > y ? x : y;
      case B::minimum: return x < y ? x : y;
      case B::remainder:  // Python semantics; division by zero gives 0
        if constexpr (std::is_unsigned_v<C>) {
          return y == 0 ? C(0) : static_cast<C>(x % y);
        } else {
          if (y == 0 || y == -1) return C(0);
          C r = static_cast<C>(x % y);
          if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
          return r;
        }
      default: return x;  // div / pow are float-only
    }
  } else {
    constexpr bool d = std::is_same_v<C, double>;
    switch (op) {
      case B::add: return x + y;
      case B::sub: return x - y;
      case B::mul: return x * y;
      case B::div: return x / y;
      case B::pow: return d ? ::pow(x, y) : ::powf(x, y);
      case B::maximum: return x != x ? x : (y != y ? y : (x > y ? x : y));
      case B::minimum: return x != x ? x : (y != y ? y : (x < y ? x : y));
      case B::remainder: {
        C r = d ? ::fmod(x, y) : ::fmodf(x, y);
        if (r != C(0) && ((r < C(0)) != (y < C(0)))) r += y;
        return r;
      }
    }
    return x;
  }
}

template <typename C>
__device__ __forceinline__ bool compare(Cmp op, C x, C y) {
  switch (op) {
    case Cmp::eq: return x == y;
    case Cmp::ne: return x != y;
    case Cmp::lt: return x < y;
    case Cmp::le: return x <= y;
    case Cmp::gt: return x > y;
    case Cmp::ge: return x >= y;
    case Cmp::logical_and: return x != C(0) && y != C(0);
    default: return x != C(0) || y != C(0);
  }
}

// N = 2: tensor-tensor; N = 1: tensor-scalar with y = `scalar`.
template <typename T, int N>
struct ArithF {
  B op;
  acc_t<T> scalar;
  __device__ T operator()(const T* v, int64_t) const {
    const acc_t<T> y = N == 2 ? load(v + (N - 1)) : scalar;
    T out;
    store(&out, arith<acc_t<T>>(op, load(v), y));
    return out;
  }
};

template <typename T, int N>
struct CmpF {
  Cmp op;
  acc_t<T> scalar;
  __device__ bool operator()(const T* v, int64_t) const {
    const acc_t<T> y = N == 2 ? load(v + (N - 1)) : scalar;
    return compare<acc_t<T>>(op, load(v), y);
  }
};

// The scalar of a tensor-scalar op in the compute type (integers: integral, checked by the op layer).
template <typename C>
C scalar_as(double v) {
  if constexpr (std::is_floating_point_v<C>) {
    return static_cast<C>(v);
  } else {
    if (!(v >= -9.2e18 && v <= 9.2e18)) v = 0;
    return static_cast<C>(static_cast<uint64_t>(static_cast<int64_t>(v)));
  }
}

template <DType D, B op>
void arith_kernel(const KernelArgs& a) {
  using T = type_of<D>;
  cudaStream_t s = kernel_stream(a);
  if (a.in.size() == 1)
    launch_map<T, T, 1>(*a.out[0], {a.in[0]}, s, ArithF<T, 1>{op, scalar_as<acc_t<T>>(a.p<ScalarParams>().a)});
  else
    launch_map<T, T, 2>(*a.out[0], {a.in[0], a.in[1]}, s, ArithF<T, 2>{op, acc_t<T>(0)});
}

template <DType D, Cmp op>
void cmp_kernel(const KernelArgs& a) {
  using T = type_of<D>;
  cudaStream_t s = kernel_stream(a);
  if (a.in.size() == 1)
    launch_map<bool, T, 1>(*a.out[0], {a.in[0]}, s, CmpF<T, 1>{op, scalar_as<acc_t<T>>(a.p<ScalarParams>().a)});
  else
    launch_map<bool, T, 2>(*a.out[0], {a.in[0], a.in[1]}, s, CmpF<T, 2>{op, acc_t<T>(0)});
}

// ---- where(cond, a, b): bytes are moved as is, so one kernel per element size ----
template <typename E>
__global__ void __launch_bounds__(kThreads) where_kernel_dev(int64_t n, Indexer<4> ix, char* out, const char* c,
                                                             const char* x, const char* y) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[4];
    ix.offsets(i, off);
    const char* src = *reinterpret_cast<const bool*>(c + off[1]) ? x + off[2] : y + off[3];
    *reinterpret_cast<E*>(out + off[0]) = *reinterpret_cast<const E*>(src);
  }
}

template <typename E>
void where_kernel(const KernelArgs& a) {
  const Tensor& o = *a.out[0];
  const int64_t n = o.numel();
  if (n == 0) return;
  cudaStream_t s = kernel_stream(a);
  const Indexer<4> ix =
      make_indexer<4>(o.shape(), {&o.strides(), &a.in[0]->strides(), &a.in[1]->strides(), &a.in[2]->strides()});
  where_kernel_dev<E><<<grid_for(n, o.device().index), kThreads, 0, s>>>(
      n, ix, static_cast<char*>(o.data()), static_cast<const char*>(a.in[0]->data()),
      static_cast<const char*>(a.in[1]->data()), static_cast<const char*>(a.in[2]->data()));
  CUDA_CHECK_LAUNCH();
}

// ---- clamp(x, lo, hi): ScalarParams{a = lo, b = hi}, +-inf for an absent bound ----
template <typename T>
struct ClampF {
  acc_t<T> lo, hi;
  __device__ T operator()(const T* v, int64_t) const {
    acc_t<T> r = load(v);
    r = r < lo ? lo : r;
    r = r > hi ? hi : r;  // lo > hi gives hi everywhere (torch); NaN stays NaN
    T out;
    store(&out, r);
    return out;
  }
};

template <typename C>
C bound_as(double v) {
  if constexpr (std::is_floating_point_v<C>) {
    return static_cast<C>(v);
  } else {
    const double mn = static_cast<double>(std::numeric_limits<C>::lowest());
    const double mx = static_cast<double>(std::numeric_limits<C>::max());
    return v <= mn ? std::numeric_limits<C>::lowest() : (v >= mx ? std::numeric_limits<C>::max() : static_cast<C>(v));
  }
}

template <DType D>
void clamp_kernel(const KernelArgs& a) {
  using T = type_of<D>;
  const auto& p = a.p<ScalarParams>();
  launch_map<T, T, 1>(*a.out[0], {a.in[0]}, kernel_stream(a),
                      ClampF<T>{bound_as<acc_t<T>>(p.a), bound_as<acc_t<T>>(p.b)});
}

// ---- lerp(start, end, weight): weight a tensor (in[2]) or ScalarParams::a ----
template <typename T, int N>
struct LerpF {
  acc_t<T> w_scalar;
  __device__ T operator()(const T* v, int64_t) const {
    using C = acc_t<T>;
    const C s = load(v), e = load(v + 1);
    const C w = N == 3 ? load(v + (N - 1)) : w_scalar;
    const C d = e - s;
    T out;
    store(&out, (w < C(0.5) && w > C(-0.5)) ? s + w * d : e - d * (C(1) - w));
    return out;
  }
};

template <DType D>
void lerp_kernel(const KernelArgs& a) {
  using T = type_of<D>;
  cudaStream_t s = kernel_stream(a);
  if (a.in.size() == 2)
    launch_map<T, T, 2>(*a.out[0], {a.in[0], a.in[1]}, s,
                        LerpF<T, 2>{static_cast<acc_t<T>>(a.p<ScalarParams>().a)});
  else
    launch_map<T, T, 3>(*a.out[0], {a.in[0], a.in[1], a.in[2]}, s, LerpF<T, 3>{acc_t<T>(0)});
}

template <B op, DType... Ds>
void reg_arith(KernelRegistry& reg, uint16_t b, const char* name) {
  (reg.add(name, b, KernelKey{Ds}, &arith_kernel<Ds, op>), ...);
}
template <Cmp op, DType... Ds>
void reg_cmp(KernelRegistry& reg, uint16_t b, const char* name) {
  (reg.add(name, b, KernelKey{Ds}, &cmp_kernel<Ds, op>), ...);
}

#define FLAGOS_FLOATS DType::f32, DType::f64, DType::f16, DType::bf16
#define FLAGOS_INTS DType::i8, DType::u8, DType::i16, DType::i32, DType::i64

}  // namespace

void register_binary(KernelRegistry& reg, uint16_t b) {
  reg_arith<B::add, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "add");
  reg_arith<B::sub, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "sub");
  reg_arith<B::mul, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "mul");
  reg_arith<B::div, FLAGOS_FLOATS>(reg, b, "div");
  reg_arith<B::pow, FLAGOS_FLOATS>(reg, b, "pow");
  reg_arith<B::maximum, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "maximum");
  reg_arith<B::minimum, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "minimum");
  reg_arith<B::remainder, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "remainder");
  reg_cmp<Cmp::eq, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "eq");
  reg_cmp<Cmp::ne, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "ne");
  reg_cmp<Cmp::lt, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "lt");
  reg_cmp<Cmp::le, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "le");
  reg_cmp<Cmp::gt, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "gt");
  reg_cmp<Cmp::ge, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "ge");
  reg_cmp<Cmp::logical_and, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "logical_and");
  reg_cmp<Cmp::logical_or, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "logical_or");
  // where moves bytes: dtypes of one size share a kernel.
  for (DType d : {DType::i8, DType::u8, DType::boolean}) reg.add("where", b, KernelKey{d}, &where_kernel<int8_t>);
  for (DType d : {DType::i16, DType::f16, DType::bf16}) reg.add("where", b, KernelKey{d}, &where_kernel<int16_t>);
  for (DType d : {DType::i32, DType::f32}) reg.add("where", b, KernelKey{d}, &where_kernel<int32_t>);
  for (DType d : {DType::i64, DType::f64}) reg.add("where", b, KernelKey{d}, &where_kernel<int64_t>);
#define FLAGOS_CLAMP(d) reg.add("clamp", b, KernelKey{DType::d}, &clamp_kernel<DType::d>);
  FLAGOS_CLAMP(f32) FLAGOS_CLAMP(f64) FLAGOS_CLAMP(f16) FLAGOS_CLAMP(bf16)
  FLAGOS_CLAMP(i8) FLAGOS_CLAMP(u8) FLAGOS_CLAMP(i16) FLAGOS_CLAMP(i32) FLAGOS_CLAMP(i64)
#undef FLAGOS_CLAMP
  reg.add("lerp", b, KernelKey{DType::f32}, &lerp_kernel<DType::f32>);
  reg.add("lerp", b, KernelKey{DType::f64}, &lerp_kernel<DType::f64>);
  reg.add("lerp", b, KernelKey{DType::f16}, &lerp_kernel<DType::f16>);
  reg.add("lerp", b, KernelKey{DType::bf16}, &lerp_kernel<DType::bf16>);
}

}  // namespace flagos::cuda
