// Creation and copy ops: fill, zeros/ones/full, arange, linspace, eye, copy (broadcast + cast), cast.
#include <cmath>

#include "ops/op_common.h"

namespace flagos::ops {
using namespace detail;

void fill(Tensor& t, double value) {
  check_defined("fill", t, "t");
  FLAGOS_CHECK(!is_quant(t.dtype()), "fill: cannot fill a ", t.dtype(), " tensor (quantize an f32 tensor instead)");
  if (t.numel() == 0) return;
  static const uint16_t id = op_id("fill");
  const ScalarParams p{value, 0};
  launch(id, KernelKey{t.dtype()}, t.device(), {}, {&t}, &p);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  FLAGOS_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step), "arange: start ", start, ", end ",
               end, ", step ", step, " must be finite");
  FLAGOS_CHECK(step != 0, "arange: step must be non-zero");
  FLAGOS_CHECK((end - start) / step < 9e18, "arange: [", start, ", ", end, ") with step ", step, " is too long");
  const double n = std::ceil((end - start) / step);
  Tensor t = Tensor::empty({n > 0 ? static_cast<int64_t>(n) : 0}, dtype, device);
  if (t.numel() == 0) return t;
  static const uint16_t id = op_id("arange");
  const ScalarParams p{start, step};
  launch(id, KernelKey{dtype}, device, {}, {&t}, &p);
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  FLAGOS_CHECK(steps >= 0, "linspace: steps must be >= 0, got ", steps);
  FLAGOS_CHECK(std::isfinite(start) && std::isfinite(end), "linspace: start ", start, " and end ", end,
               " must be finite");
  Tensor t = Tensor::empty({steps}, dtype, device);
  if (steps == 0) return t;
  static const uint16_t id = op_id("linspace");
  const ScalarParams p{start, end};
  launch(id, KernelKey{dtype}, device, {}, {&t}, &p);
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype, Device device) {
  if (m < 0) m = n;
  FLAGOS_CHECK(n >= 0, "eye: n must be >= 0, got ", n);
  Tensor t = Tensor::empty({n, m}, dtype, device);
  if (t.numel() == 0) return t;
  static const uint16_t id = op_id("eye");
  launch(id, KernelKey{dtype}, device, {}, {&t}, nullptr);
  return t;
}

void copy(Tensor& dst, const Tensor& src) {
  check_defined("copy", dst, "dst");
  check_defined("copy", src, "src");
  FLAGOS_CHECK((!is_quant(dst.dtype()) && !is_quant(src.dtype())) || dst.dtype() == src.dtype(),
               "copy: ", src.dtype(), " -> ", dst.dtype(), " needs quantize()/dequantize()");
  // Broadcast src to dst's shape (dst itself is never broadcast).
  const Shape b = broadcast_shapes(dst.shape(), src.shape(), "copy");
  FLAGOS_CHECK(b == dst.shape(), "copy: source shape ", src.shape(), " does not broadcast to destination ",
               dst.shape());
  prepare_out("copy", dst, dst.shape(), dst.dtype(), dst.device());
  if (dst.numel() == 0) return;
  if (src.device() != dst.device()) {
    // Across devices: move first (same dtype), then copy/cast on the destination.
    Tensor moved = src.to(dst.device());
    copy(dst, moved);
    return;
  }
  const Tensor s = src.shape() == dst.shape() ? src : src.expand(dst.shape());
  check_inplace_ok("copy", dst, s);
  if (is_quant(dst.dtype())) {
    dst.copy_from(s);
    return;
  }
  static const uint16_t id = op_id("copy");
  launch(id, KernelKey{dst.dtype(), s.dtype()}, dst.device(), {&s}, {&dst}, nullptr);
}

Tensor cast(const Tensor& x, DType dtype, const Tensor& out) {
  check_defined("cast", x, "x");
  Tensor o = prepare_out("cast", out, x.shape(), dtype, x.device());
  copy(o, x);
  return o;
}

Tensor contiguous(const Tensor& x) {
  check_defined("contiguous", x, "x");
  return x.contiguous();
}

}  // namespace flagos::ops
