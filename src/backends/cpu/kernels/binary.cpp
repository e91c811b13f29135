// Binary elementwise kernels (tensor-tensor, and tensor-scalar when the op passes one input
// and the scalar in ScalarParams::a), plus where, clamp and lerp. Inputs arrive broadcast to
// the output's shape (stride-0 dims) and already in the compute dtype.
#include <cmath>
#include <limits>
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
using U = std::make_unsigned_t<C>;

// ---- op functors on the compute type ----
struct Add {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>)
      return static_cast<C>(static_cast<U<C>>(x) + static_cast<U<C>>(y));
    else
      return x + y;
  }
};
struct Sub {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>)
      return static_cast<C>(static_cast<U<C>>(x) - static_cast<U<C>>(y));
    else
      return x - y;
  }
};
struct Mul {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_integral_v<C>) {
      using W = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, U<C>>;  // no int promotion
      return static_cast<C>(static_cast<W>(static_cast<U<C>>(x)) * static_cast<W>(static_cast<U<C>>(y)));
    } else {
      return x * y;
    }
  }
};
struct Div {
  template <typename C>
  C operator()(C x, C y) const { return x / y; }
};
struct Pow {
  template <typename C>
  C operator()(C x, C y) const { return std::pow(x, y); }
};
struct Maximum {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>)
      return x != x ? x : (y != y ? y : (x > y ? x : y));
    else
      return x > y ? x : y;
  }
};
struct Minimum {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>)
      return x != x ? x : (y != y ? y : (x < y ? x : y));
    else
      return x < y ? x : y;
  }
};
// Python semantics: the result has the sign of the divisor. Integer division by zero gives 0.
struct Remainder {
  template <typename C>
  C operator()(C x, C y) const {
    if constexpr (std::is_floating_point_v<C>) {
      C r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return r;
    } else if constexpr (std::is_unsigned_v<C>) {
      return y == 0 ? C(0) : static_cast<C>(x % y);
    } else {
      if (y == 0 || y == -1) return C(0);
      C r = static_cast<C>(x % y);
      if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
      return r;
    }
  }
};
#define FLAGOS_CMP(Name, expr)                                \
  struct Name {                                               \
    template <typename C>                                     \
    bool operator()(C x, C y) const { return expr; }          \
  };
FLAGOS_CMP(Eq, x == y)
FLAGOS_CMP(Ne, x != y)
FLAGOS_CMP(Lt, x < y)
FLAGOS_CMP(Le, x <= y)
FLAGOS_CMP(Gt, x > y)
FLAGOS_CMP(Ge, x >= y)
FLAGOS_CMP(LogicalAnd, x != C(0) && y != C(0))
FLAGOS_CMP(LogicalOr, x != C(0) || y != C(0))
#undef FLAGOS_CMP

// A double scalar in the compute type (integers: the op layer checked it is integral).
template <typename C>
C scalar_as(double v) {
  if constexpr (std::is_floating_point_v<C>) {
    return static_cast<C>(v);
  } else {
    if (!(v >= -9.2e18 && v <= 9.2e18)) v = 0;  // out of range/NaN never reaches here from the op layer
    return static_cast<C>(static_cast<U<int64_t>>(static_cast<int64_t>(v)));
  }
}

