// Unary elementwise family: neg, abs, sign (floats and integers), the float functions (exp ...
// round, softplus; integer inputs were cast to f32 by the op layer), and the bool-valued isnan,
// isinf and logical_not. One kernel per dtype: the op is a runtime switch (uniform across the
// grid, so it costs a few instructions per element of a memory-bound loop, and keeps the number
// of instantiations, and the compile time, small). f16/bf16 compute in f32.
#include "backends/cuda/kernels/elementwise.cuh"
#include "backends/cuda/kernels/families.h"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

enum class U : uint8_t {
  neg, abs, sign, exp, expm1, log, log1p, sqrt, rsqrt, reciprocal, sin, cos, tanh, sigmoid, relu, silu, gelu,
  gelu_tanh, erf, floor, ceil, round, softplus
};
enum class P : uint8_t { isnan, isinf, logical_not };

// Float math on f32 (16-bit floats too) or f64.
template <typename C>
__device__ __forceinline__ C float_op(U op, C x, C beta, C threshold) {
  constexpr bool d = std::is_same_v<C, double>;
  switch (op) {
    case U::exp: return d ? ::exp(x) : ::expf(x);
    case U::expm1: return d ? ::expm1(x) : ::expm1f(x);
    case U::log: return d ? ::log(x) : ::logf(x);
    case U::log1p: return d ? ::log1p(x) : ::log1pf(x);
    case U::sqrt: return d ? ::sqrt(x) : ::sqrtf(x);
    case U::rsqrt: return C(1) / (d ? ::sqrt(x) : ::sqrtf(x));
    case U::reciprocal: return C(1) / x;
    case U::sin: return d ? ::sin(x) : ::sinf(x);
    case U::cos: return d ? ::cos(x) : ::cosf(x);
    case U::tanh: return d ? ::tanh(x) : ::tanhf(x);
    case U::sigmoid: return C(1) / (C(1) + (d ? ::exp(-x) : ::expf(-x)));
    case U::relu: return x < C(0) ? C(0) : x;
    case U::silu: return x / (C(1) + (d ? ::exp(-x) : ::expf(-x)));
    case U::gelu:
      if constexpr (d) {  // the references' form (see gelu_tanh)
        return C(0.5) * x * (C(1) + ::erf(__ddiv_rn(x, 1.4142135623730951)));
      } else {  // 1 + erf(x / sqrt2) cancels for x << 0: erfc there (as the CPU backend)
        return x < C(-1.41421356f) ? C(0.5) * x * ::erfcf(x * C(-0.70710678118654752))
                                   : C(0.5) * x * (C(1) + ::erff(x * C(0.70710678118654752)));
      }
    case U::gelu_tanh: {
      // f32: 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), no cancellation for x << 0. f64 keeps the
      // textbook form (as the CPU backend and the float64 references do), whose cancellation near
      // x = -4 is ~1e-11 relative: a different form would differ from them by that much.
      if constexpr (d) {  // no fused multiply-add in the argument: keep the references' rounding
        const double inner = __dadd_rn(x, __dmul_rn(__dmul_rn(__dmul_rn(0.044715, x), x), x));
        return C(0.5) * x * (C(1) + ::tanh(__dmul_rn(0.79788456080286536, inner)));
      } else {
        const C u2 = C(-1.59576912160573071) * (x + C(0.044715) * x * x * x);
        return x / (C(1) + ::expf(u2));
      }
    }
    case U::erf: return d ? ::erf(x) : ::erff(x);
    case U::floor: return d ? ::floor(x) : ::floorf(x);
    case U::ceil: return d ? ::ceil(x) : ::ceilf(x);
    case U::round: return d ? ::rint(x) : ::rintf(x);  // half to even
    case U::softplus: {
      const C bx = beta * x;
      return bx > threshold ? x : (d ? ::log1p(::exp(bx)) : ::log1pf(::expf(bx))) / beta;
    }
    default: return x;
  }
}

template <typename T>
struct UnaryF {
  U op;
  acc_t<T> beta, threshold;
  __device__ T operator()(const T* v, int64_t) const {
    using C = acc_t<T>;
    const C x = load(v);
    C r;
    if (op == U::neg) {
      if constexpr (std::is_integral_v<C>)
        r = static_cast<C>(std::make_unsigned_t<C>(0) - static_cast<std::make_unsigned_t<C>>(x));  // wraps
      else
        r = -x;
    } else if (op == U::abs) {
      if constexpr (std::is_unsigned_v<C>)
        r = x;
      else if constexpr (std::is_integral_v<C>)
        r = x < 0 ? static_cast<C>(std::make_unsigned_t<C>(0) - static_cast<std::make_unsigned_t<C>>(x)) : x;
      else
        r = x < C(0) ? -x : (x == C(0) ? C(0) : x);
    } else if (op == U::sign) {
      if constexpr (std::is_unsigned_v<C>) {
        r = x != 0;
      } else {
        r = static_cast<C>((C(0) < x) - (x < C(0)));
        if constexpr (!std::is_integral_v<C>)
          if (x != x) r = x;
      }
    } else {
      if constexpr (std::is_integral_v<C>)
        r = x;  // float ops are not registered for integers
      else
        r = float_op<C>(op, x, beta, threshold);
    }
    T out;
    store(&out, r);
    return out;
  }
};

