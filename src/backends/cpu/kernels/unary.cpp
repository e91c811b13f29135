// Unary elementwise kernels (and softplus). f32 uses the vectorizable vec_math functions; f64
// uses libm; f16/bf16 convert contiguous blocks to f32, compute, and round once at the store.
// Integer inputs of float ops never reach here (the op layer computes them in f32).
#include <cmath>
#include <type_traits>

#include "backends/cpu/kernels/families.h"
#include "backends/cpu/kernels/vec_math.h"
#include "backends/cpu/loops.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"

namespace flagos::cpu::FLAGOS_ISA {
namespace {

template <typename T>
inline constexpr bool kHalf = std::is_same_v<T, f16> || std::is_same_v<T, bf16>;
template <typename C>
inline constexpr bool kF32 = std::is_same_v<C, float>;

// ---- op functors: operator()(C) on the compute type (float, double or an integer) ----
struct Neg {
  template <typename C>
  C operator()(C x) const {
    if constexpr (std::is_integral_v<C>)
      return static_cast<C>(std::make_unsigned_t<C>(0) - static_cast<std::make_unsigned_t<C>>(x));
    else
      return -x;
  }
};
struct Abs {
  template <typename C>
  C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>)
      return x;
    else if constexpr (std::is_integral_v<C>)
      return x < 0 ? Neg{}(x) : x;
    else
      return x < 0 ? -x : (x == 0 ? C(0) : x);
  }
};
struct Sign {
  template <typename C>
  C operator()(C x) const {
    const C s = static_cast<C>((C(0) < x) - (x < C(0)));
    if constexpr (std::is_floating_point_v<C>)
      return x != x ? x : s;
    else
      return s;
  }
};
#define FLAGOS_FLOAT_FN(Name, f32expr, f64expr)  \
  struct Name {                                  \
    float operator()(float x) const { return f32expr; } \
    double operator()(double x) const { return f64expr; } \
  };
FLAGOS_FLOAT_FN(Exp, exp_f32(x), std::exp(x))
FLAGOS_FLOAT_FN(Expm1, expm1_f32(x), std::expm1(x))
FLAGOS_FLOAT_FN(Log, log_f32(x), std::log(x))
FLAGOS_FLOAT_FN(Log1p, log1p_f32(x), std::log1p(x))
FLAGOS_FLOAT_FN(Sqrt, __builtin_sqrtf(x), std::sqrt(x))
FLAGOS_FLOAT_FN(Rsqrt, 1.0f / __builtin_sqrtf(x), 1.0 / std::sqrt(x))
FLAGOS_FLOAT_FN(Reciprocal, 1.0f / x, 1.0 / x)
// sin/cos: vec_math is exact enough for |x| < kVmTrigMaxArg; larger finite arguments are redone
// with libm after the vectorized pass (trig_fixup).
struct Sin {
  float operator()(float x) const { return sin_f32(x); }
  double operator()(double x) const { return std::sin(x); }
  static float exact(float x) { return std::sin(x); }
};
struct Cos {
  float operator()(float x) const { return cos_f32(x); }
  double operator()(double x) const { return std::cos(x); }
  static float exact(float x) { return std::cos(x); }
};
template <typename Op>
inline constexpr bool kIsTrig = std::is_same_v<Op, Sin> || std::is_same_v<Op, Cos>;
template <typename Op>
void trig_fixup(const float* x, float* o, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    if (vm_abs(x[j]) >= kVmTrigMaxArg && vm_abs(x[j]) < vm_from_bits(0x7f800000u)) [[unlikely]]
      o[j] = Op::exact(x[j]);
}
// One element (strided paths).
template <typename Op, typename C>
auto apply1(const Op& op, C v) {
  if constexpr (kIsTrig<Op> && kF32<C>)
    return vm_abs(v) >= kVmTrigMaxArg ? Op::exact(v) : op(v);
  else
    return op(v);
}
FLAGOS_FLOAT_FN(Tanh, tanh_f32(x), std::tanh(x))
FLAGOS_FLOAT_FN(Sigmoid, sigmoid_f32(x), 1.0 / (1.0 + std::exp(-x)))
FLAGOS_FLOAT_FN(Relu, x < 0.0f ? 0.0f : x, x < 0.0 ? 0.0 : x)
FLAGOS_FLOAT_FN(Silu, x / (1.0f + exp_f32(-x)), x / (1.0 + std::exp(-x)))
FLAGOS_FLOAT_FN(Gelu, gelu_erf_f32(x),
                0.5 * x * (1.0 + std::erf(x * 0.70710678118654752)))