// One run of n elements. When `yconst` is set, y is that constant (tensor-scalar or a stride-0
// run); sy is then ignored.
template <typename T, typename R, typename Op>
void binary_run(char* po, const char* px, const char* py, int64_t so, int64_t sx, int64_t sy, int64_t n,
                const Op& op, bool has_yconst, typename Io<T>::compute yconst) {
  using C = typename Io<T>::compute;
  constexpr int64_t ST = sizeof(T), SR = sizeof(R);
  if (!has_yconst && sy == 0) {
    has_yconst = true;
    yconst = Io<T>::load(py);
  }
  if constexpr (kHalf<T>) {
    if (so == SR && (sx == ST || sx == 0) && (has_yconst || sy == ST)) {
      constexpr int64_t B = 256;
      float bx[B], by[B], bo[B];
      for (int64_t i = 0; i < n; i += B) {
        const int64_t m = std::min(B, n - i);
        if (sx == 0)
          for (int64_t j = 0; j < m; ++j) bx[j] = Io<T>::load(px);
        else
          cvt_to_f32(reinterpret_cast<const T*>(px) + i, bx, m);
        if (has_yconst)
          for (int64_t j = 0; j < m; ++j) by[j] = yconst;
        else
          cvt_to_f32(reinterpret_cast<const T*>(py) + i, by, m);
        if constexpr (std::is_same_v<R, T>) {
          for (int64_t j = 0; j < m; ++j) bo[j] = op(bx[j], by[j]);
          cvt_from_f32(bo, reinterpret_cast<T*>(po) + i, m);
        } else {
          R* o = reinterpret_cast<R*>(po) + i;
          for (int64_t j = 0; j < m; ++j) o[j] = static_cast<R>(op(bx[j], by[j]));
        }
      }
      return;
    }
  } else {
    R* o = reinterpret_cast<R*>(po);
    const T* x = reinterpret_cast<const T*>(px);
    const T* y = reinterpret_cast<const T*>(py);
    if (so == SR && sx == ST) {
      if (has_yconst) {
        const C yv = yconst;
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<R>(op(x[i], yv));
        return;
      }
      if (sy == ST) {
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<R>(op(x[i], y[i]));
        return;
      }
    } else if (so == SR && sx == 0 && !has_yconst && sy == ST) {
      const C xv = x[0];
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<R>(op(xv, y[i]));
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const C xv = Io<T>::load(px + i * sx);
    const C yv = has_yconst ? yconst : Io<T>::load(py + i * sy);
    if constexpr (std::is_same_v<R, T>)
      Io<R>::store(po + i * so, op(xv, yv));
    else
      Io<R>::store(po + i * so, static_cast<R>(op(xv, yv)));
  }
}

template <typename Op>
constexpr int64_t binary_grain() {
  return std::is_same_v<Op, Pow> || std::is_same_v<Op, Remainder> ? kElementwiseGrain / 8 : kElementwiseGrain;
}

template <typename T, typename R, typename Op>
void binary_kernel(const KernelArgs& a) {
  using C = typename Io<T>::compute;
  const Op op{};
  if (a.in.size() == 1) {  // tensor-scalar
    const C yv = static_cast<C>(scalar_as<std::conditional_t<kHalf<T>, float, T>>(a.p<ScalarParams>().a));
    const Tensor* ts[2] = {a.out[0], a.in[0]};
    for_each_run<2>(ts, binary_grain<Op>(), [&](char* const* p, const int64_t* st, int64_t n) {
      binary_run<T, R, Op>(p[0], p[1], nullptr, st[0], st[1], 0, n, op, true, yv);
    });
    return;
  }
  const Tensor* ts[3] = {a.out[0], a.in[0], a.in[1]};
  for_each_run<3>(ts, binary_grain<Op>(), [&](char* const* p, const int64_t* st, int64_t n) {
    binary_run<T, R, Op>(p[0], p[1], p[2], st[0], st[1], st[2], n, op, false, C{});
  });
}

// ---- where(cond, a, b) ----
template <typename T>
void where_kernel(const KernelArgs& a) {
  const Tensor* ts[4] = {a.out[0], a.in[0], a.in[1], a.in[2]};
  for_each_run<4>(ts, kElementwiseGrain, [&](char* const* p, const int64_t* st, int64_t n) {
    constexpr int64_t ST = sizeof(T);
    if (st[0] == ST && st[1] == 1 && st[2] == ST && st[3] == ST) {
      T* o = reinterpret_cast<T*>(p[0]);
      const uint8_t* c = reinterpret_cast<const uint8_t*>(p[1]);
      const T* x = reinterpret_cast<const T*>(p[2]);
      const T* y = reinterpret_cast<const T*>(p[3]);
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
      return;
    }
    for (int64_t i = 0; i < n; ++i) {  // bytes are copied as is: no conversion needed
      const char* src = p[1][i * st[1]] ? p[2] + i * st[2] : p[3] + i * st[3];
      std::memcpy(p[0] + i * st[0], src, sizeof(T));
    }
  });
}

// ---- clamp(x, lo, hi): ScalarParams{a = lo, b = hi}, +-inf for an absent bound ----
template <typename T>
void clamp_kernel(const KernelArgs& a) {
  using C = typename Io<T>::compute;
  const auto& sp = a.p<ScalarParams>();
  C lo, hi;
  if constexpr (std::is_floating_point_v<C>) {
    lo = static_cast<C>(sp.a);
    hi = static_cast<C>(sp.b);
  } else {
    const double mn = static_cast<double>(std::numeric_limits<C>::lowest());
    const double mx = static_cast<double>(std::numeric_limits<C>::max());
    lo = sp.a <= mn ? std::numeric_limits<C>::lowest() : (sp.a >= mx ? std::numeric_limits<C>::max() : static_cast<C>(sp.a));
    hi = sp.b <= mn ? std::numeric_limits<C>::lowest() : (sp.b >= mx ? std::numeric_limits<C>::max() : static_cast<C>(sp.b));
  }
  auto f = [lo, hi](C v) {
    C r = v < lo ? lo : v;
    return r > hi ? hi : r;  // lo > hi gives hi everywhere (torch)
  };
  const Tensor* ts[2] = {a.out[0], a.in[0]};
  for_each_run<2>(ts, kElementwiseGrain, [&](char* const* p, const int64_t* st, int64_t n) {
    if constexpr (kHalf<T>) {
      if (st[0] == 2 && st[1] == 2) {
        constexpr int64_t B = 256;
        float buf[B];
        for (int64_t i = 0; i < n; i += B) {
          const int64_t m = std::min(B, n - i);
          cvt_to_f32(reinterpret_cast<const T*>(p[1]) + i, buf, m);
          for (int64_t j = 0; j < m; ++j) buf[j] = f(buf[j]);
          cvt_from_f32(buf, reinterpret_cast<T*>(p[0]) + i, m);
        }
        return;
      }
    } else {
      if (st[0] == sizeof(T) && st[1] == sizeof(T)) {
        T* o = reinterpret_cast<T*>(p[0]);
        const T* x = reinterpret_cast<const T*>(p[1]);
        for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i) Io<T>::store(p[0] + i * st[0], f(Io<T>::load(p[1] + i * st[1])));
  });
}

// ---- lerp(start, end, weight): weight a tensor (in[2]) or ScalarParams::a ----
template <typename C>
inline C lerp1(C s, C e, C w) {
  const C d = e - s;
  return (w < C(0.5) && w > C(-0.5)) ? s + w * d : e - d * (C(1) - w);
}
template <typename T>
void lerp_kernel(const KernelArgs& a) {
  using C = typename Io<T>::compute;
  if (a.in.size() == 2) {
    const C w = static_cast<C>(a.p<ScalarParams>().a);
    const Tensor* ts[3] = {a.out[0], a.in[0], a.in[1]};
    for_each_run<3>(ts, kElementwiseGrain, [&](char* const* p, const int64_t* st, int64_t n) {
      if constexpr (!kHalf<T>) {
        if (st[0] == sizeof(T) && st[1] == sizeof(T) && st[2] == sizeof(T)) {
          T* o = reinterpret_cast<T*>(p[0]);
          const T* x = reinterpret_cast<const T*>(p[1]);
          const T* y = reinterpret_cast<const T*>(p[2]);
          for (int64_t i = 0; i < n; ++i) o[i] = lerp1<C>(x[i], y[i], w);
          return;
        }
      }
      for (int64_t i = 0; i < n; ++i)
        Io<T>::store(p[0] + i * st[0], lerp1<C>(Io<T>::load(p[1] + i * st[1]), Io<T>::load(p[2] + i * st[2]), w));
    });
    return;
  }
  const Tensor* ts[4] = {a.out[0], a.in[0], a.in[1], a.in[2]};
  for_each_run<4>(ts, kElementwiseGrain, [&](char* const* p, const int64_t* st, int64_t n) {
    if constexpr (!kHalf<T>) {
      if (st[0] == sizeof(T) && st[1] == sizeof(T) && st[2] == sizeof(T) && st[3] == sizeof(T)) {
        T* o = reinterpret_cast<T*>(p[0]);
        const T* x = reinterpret_cast<const T*>(p[1]);
        const T* y = reinterpret_cast<const T*>(p[2]);
        const T* w = reinterpret_cast<const T*>(p[3]);
        for (int64_t i = 0; i < n; ++i) o[i] = lerp1<C>(x[i], y[i], w[i]);
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i)
      Io<T>::store(p[0] + i * st[0], lerp1<C>(Io<T>::load(p[1] + i * st[1]), Io<T>::load(p[2] + i * st[2]),
                                              Io<T>::load(p[3] + i * st[3])));
  });
}

template <typename Op, bool BoolOut, DType... Ds>
void reg_binary(KernelRegistry& reg, uint16_t backend, const char* name) {
  (reg.add(name, backend, KernelKey{Ds},
           &binary_kernel<typename StorageOf<Ds>::type,
                          std::conditional_t<BoolOut, uint8_t, typename StorageOf<Ds>::type>, Op>),
   ...);
}

#define FLAGOS_FLOATS DType::f32, DType::f64, DType::f16, DType::bf16
#define FLAGOS_INTS DType::i8, DType::u8, DType::i16, DType::i32, DType::i64

}  // namespace

void register_binary(KernelRegistry& reg, uint16_t b) {
  reg_binary<Add, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "add");
  reg_binary<Sub, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "sub");
  reg_binary<Mul, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "mul");
  reg_binary<Div, false, FLAGOS_FLOATS>(reg, b, "div");
  reg_binary<Pow, false, FLAGOS_FLOATS>(reg, b, "pow");
  reg_binary<Maximum, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "maximum");
  reg_binary<Minimum, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "minimum");
  reg_binary<Remainder, false, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "remainder");
  reg_binary<Eq, true, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "eq");
  reg_binary<Ne, true, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "ne");
  reg_binary<Lt, true, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "lt");
  reg_binary<Le, true, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "le");
  reg_binary<Gt, true, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "gt");
  reg_binary<Ge, true, FLAGOS_FLOATS, FLAGOS_INTS>(reg, b, "ge");
  reg_binary<LogicalAnd, true, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "logical_and");
  reg_binary<LogicalOr, true, FLAGOS_FLOATS, FLAGOS_INTS, DType::boolean>(reg, b, "logical_or");
#define FLAGOS_REG_ONE(fn, d) reg.add(#fn, b, KernelKey{DType::d}, &fn##_kernel<StorageOf<DType::d>::type>);
#define FLAGOS_REG_FLOATS(fn) \
  FLAGOS_REG_ONE(fn, f32) FLAGOS_REG_ONE(fn, f64) FLAGOS_REG_ONE(fn, f16) FLAGOS_REG_ONE(fn, bf16)
#define FLAGOS_REG_INTS(fn) \
  FLAGOS_REG_ONE(fn, i8) FLAGOS_REG_ONE(fn, u8) FLAGOS_REG_ONE(fn, i16) FLAGOS_REG_ONE(fn, i32) FLAGOS_REG_ONE(fn, i64)
  FLAGOS_REG_FLOATS(where)
  FLAGOS_REG_INTS(where)
  FLAGOS_REG_ONE(where, boolean)
  FLAGOS_REG_FLOATS(clamp)
  FLAGOS_REG_INTS(clamp)
  FLAGOS_REG_FLOATS(lerp)
#undef FLAGOS_REG_INTS
#undef FLAGOS_REG_FLOATS
#undef FLAGOS_REG_ONE
}

}  // namespace flagos::cpu::FLAGOS_ISA
