// Reductions (sum, mean, prod, amax/amin, max/min, argmax/argmin, var/std, norm, any/all,
// logsumexp), scans (cumsum, cumprod) and softmax / log_softmax.
//
// Kernel contract. Reductions: the kept dims are permuted first and the reduced dims last, and
// the result is reshaped to a 2-D [outer, inner] tensor (a view whenever the strides allow it,
// else reshape makes a contiguous copy). Kernels get in[0] = [outer, inner] with ANY strides and
// out[0] (out[1] = i64 indices for max/min) = [outer] with any stride. Scans and softmax: the
// dim is moved last and the rest flattened, so kernels get [rows, n] in and out (any strides).
// When a user-given `out` cannot be viewed that way the kernel writes a temporary that is
// copied into it.
//
// dtypes: float inputs keep their dtype (accumulating in f32, f64 for f64); integer/bool
// sum/prod/cumsum/cumprod give i64; mean/var/std/norm/logsumexp of integers compute in f32;
// any/all give bool.
#include <cmath>

#include "ops/op_common.h"

namespace flagos::ops {
namespace {

using detail::prepare_out;

void check_plain(const char* op, const Tensor& x) {
  detail::check_defined(op, x, "x");
  FLAGOS_CHECK(!is_quant(x.dtype()), op, ": x has quantized dtype ", x.dtype(), "; dequantize it first");
}

// `t` as `shape` without copying, or an undefined tensor when its strides do not allow it.
Tensor try_view(const Tensor& t, const Shape& shape) {
  if (t.is_contiguous()) return t.view(shape);
  try {
    return t.view(shape);
  } catch (const InvalidArgument&) {
    return {};
  }
}

// Runs `body(dst)` on a view of `o` shaped `shape`, or on a temporary copied into `o` afterwards.
template <typename F>
void with_view(Tensor& o, const Shape& shape, F&& body) {
  Tensor v = try_view(o, shape);
  if (v.defined()) {
    body(v);
    return;
  }
  Tensor tmp = Tensor::empty(shape, o.dtype(), o.device());
  body(tmp);
  copy(o, tmp.view(o.shape()));
}

struct Plan {
  Tensor in2d;      // [outer, inner]
  Shape out_shape;  // what the op returns
  int64_t outer = 1, inner = 1;
};

Plan plan_reduce(const Tensor& x, uint32_t mask, bool keepdim) {
  Plan p;
  p.out_shape = detail::reduced_shape(x.shape(), mask, keepdim);
  if (x.dim() == 0) {
    p.in2d = x.reshape({1, 1});
    return p;
  }
  Dims order;
  for (int i = 0; i < x.dim(); ++i)
    if (!(mask & (1u << i))) order.push_back(i), p.outer *= x.size(i);
  for (int i = 0; i < x.dim(); ++i)
    if (mask & (1u << i)) order.push_back(i), p.inner *= x.size(i);
  p.in2d = x.permute(order).reshape({p.outer, p.inner});
  return p;
}

enum class NeedNonEmpty { no, yes };

// Validates, plans and launches a reduction writing one [outer] output (and optionally indices).
Tensor reduce(const char* op, uint16_t id, const Tensor& x0, const Dims& dims, bool keepdim, DType out_dtype,
              DType compute, const Tensor& out, const ReduceParams* params, NeedNonEmpty need,
              Tensor* indices = nullptr) {
  check_plain(op, x0);
  uint32_t mask = 0;
  if (x0.dim() == 0) {  // a 0-d tensor reduces over dim 0 / -1 (or none) as if it were [1]
    for (int64_t d : dims) FLAGOS_CHECK(d == 0 || d == -1, op, ": dim ", d, " is out of range for a 0-d tensor");
  } else {
    mask = detail::reduce_mask(op, dims, x0.dim());
  }
  const Tensor x = detail::to_dtype(x0, compute);
  Plan p = plan_reduce(x, mask, keepdim);
  FLAGOS_CHECK(need == NeedNonEmpty::no || p.inner > 0 || p.outer == 0, op, ": cannot reduce ", x0.shape(),
               " over dims ", dims, " that contain no elements (the result is undefined)");
  Tensor o = prepare_out(op, out, p.out_shape, out_dtype, x0.device());
  if (indices) *indices = Tensor::empty(p.out_shape, DType::i64, x0.device());
  if (p.outer == 0) return o;
  const Shape flat{p.outer};
  const ReduceParams dflt{};
  const ReduceParams* prm = params ? params : &dflt;
  with_view(o, flat, [&](Tensor& ov) {
    if (indices) {
      Tensor iv = indices->view(flat);
      launch(id, KernelKey{compute}, x0.device(), {&p.in2d}, {&ov, &iv}, prm);
    } else {
      launch(id, KernelKey{compute}, x0.device(), {&p.in2d}, {&ov}, prm);
    }
  });
  return o;
}

DType sum_dtype(DType t) { return is_float(t) ? t : DType::i64; }
DType float_dtype(DType t) { return is_float(t) ? t : DType::f32; }

// [rows, n] views of x and of the output for ops along one dim (scans, softmax).
struct RowPlan {
  Dims order;  // permutation moving `dim` last
  Shape permuted;
  int64_t rows = 1, n = 1;
};

RowPlan plan_rows(const char* op, const Tensor& x, int64_t dim) {
  RowPlan r;
  if (x.dim() == 0) {
    FLAGOS_CHECK(dim == 0 || dim == -1, op, ": dim ", dim, " is out of range for a 0-d tensor");
    return r;
  }
  const int d = normalize_dim(dim, x.dim(), op);
  for (int i = 0; i < x.dim(); ++i)
    if (i != d) r.order.push_back(i), r.rows *= x.size(i);
  r.order.push_back(d);
  r.n = x.size(d);
  return r;
}

enum class RowOut { same, sum_like };

Tensor along_dim(const char* op, uint16_t id, const Tensor& x, int64_t dim, const Tensor& out, bool float_only,
                 RowOut kind) {
  check_plain(op, x);
  FLAGOS_CHECK(!float_only || is_float(x.dtype()), op, ": x must be a float tensor, got ", x.dtype(),
               " (cast it first)");
  const RowPlan r = plan_rows(op, x, dim);
  const DType od = kind == RowOut::sum_like ? sum_dtype(x.dtype()) : x.dtype();
  Tensor o = prepare_out(op, out, x.shape(), od, x.device());
  detail::check_inplace_ok(op, o, x);
  if (x.numel() == 0) return o;
  const Shape s2{r.rows, r.n};
  const Tensor xin = x.dim() == 0 ? x.reshape(s2) : x.permute(r.order).reshape(s2);
  Tensor op_view = x.dim() == 0 ? o : o.permute(r.order);
  Tensor v = try_view(op_view, s2);
  if (v.defined() && !(detail::overlaps(v, xin) && xin.strides() != v.strides())) {
    launch(id, KernelKey{x.dtype()}, x.device(), {&xin}, {&v}, nullptr);
    return o;
  }
  Tensor tmp = Tensor::empty(s2, od, x.device());
  launch(id, KernelKey{x.dtype()}, x.device(), {&xin}, {&tmp}, nullptr);
  Tensor src = x.dim() == 0 ? tmp.view({}) : tmp.view(op_view.shape());
  copy(op_view, src);
  return o;
}

std::pair<Tensor, Tensor> max_min(const char* op, uint16_t id, const Tensor& x, int64_t dim, bool keepdim) {
  check_plain(op, x);
  FLAGOS_CHECK(x.dtype() != DType::boolean, op, ": bool input is not supported (cast it first)");
  Tensor idx;
  Tensor v = reduce(op, id, x, Dims{dim}, keepdim, x.dtype(), x.dtype(), {}, nullptr, NeedNonEmpty::yes, &idx);
  return {v, idx};
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim, const Tensor& out) {
  static const uint16_t id = detail::op_id("sum");
  check_plain("sum", x);
  return reduce("sum", id, x, dims, keepdim, sum_dtype(x.dtype()), x.dtype(), out, nullptr, NeedNonEmpty::no);
}

Tensor mean(const Tensor& x, const Dims& dims, bool keepdim, const Tensor& out) {
  static const uint16_t id = detail::op_id("mean");
  check_plain("mean", x);
  const DType t = float_dtype(x.dtype());
  return reduce("mean", id, x, dims, keepdim, t, t, out, nullptr, NeedNonEmpty::no);
}

Tensor prod(const Tensor& x, const Dims& dims, bool keepdim, const Tensor& out) {
  static const uint16_t id = detail::op_id("prod");
  check_plain("prod", x);
  return reduce("prod", id, x, dims, keepdim, sum_dtype(x.dtype()), x.dtype(), out, nullptr, NeedNonEmpty::no);
}

Tensor amax(const Tensor& x, const Dims& dims, bool keepdim, const Tensor& out) {
  static const uint16_t id = detail::op_id("amax");
  check_plain("amax", x);
  return reduce("amax", id, x, dims, keepdim, x.dtype(), x.dtype(), out, nullptr, NeedNonEmpty::yes);
}

Tensor amin(const Tensor& x, const Dims& dims, bool keepdim, const Tensor& out) {
  static const uint16_t id = detail::op_id("amin");
  check_plain("amin", x);
  return reduce("amin", id, x, dims, keepdim, x.dtype(), x.dtype(), out, nullptr, NeedNonEmpty::yes);
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  static const uint16_t id = detail::op_id("max");
  return max_min("max", id, x, dim, keepdim);
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  static const uint16_t id = detail::op_id("min");
  return max_min("min", id, x, dim, keepdim);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  static const uint16_t id = detail::op_id("argmax");
  check_plain("argmax", x);
  return reduce("argmax", id, x, Dims{dim}, keepdim, DType::i64, x.dtype(), {}, nullptr, NeedNonEmpty::yes);
}

Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  static const uint16_t id = detail::op_id("argmin");
  check_plain("argmin", x);
  return reduce("argmin", id, x, Dims{dim}, keepdim, DType::i64, x.dtype(), {}, nullptr, NeedNonEmpty::yes);
}

Tensor var(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  static const uint16_t id = detail::op_id("var");
  check_plain("var", x);
  FLAGOS_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction);
  const DType t = float_dtype(x.dtype());
  const ReduceParams p{correction, 2.0};
  return reduce("var", id, x, dims, keepdim, t, t, {}, &p, NeedNonEmpty::no);
}

