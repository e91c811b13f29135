// Elementwise ops: unary (+ softplus), binary with broadcasting and type promotion (tensor-tensor
// and tensor-scalar), where, clamp, lerp. Kernels receive inputs already broadcast (stride-0
// views) and converted to the compute dtype, so they only see same-shaped tensors of one dtype.
#include <cmath>

#include "ops/op_common.h"

namespace flagos::ops {
namespace {

using detail::prepare_out;

bool integral_value(double v) { return std::isfinite(v) && v == std::floor(v); }

// A tensor in `dtype` (a cast copy when it differs).
Tensor as_dtype(const Tensor& x, DType dtype) { return x.dtype() == dtype ? x : cast(x, dtype); }

void check_plain(const char* op, const Tensor& t, const char* arg) {
  detail::check_defined(op, t, arg);
  FLAGOS_CHECK(!is_quant(t.dtype()), op, ": argument '", arg, "' has quantized dtype ", t.dtype(),
               "; dequantize it first");
}

// ---------------------------------------------------------------- unary
enum class UnaryKind { same, float_only, to_bool };

Tensor unary(const char* name, uint16_t id, UnaryKind kind, const Tensor& x, const Tensor& out,
             const void* params = nullptr) {
  check_plain(name, x, "x");
  const Device dev = x.device();
  DType out_dtype = x.dtype();
  if (kind == UnaryKind::float_only && !is_float(x.dtype())) out_dtype = DType::f32;
  if (kind == UnaryKind::to_bool) out_dtype = DType::boolean;
  Tensor o = prepare_out(name, out, x.shape(), out_dtype, dev);
  if (kind == UnaryKind::float_only && out_dtype != x.dtype()) {
    const Tensor xf = cast(x, out_dtype);  // integer/bool input computes in f32
    launch(id, KernelKey{out_dtype}, dev, {&xf}, {&o}, params);
    return o;
  }
  detail::check_inplace_ok(name, o, x);
  launch(id, KernelKey{x.dtype()}, dev, {&x}, {&o}, params);
  return o;
}

}  // namespace


#define FLAGOS_DEFINE_FLOAT_UNARY(op)                                            \
  Tensor op(const Tensor& x, const Tensor& out) {                                \
    static const uint16_t id = detail::op_id(#op);                               \
    return unary(#op, id, UnaryKind::float_only, x, out);                        \
  }
FLAGOS_DEFINE_FLOAT_UNARY(exp)
FLAGOS_DEFINE_FLOAT_UNARY(expm1)
FLAGOS_DEFINE_FLOAT_UNARY(log)
FLAGOS_DEFINE_FLOAT_UNARY(log1p)
FLAGOS_DEFINE_FLOAT_UNARY(sqrt)
FLAGOS_DEFINE_FLOAT_UNARY(rsqrt)
FLAGOS_DEFINE_FLOAT_UNARY(reciprocal)
FLAGOS_DEFINE_FLOAT_UNARY(sin)
FLAGOS_DEFINE_FLOAT_UNARY(cos)
FLAGOS_DEFINE_FLOAT_UNARY(tanh)
FLAGOS_DEFINE_FLOAT_UNARY(sigmoid)
FLAGOS_DEFINE_FLOAT_UNARY(relu)
FLAGOS_DEFINE_FLOAT_UNARY(silu)
FLAGOS_DEFINE_FLOAT_UNARY(gelu)
FLAGOS_DEFINE_FLOAT_UNARY(gelu_tanh)
FLAGOS_DEFINE_FLOAT_UNARY(erf)
FLAGOS_DEFINE_FLOAT_UNARY(floor)
FLAGOS_DEFINE_FLOAT_UNARY(ceil)
FLAGOS_DEFINE_FLOAT_UNARY(round)
#undef FLAGOS_DEFINE_FLOAT_UNARY

Tensor neg(const Tensor& x, const Tensor& out) {
  static const uint16_t id = detail::op_id("neg");
  return unary("neg", id, UnaryKind::same, x, out);
}
Tensor abs(const Tensor& x, const Tensor& out) {
  static const uint16_t id = detail::op_id("abs");
  return unary("abs", id, UnaryKind::same, x, out);
}
Tensor sign(const Tensor& x, const Tensor& out) {
  static const uint16_t id = detail::op_id("sign");
  return unary("sign", id, UnaryKind::same, x, out);
}
Tensor logical_not(const Tensor& x, const Tensor& out) {
  static const uint16_t id = detail::op_id("logical_not");
  check_plain("logical_not", x, "x");
  Tensor o = prepare_out("logical_not", out, x.shape(), DType::boolean, x.device());
  if (x.dtype() == DType::boolean) detail::check_inplace_ok("logical_not", o, x);
  else detail::check_no_overlap("logical_not", o, x);
  launch(id, KernelKey{x.dtype()}, x.device(), {&x}, {&o});
  return o;
}

namespace {
// isnan / isinf: integers have neither, so the result is all false without a kernel.
Tensor float_predicate(const char* name, uint16_t id, const Tensor& x, const Tensor& out) {
  check_plain(name, x, "x");
  Tensor o = prepare_out(name, out, x.shape(), DType::boolean, x.device());
  if (!is_float(x.dtype())) {
    fill(o, 0.0);
    return o;
  }
  detail::check_no_overlap(name, o, x);
  launch(id, KernelKey{x.dtype()}, x.device(), {&x}, {&o});
  return o;
}
}  // namespace

Tensor isnan(const Tensor& x, const Tensor& out) {
  static const uint16_t id = detail::op_id("isnan");
  return float_predicate("isnan", id, x, out);
}
Tensor isinf(const Tensor& x, const Tensor& out) {
  static const uint16_t id = detail::op_id("isinf");
  return float_predicate("isinf", id, x, out);
}

Tensor softplus(const Tensor& x, double beta, double threshold, const Tensor& out) {
  static const uint16_t id = detail::op_id("softplus");
  FLAGOS_CHECK(std::isfinite(beta) && beta != 0.0, "softplus: beta must be finite and non-zero, got ", beta);
  const SoftplusParams p{beta, threshold};
  return unary("softplus", id, UnaryKind::float_only, x, out, &p);
}

// ---------------------------------------------------------------- binary
namespace {

enum class BinaryKind {
  arith,       // result in the promoted dtype (bool not supported)
  float_only,  // div, pow: integer/bool promote to f32
  compare,     // computed in the promoted dtype, result bool
  logical,     // computed in the promoted dtype, result bool
};

DType compute_dtype(BinaryKind kind, DType promoted) {
  if (kind == BinaryKind::float_only && !is_float(promoted)) return DType::f32;
  return promoted;
}

// Result dtype of tensor (op) python scalar, torch-style: a scalar does not widen a tensor of
// its own category; a non-integral scalar makes an integer/bool tensor f32; an integral one
// makes a bool tensor i64 for arithmetic.
DType scalar_promote(BinaryKind kind, DType t, double v) {
  if (is_float(t)) return t;
  if (!integral_value(v)) return DType::f32;
  if (t == DType::boolean && (kind == BinaryKind::arith || kind == BinaryKind::compare)) return DType::i64;
  return t;
}

Tensor binary_tt(const char* name, uint16_t id, BinaryKind kind, const Tensor& a, const Tensor& b, const Tensor& out) {
  check_plain(name, a, "a");
  check_plain(name, b, "b");
  const Device dev = detail::common_device(name, {&a, &b});
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), name);
  const DType ct = compute_dtype(kind, promote_types(a.dtype(), b.dtype()));
  const DType od = (kind == BinaryKind::compare || kind == BinaryKind::logical) ? DType::boolean : ct;
  Tensor o = prepare_out(name, out, shape, od, dev);
  // Inputs in the compute dtype, broadcast to the output shape (stride-0 views).
  Tensor ac, bc;
  const Tensor* pa = &a;
  const Tensor* pb = &b;
  if (a.dtype() != ct) {
    ac = cast(a, ct);
    pa = &ac;
  }
  if (b.dtype() != ct) {
    bc = cast(b, ct);
    pb = &bc;
  }
  if (pa->shape() != shape) {
    ac = pa->expand(shape);
    pa = &ac;
  }
  if (pb->shape() != shape) {
    bc = pb->expand(shape);
    pb = &bc;
  }
  if (o.dtype() == pa->dtype()) detail::check_inplace_ok(name, o, *pa);
  else detail::check_no_overlap(name, o, *pa);
  if (o.dtype() == pb->dtype()) detail::check_inplace_ok(name, o, *pb);
  else detail::check_no_overlap(name, o, *pb);
  launch(id, KernelKey{ct}, dev, {pa, pb}, {&o});
  return o;
}

Tensor binary_ts(const char* name, uint16_t id, BinaryKind kind, const Tensor& a, double b, const Tensor& out) {
  check_plain(name, a, "a");
  const DType ct = compute_dtype(kind, scalar_promote(kind, a.dtype(), b));
  if (!is_float(ct))
    FLAGOS_CHECK(integral_value(b) && std::fabs(b) < 9.2e18, name, ": scalar ", b,
                 " is not an integer representable in ", ct);
  const DType od = (kind == BinaryKind::compare || kind == BinaryKind::logical) ? DType::boolean : ct;
  Tensor o = prepare_out(name, out, a.shape(), od, a.device());
  Tensor ac;
  const Tensor* pa = &a;
  if (a.dtype() != ct) {
    ac = cast(a, ct);
    pa = &ac;
  }
  if (o.dtype() == pa->dtype()) detail::check_inplace_ok(name, o, *pa);
  else detail::check_no_overlap(name, o, *pa);
  const ScalarParams p{b, 0.0};
  launch(id, KernelKey{ct}, a.device(), {pa}, {&o}, &p);
  return o;
}

}  // namespace

#define FLAGOS_DEFINE_BINARY(op, kind)                                       \
  Tensor op(const Tensor& a, const Tensor& b, const Tensor& out) {           \
    static const uint16_t id = detail::op_id(#op);                           \
    return binary_tt(#op, id, BinaryKind::kind, a, b, out);                  \
  }                                                                          \
  Tensor op(const Tensor& a, double b, const Tensor& out) {                  \
    static const uint16_t id = detail::op_id(#op);                           \
    return binary_ts(#op, id, BinaryKind::kind, a, b, out);                  \
  }
FLAGOS_DEFINE_BINARY(add, arith)
FLAGOS_DEFINE_BINARY(sub, arith)
FLAGOS_DEFINE_BINARY(mul, arith)
FLAGOS_DEFINE_BINARY(div, float_only)
FLAGOS_DEFINE_BINARY(pow, float_only)
FLAGOS_DEFINE_BINARY(maximum, arith)
FLAGOS_DEFINE_BINARY(minimum, arith)
FLAGOS_DEFINE_BINARY(remainder, arith)
FLAGOS_DEFINE_BINARY(eq, compare)
FLAGOS_DEFINE_BINARY(ne, compare)
FLAGOS_DEFINE_BINARY(lt, compare)
FLAGOS_DEFINE_BINARY(le, compare)
FLAGOS_DEFINE_BINARY(gt, compare)
FLAGOS_DEFINE_BINARY(ge, compare)
FLAGOS_DEFINE_BINARY(logical_and, logical)
FLAGOS_DEFINE_BINARY(logical_or, logical)
#undef FLAGOS_DEFINE_BINARY

// ---------------------------------------------------------------- where / clamp / lerp
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  static const uint16_t id = detail::op_id("where");
  check_plain("where", cond, "cond");
  check_plain("where", a, "a");
  check_plain("where", b, "b");
  FLAGOS_CHECK(cond.dtype() == DType::boolean, "where: cond must be bool, got ", cond.dtype());
  const Device dev = detail::common_device("where", {&cond, &a, &b});
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  const DType ct = promote_types(a.dtype(), b.dtype());
  Tensor o = prepare_out("where", out, shape, ct, dev);
  const Tensor c = cond.shape() == shape ? cond : cond.expand(shape);
  const Tensor ae = as_dtype(a, ct).expand(shape);
  const Tensor be = as_dtype(b, ct).expand(shape);
  detail::check_no_overlap("where", o, c);
  detail::check_inplace_ok("where", o, ae);
  detail::check_inplace_ok("where", o, be);
  launch(id, KernelKey{ct}, dev, {&c, &ae, &be}, {&o});
  return o;
}

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi, const Tensor& out) {
  static const uint16_t id = detail::op_id("clamp");
  check_plain("clamp", x, "x");
  FLAGOS_CHECK(!lo || !std::isnan(*lo), "clamp: lower bound is NaN");
  FLAGOS_CHECK(!hi || !std::isnan(*hi), "clamp: upper bound is NaN");
  DType ct = x.dtype();
  FLAGOS_CHECK(ct != DType::boolean, "clamp: bool tensors are not supported");
  if (!is_float(ct) && ((lo && !integral_value(*lo) && std::isfinite(*lo)) || (hi && !integral_value(*hi) && std::isfinite(*hi))))
    ct = DType::f32;  // torch: a fractional bound makes an integer tensor float
  Tensor o = prepare_out("clamp", out, x.shape(), ct, x.device());
  const Tensor xc = as_dtype(x, ct);
  detail::check_inplace_ok("clamp", o, xc);
  const ScalarParams p{lo ? *lo : -INFINITY, hi ? *hi : INFINITY};
  launch(id, KernelKey{ct}, x.device(), {&xc}, {&o}, &p);
  return o;
}

Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight, const Tensor& out) {
  static const uint16_t id = detail::op_id("lerp");
  check_plain("lerp", start, "start");
  check_plain("lerp", end, "end");
  check_plain("lerp", weight, "weight");
  const Device dev = detail::common_device("lerp", {&start, &end, &weight});
  const Shape shape =
      broadcast_shapes(broadcast_shapes(start.shape(), end.shape(), "lerp"), weight.shape(), "lerp");
  const DType ct = promote_types(promote_types(start.dtype(), end.dtype()), weight.dtype());
  FLAGOS_CHECK(is_float(ct), "lerp: expects floating-point tensors, got ", start.dtype(), ", ", end.dtype(), ", ",
               weight.dtype());
  Tensor o = prepare_out("lerp", out, shape, ct, dev);
  const Tensor s = as_dtype(start, ct).expand(shape);
  const Tensor e = as_dtype(end, ct).expand(shape);
  const Tensor w = as_dtype(weight, ct).expand(shape);
  detail::check_inplace_ok("lerp", o, s);
  detail::check_inplace_ok("lerp", o, e);
  detail::check_inplace_ok("lerp", o, w);
  launch(id, KernelKey{ct}, dev, {&s, &e, &w}, {&o});
  return o;
}

Tensor lerp(const Tensor& start, const Tensor& end, double weight, const Tensor& out) {
  static const uint16_t id = detail::op_id("lerp");
  check_plain("lerp", start, "start");
  check_plain("lerp", end, "end");
  const Device dev = detail::common_device("lerp", {&start, &end});
  const Shape shape = broadcast_shapes(start.shape(), end.shape(), "lerp");
  const DType ct = promote_types(start.dtype(), end.dtype());
  FLAGOS_CHECK(is_float(ct), "lerp: expects floating-point tensors, got ", start.dtype(), ", ", end.dtype());
  Tensor o = prepare_out("lerp", out, shape, ct, dev);
  const Tensor s = as_dtype(start, ct).expand(shape);
  const Tensor e = as_dtype(end, ct).expand(shape);
  detail::check_inplace_ok("lerp", o, s);
  detail::check_inplace_ok("lerp", o, e);
  const ScalarParams p{weight, 0.0};
  launch(id, KernelKey{ct}, dev, {&s, &e}, {&o}, &p);
  return o;
}

}  // namespace flagos::ops
