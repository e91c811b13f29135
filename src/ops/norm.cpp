// Normalization ops: rms_norm, layer_norm, add_rms_norm (over the last dim) and group_norm.
//
// Kernel contract. rms_norm / layer_norm / add_rms_norm: x (and residual, out) are handed to
// kernels as 2-D [rows, H] tensors with any strides (a view when the strides allow it, else a
// contiguous copy for inputs or a temporary for `out` that is copied back); weight/bias are 1-D
// [H] with any stride, or undefined tensors when absent. group_norm: x and out contiguous
// [N, C, S]. Kernels are keyed KernelKey{x dtype, weight dtype} where the weight (and bias)
// dtype is x's dtype or f32 (x's dtype when there is no weight).
#include "ops/op_common.h"

namespace flagos::ops {
namespace {

using detail::prepare_out;

Tensor try_view(const Tensor& t, const Shape& shape) {
  if (t.is_contiguous()) return t.view(shape);
  try {
    return t.view(shape);
  } catch (const InvalidArgument&) {
    return {};
  }
}

void check_x(const char* op, const Tensor& x) {
  detail::check_defined(op, x, "x");
  FLAGOS_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64 || x.dtype() == DType::f16 ||
                   x.dtype() == DType::bf16,
               op, ": x must be f32, f64, f16 or bf16, got ", x.dtype());
}

// Validates an optional weight/bias of shape [n]; returns its dtype (or x's when undefined).
DType check_param(const char* op, const Tensor& p, const char* name, int64_t n, const Tensor& x) {
  if (!p.defined()) return x.dtype();
  FLAGOS_CHECK(p.dim() == 1 && p.size(0) == n, op, ": ", name, " must have shape [", n, "], got ", p.shape(),
               " for x of shape ", x.shape());
  FLAGOS_CHECK(p.dtype() == x.dtype() || p.dtype() == DType::f32, op, ": ", name, " dtype ", p.dtype(),
               " must be x's dtype (", x.dtype(), ") or f32");
  FLAGOS_CHECK(p.device() == x.device(), op, ": ", name, " is on ", to_string(p.device()), ", x on ",
               to_string(x.device()));
  return p.dtype();
}

DType param_dtype(const char* op, const Tensor& w, const Tensor& b, int64_t n, const Tensor& x) {
  const DType wd = check_param(op, w, "weight", n, x);
  const DType bd = check_param(op, b, "bias", n, x);
  if (w.defined() && b.defined())
    FLAGOS_CHECK(wd == bd, op, ": weight (", wd, ") and bias (", bd, ") must have the same dtype");
  return w.defined() ? wd : bd;
}

int64_t last_dim(const char* op, const Tensor& x) {
  FLAGOS_CHECK(x.dim() >= 1, op, ": x must have at least 1 dim, got a 0-d tensor");
  return x.size(x.dim() - 1);
}

// Runs a [rows, H] kernel writing `o`, through a temporary when `o` is not viewable as 2-D.
template <typename F>
void with_rows(Tensor& o, const Shape& s2, F&& body) {
  Tensor v = try_view(o, s2);
  if (v.defined()) {
    body(v);
    return;
  }
  Tensor tmp = Tensor::empty(s2, o.dtype(), o.device());
  body(tmp);
  copy(o, tmp.view(o.shape()));
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps, const Tensor& out) {
  static const uint16_t id = detail::op_id("rms_norm");
  const char* op = "rms_norm";
  check_x(op, x);
  const int64_t h = last_dim(op, x);
  const DType wd = check_param(op, weight, "weight", h, x);
  FLAGOS_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Tensor o = prepare_out(op, out, x.shape(), x.dtype(), x.device());
  detail::check_inplace_ok(op, o, x);
  if (x.numel() == 0) return o;
  const Shape s2{x.numel() / h, h};
  const Tensor x2 = x.reshape(s2);
  const NormParams p{eps, 1};
  with_rows(o, s2, [&](Tensor& o2) { launch(id, KernelKey{x.dtype(), wd}, x.device(), {&x2, &weight}, {&o2}, &p); });
  return o;
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& out) {
  static const uint16_t id = detail::op_id("layer_norm");
  const char* op = "layer_norm";
  check_x(op, x);
  const int64_t h = last_dim(op, x);
  const DType wd = param_dtype(op, weight, bias, h, x);
  FLAGOS_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Tensor o = prepare_out(op, out, x.shape(), x.dtype(), x.device());
  detail::check_inplace_ok(op, o, x);
  if (x.numel() == 0) return o;
  const Shape s2{x.numel() / h, h};
  const Tensor x2 = x.reshape(s2);
  const NormParams p{eps, 1};
  with_rows(o, s2, [&](Tensor& o2) {
    launch(id, KernelKey{x.dtype(), wd}, x.device(), {&x2, &weight, &bias}, {&o2}, &p);
  });
  return o;
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& out) {
  static const uint16_t id = detail::op_id("group_norm");
  const char* op = "group_norm";
  check_x(op, x);
  FLAGOS_CHECK(x.dim() >= 2, op, ": x must be [N, C, *], got shape ", x.shape());
  const int64_t c = x.size(1);
  FLAGOS_CHECK(groups > 0 && c % groups == 0, op, ": groups (", groups, ") must be > 0 and divide the ", c,
               " channels of x ", x.shape());
  const DType wd = param_dtype(op, weight, bias, c, x);
  FLAGOS_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  Tensor o = prepare_out(op, out, x.shape(), x.dtype(), x.device());
  detail::check_inplace_ok(op, o, x);
  if (x.numel() == 0) return o;
  const int64_t n = x.size(0);
  const Shape s3{n, c, x.numel() / (n * c)};
  const Tensor x3 = x.contiguous().view(s3);
  const NormParams p{eps, groups};
  if (o.is_contiguous()) {
    Tensor o3 = o.view(s3);
    launch(id, KernelKey{x.dtype(), wd}, x.device(), {&x3, &weight, &bias}, {&o3}, &p);
  } else {
    Tensor tmp = Tensor::empty(s3, x.dtype(), x.device());
    launch(id, KernelKey{x.dtype(), wd}, x.device(), {&x3, &weight, &bias}, {&tmp}, &p);
    copy(o, tmp.view(x.shape()));
  }
  return o;
}

Tensor add_rms_norm(const Tensor& x, Tensor& residual, const Tensor& weight, double eps, const Tensor& out) {
  static const uint16_t id = detail::op_id("add_rms_norm");
  const char* op = "add_rms_norm";
  check_x(op, x);
  detail::check_defined(op, residual, "residual");
  FLAGOS_CHECK(residual.shape() == x.shape() && residual.dtype() == x.dtype(), op, ": residual ",
               residual.describe(), " must have x's shape and dtype (", x.describe(), ")");
  detail::common_device(op, {&x, &residual, &weight, &out});
  const int64_t h = last_dim(op, x);
  const DType wd = check_param(op, weight, "weight", h, x);
  FLAGOS_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  // residual is written in place: it may not broadcast or overlap x or the weight.
  prepare_out(op, residual, x.shape(), x.dtype(), x.device());
  detail::check_no_overlap(op, residual, x);
  if (weight.defined()) detail::check_no_overlap(op, residual, weight);
  Tensor o = prepare_out(op, out, x.shape(), x.dtype(), x.device());
  FLAGOS_CHECK(!detail::overlaps(o, residual), op, ": out ", o.describe(), " may not alias residual ",
               residual.describe());
  detail::check_inplace_ok(op, o, x);
  if (x.numel() == 0) return o;
  const Shape s2{x.numel() / h, h};
  const Tensor x2 = x.reshape(s2);
  const NormParams p{eps, 1};
  Tensor r2 = try_view(residual, s2);
  const bool r_tmp = !r2.defined();
  if (r_tmp) r2 = residual.contiguous().view(s2);  // a copy, written back below
  with_rows(o, s2, [&](Tensor& o2) {
    launch(id, KernelKey{x.dtype(), wd}, x.device(), {&x2, &r2, &weight}, {&o2, &r2}, &p);
  });
  if (r_tmp) copy(residual, r2.view(residual.shape()));
  return o;
}

}  // namespace flagos::ops