// 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)): the same value without cancellation for x << 0.
FLAGOS_FLOAT_FN(GeluTanh, x / (1.0f + exp_f32(-1.59576912160573071f * (x + 0.044715f * x * x * x))),
                0.5 * x * (1.0 + std::tanh(0.79788456080286536 * (x + 0.044715 * x * x * x))))
FLAGOS_FLOAT_FN(Erf, erf_f32(x), std::erf(x))
FLAGOS_FLOAT_FN(Floor, floor_f32(x), std::floor(x))
FLAGOS_FLOAT_FN(Ceil, ceil_f32(x), std::ceil(x))
FLAGOS_FLOAT_FN(Round, round_even_f32(x), std::nearbyint(x))
#undef FLAGOS_FLOAT_FN

struct IsNan {
  template <typename C>
  bool operator()(C x) const { return x != x; }
};
struct IsInf {
  template <typename C>
  bool operator()(C x) const {
    if constexpr (kF32<C>)
      return vm_abs(x) == vm_from_bits(0x7f800000u);
    else
      return std::fabs(x) == static_cast<C>(INFINITY);
  }
};
struct LogicalNot {
  template <typename C>
  bool operator()(C x) const { return x == C(0); }
};

// Ops with parameters are constructed from the kernel's params.
struct Softplus {
  float beta, inv_beta, threshold;
  double dbeta, dthreshold;
  explicit Softplus(const void* p) {
    const auto& sp = *static_cast<const SoftplusParams*>(p);
    dbeta = sp.beta;
    dthreshold = sp.threshold;
    beta = static_cast<float>(sp.beta);
    inv_beta = static_cast<float>(1.0 / sp.beta);
    threshold = static_cast<float>(sp.threshold);
  }
  float operator()(float x) const {
    const float bx = beta * x;
    return bx > threshold ? x : log1p_f32(exp_f32(bx)) * inv_beta;
  }
  double operator()(double x) const {
    const double bx = dbeta * x;
    return bx > dthreshold ? x : std::log1p(std::exp(bx)) / dbeta;
  }
};

template <typename Op>
Op make_op(const void* params) {
  if constexpr (std::is_constructible_v<Op, const void*>)
    return Op(params);
  else
    return Op{};
}

template <typename Op>
inline constexpr bool kIsSqrt = std::is_same_v<Op, Sqrt> || std::is_same_v<Op, Rsqrt>;