Tensor std(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  static const uint16_t id = detail::op_id("std");
  check_plain("std", x);
  FLAGOS_CHECK(correction >= 0, "std: correction must be >= 0, got ", correction);
  const DType t = float_dtype(x.dtype());
  const ReduceParams p{correction, 2.0};
  return reduce("std", id, x, dims, keepdim, t, t, {}, &p, NeedNonEmpty::no);
}

Tensor norm(const Tensor& x, double p, const Dims& dims, bool keepdim) {
  static const uint16_t id = detail::op_id("norm");
  check_plain("norm", x);
  FLAGOS_CHECK(!std::isnan(p), "norm: p must not be NaN");
  const DType t = float_dtype(x.dtype());
  const ReduceParams prm{1, p};
  return reduce("norm", id, x, dims, keepdim, t, t, {}, &prm,
                p < 0 ? NeedNonEmpty::yes : NeedNonEmpty::no);
}

Tensor any(const Tensor& x, const Dims& dims, bool keepdim) {
  static const uint16_t id = detail::op_id("any");
  check_plain("any", x);
  return reduce("any", id, x, dims, keepdim, DType::boolean, x.dtype(), {}, nullptr, NeedNonEmpty::no);
}

Tensor all(const Tensor& x, const Dims& dims, bool keepdim) {
  static const uint16_t id = detail::op_id("all");
  check_plain("all", x);
  return reduce("all", id, x, dims, keepdim, DType::boolean, x.dtype(), {}, nullptr, NeedNonEmpty::no);
}

Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim) {
  static const uint16_t id = detail::op_id("logsumexp");
  check_plain("logsumexp", x);
  const DType t = float_dtype(x.dtype());
  return reduce("logsumexp", id, x, dims, keepdim, t, t, {}, nullptr, NeedNonEmpty::no);
}

Tensor cumsum(const Tensor& x, int64_t dim, const Tensor& out) {
  static const uint16_t id = detail::op_id("cumsum");
  return along_dim("cumsum", id, x, dim, out, false, RowOut::sum_like);
}

Tensor cumprod(const Tensor& x, int64_t dim, const Tensor& out) {
  static const uint16_t id = detail::op_id("cumprod");
  return along_dim("cumprod", id, x, dim, out, false, RowOut::sum_like);
}

Tensor softmax(const Tensor& x, int64_t dim, const Tensor& out) {
  static const uint16_t id = detail::op_id("softmax");
  return along_dim("softmax", id, x, dim, out, true, RowOut::same);
}

Tensor log_softmax(const Tensor& x, int64_t dim, const Tensor& out) {
  static const uint16_t id = detail::op_id("log_softmax");
  return along_dim("log_softmax", id, x, dim, out, true, RowOut::same);
}

}  // namespace flagos::ops