template <typename T>
struct PredF {
  P op;
  __device__ bool operator()(const T* v, int64_t) const {
    const acc_t<T> x = load(v);
    switch (op) {
      case P::isnan: return x != x;
      case P::isinf:
        if constexpr (std::is_integral_v<acc_t<T>>) return false;
        else return x == acc_t<T>(INFINITY) || x == acc_t<T>(-INFINITY);
      default: return x == acc_t<T>(0);
    }
  }
};

template <DType D, U op>
void unary_kernel(const KernelArgs& a) {
  using T = type_of<D>;
  UnaryF<T> f{op, acc_t<T>(1), acc_t<T>(20)};
  if constexpr (op == U::softplus) {
    const auto& p = a.p<SoftplusParams>();
    f.beta = static_cast<acc_t<T>>(p.beta);
    f.threshold = static_cast<acc_t<T>>(p.threshold);
  }
  launch_map<T, T, 1>(*a.out[0], {a.in[0]}, kernel_stream(a), f);
}

template <DType D, P op>
void pred_kernel(const KernelArgs& a) {
  using T = type_of<D>;
  launch_map<bool, T, 1>(*a.out[0], {a.in[0]}, kernel_stream(a), PredF<T>{op});
}

template <U op, DType... Ds>
void reg_unary(KernelRegistry& reg, uint16_t b, const char* name) {
  (reg.add(name, b, KernelKey{Ds}, &unary_kernel<Ds, op>), ...);
}
template <P op, DType... Ds>
void reg_pred(KernelRegistry& reg, uint16_t b, const char* name) {
  (reg.add(name, b, KernelKey{Ds}, &pred_kernel<Ds, op>), ...);
}

#define FLAGOS_FLOATS DType::f32, DType::f64, DType::f16, DType::bf16
#define FLAGOS_INTS DType::i8, DType::u8, DType::i16, DType::i32, DType::i64

}  // namespace

void register_unary(KernelRegistry& reg, uint16_t b) {
  reg_unary<U::neg, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "neg");
  reg_unary<U::abs, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "abs");
  reg_unary<U::sign, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "sign");
  reg_unary<U::exp, FLAGOS_FLOATS>(reg, b, "exp");
  reg_unary<U::expm1, FLAGOS_FLOATS>(reg, b, "expm1");
  reg_unary<U::log, FLAGOS_FLOATS>(reg, b, "log");
  reg_unary<U::log1p, FLAGOS_FLOATS>(reg, b, "log1p");
  reg_unary<U::sqrt, FLAGOS_FLOATS>(reg, b, "sqrt");
  reg_unary<U::rsqrt, FLAGOS_FLOATS>(reg, b, "rsqrt");
  reg_unary<U::reciprocal, FLAGOS_FLOATS>(reg, b, "reciprocal");
  reg_unary<U::sin, FLAGOS_FLOATS>(reg, b, "sin");
  reg_unary<U::cos, FLAGOS_FLOATS>(reg, b, "cos");
  reg_unary<U::tanh, FLAGOS_FLOATS>(reg, b, "tanh");
  reg_unary<U::sigmoid, FLAGOS_FLOATS>(reg, b, "sigmoid");
  reg_unary<U::relu, FLAGOS_FLOATS>(reg, b, "relu");
  reg_unary<U::silu, FLAGOS_FLOATS>(reg, b, "silu");
  reg_unary<U::gelu, FLAGOS_FLOATS>(reg, b, "gelu");
  reg_unary<U::gelu_tanh, FLAGOS_FLOATS>(reg, b, "gelu_tanh");
  reg_unary<U::erf, FLAGOS_FLOATS>(reg, b, "erf");
  reg_unary<U::floor, FLAGOS_FLOATS>(reg, b, "floor");
  reg_unary<U::ceil, FLAGOS_FLOATS>(reg, b, "ceil");
  reg_unary<U::round, FLAGOS_FLOATS>(reg, b, "round");
  reg_unary<U::softplus, FLAGOS_FLOATS>(reg, b, "softplus");
  reg_pred<P::isnan, FLAGOS_FLOATS>(reg, b, "isnan");
  reg_pred<P::isinf, FLAGOS_FLOATS>(reg, b, "isinf");
  reg_pred<P::logical_not, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "logical_not");
}

}  // namespace flagos::cuda