// One run of n elements; T input storage, R output storage (T, or uint8_t for bool results).
template <typename T, typename R, typename Op>
void unary_run(char* po, const char* px, int64_t so, int64_t sx, int64_t n, const Op& op) {
  using C = typename Io<T>::compute;
  const bool contig = sx == static_cast<int64_t>(sizeof(T)) && so == static_cast<int64_t>(sizeof(R));
  if constexpr (kHalf<T>) {
    if (contig) {
      constexpr int64_t B = 256;
      float buf[B];
      for (int64_t i = 0; i < n; i += B) {
        const int64_t m = std::min(B, n - i);
        cvt_to_f32(reinterpret_cast<const T*>(px) + i, buf, m);
        if constexpr (std::is_same_v<R, T>) {
          float ob[B];
          if constexpr (kIsSqrt<Op>)
            sqrt_block(buf, ob, m, std::is_same_v<Op, Rsqrt>);
          else
            for (int64_t j = 0; j < m; ++j) ob[j] = op(buf[j]);
          if constexpr (kIsTrig<Op>) trig_fixup<Op>(buf, ob, m);
          cvt_from_f32(ob, reinterpret_cast<T*>(po) + i, m);
        } else {
          R* o = reinterpret_cast<R*>(po) + i;
          for (int64_t j = 0; j < m; ++j) o[j] = static_cast<R>(op(buf[j]));
        }
      }
      return;
    }
  } else {
    if (contig) {
      R* o = reinterpret_cast<R*>(po);
      const T* x = reinterpret_cast<const T*>(px);
      if constexpr (kIsSqrt<Op> && kF32<T>) {
        sqrt_block(x, o, n, std::is_same_v<Op, Rsqrt>);
      } else if constexpr (kIsTrig<Op> && kF32<T>) {
        constexpr int64_t B = 256;
        float buf[B];  // keeps the inputs for the fixup when running in place
        for (int64_t i = 0; i < n; i += B) {
          const int64_t m = std::min(B, n - i);
          for (int64_t j = 0; j < m; ++j) buf[j] = x[i + j];
          for (int64_t j = 0; j < m; ++j) o[i + j] = op(buf[j]);
          trig_fixup<Op>(buf, o + i, m);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<R>(op(static_cast<C>(x[i])));
      }
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const C v = Io<T>::load(px + i * sx);
    if constexpr (std::is_same_v<R, T>)
      Io<R>::store(po + i * so, apply1(op, v));
    else
      Io<R>::store(po + i * so, static_cast<R>(apply1(op, v)));
  }
}

template <typename Op>
constexpr int64_t grain_for() {
  if constexpr (std::is_same_v<Op, Neg> || std::is_same_v<Op, Abs> || std::is_same_v<Op, Relu> ||
                std::is_same_v<Op, IsNan> || std::is_same_v<Op, IsInf> || std::is_same_v<Op, LogicalNot> ||
                std::is_same_v<Op, Sign> || std::is_same_v<Op, Floor> || std::is_same_v<Op, Ceil> ||
                std::is_same_v<Op, Round>)
    return kElementwiseGrain;
  else
    return kElementwiseGrain / 4;  // transcendental: more work per element
}

template <typename T, typename R, typename Op>
void unary_kernel(const KernelArgs& a) {
  const Op op = make_op<Op>(a.params);
  const Tensor* ts[2] = {a.out[0], a.in[0]};
  for_each_run<2>(ts, grain_for<Op>(), [&](char* const* p, const int64_t* st, int64_t n) {
    unary_run<T, R, Op>(p[0], p[1], st[0], st[1], n, op);
  });
}

template <typename Op, bool BoolOut, DType... Ds>
void reg_unary(KernelRegistry& reg, uint16_t backend, const char* name) {
  (reg.add(name, backend, KernelKey{Ds},
           &unary_kernel<typename StorageOf<Ds>::type,
                         std::conditional_t<BoolOut, uint8_t, typename StorageOf<Ds>::type>, Op>),
   ...);
}

#define FLAGOS_FLOATS DType::f32, DType::f64, DType::f16, DType::bf16
#define FLAGOS_INTS DType::i8, DType::u8, DType::i16, DType::i32, DType::i64

}  // namespace

void register_unary(KernelRegistry& reg, uint16_t b) {
  reg_unary<Neg, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "neg");
  reg_unary<Abs, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "abs");
  reg_unary<Sign, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "sign");
  reg_unary<Exp, false, FLAGOS_FLOATS>(reg, b, "exp");
  reg_unary<Expm1, false, FLAGOS_FLOATS>(reg, b, "expm1");
  reg_unary<Log, false, FLAGOS_FLOATS>(reg, b, "log");
  reg_unary<Log1p, false, FLAGOS_FLOATS>(reg, b, "log1p");
  reg_unary<Sqrt, false, FLAGOS_FLOATS>(reg, b, "sqrt");
  reg_unary<Rsqrt, false, FLAGOS_FLOATS>(reg, b, "rsqrt");
  reg_unary<Reciprocal, false, FLAGOS_FLOATS>(reg, b, "reciprocal");
  reg_unary<Sin, false, FLAGOS_FLOATS>(reg, b, "sin");
  reg_unary<Cos, false, FLAGOS_FLOATS>(reg, b, "cos");
  reg_unary<Tanh, false, FLAGOS_FLOATS>(reg, b, "tanh");
  reg_unary<Sigmoid, false, FLAGOS_FLOATS>(reg, b, "sigmoid");
  reg_unary<Relu, false, FLAGOS_FLOATS>(reg, b, "relu");
  reg_unary<Silu, false, FLAGOS_FLOATS>(reg, b, "silu");
  reg_unary<Gelu, false, FLAGOS_FLOATS>(reg, b, "gelu");
  reg_unary<GeluTanh, false, FLAGOS_FLOATS>(reg, b, "gelu_tanh");
  reg_unary<Erf, false, FLAGOS_FLOATS>(reg, b, "erf");
  reg_unary<Floor, false, FLAGOS_FLOATS>(reg, b, "floor");
  reg_unary<Ceil, false, FLAGOS_FLOATS>(reg, b, "ceil");
  reg_unary<Round, false, FLAGOS_FLOATS>(reg, b, "round");
  reg_unary<Softplus, false, FLAGOS_FLOATS>(reg, b, "softplus");
  reg_unary<IsNan, true, FLAGOS_FLOATS>(reg, b, "isnan");
  reg_unary<IsInf, true, FLAGOS_FLOATS>(reg, b, "isinf");
  reg_unary<LogicalNot, true, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "logical_not");
}

}  // namespace flagos::cpu::FLAGOS_ISA
