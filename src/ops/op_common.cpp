#include "ops/op_common.h"

#include "flagos/backend.h"

namespace flagos::ops::detail {

uint16_t op_id(std::string_view name) {
  const int i = kernels().find_op(name);
  FLAGOS_CHECK(i >= 0, "op '", name, "' is not declared in src/ops/op_list.cpp");
  return static_cast<uint16_t>(i);
}

void check_defined(const char* op, const Tensor& t, const char* arg) {
  FLAGOS_CHECK(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
}

Device common_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    FLAGOS_CHECK(t->device() == first->device(), op, ": tensors on different devices (", to_string(first->device()),
                 " and ", to_string(t->device()), "); move them with .to(device) first");
  }
  return first ? first->device() : Device::cpu();
}

Tensor prepare_out(const char* op, const Tensor& out, const Shape& shape, DType dtype, Device dev) {
  if (!out.defined()) return Tensor::empty(shape, dtype, dev);
  FLAGOS_CHECK(out.shape() == shape, op, ": out has shape ", out.shape(), ", expected ", shape);
  FLAGOS_CHECK(out.dtype() == dtype, op, ": out has dtype ", out.dtype(), ", expected ", dtype);
  FLAGOS_CHECK(out.device() == dev, op, ": out is on ", to_string(out.device()), ", inputs on ", to_string(dev));
  // An output that writes one element twice (stride 0 on a dim > 1) is a race and a wrong answer.
  for (int i = 0; i < out.dim(); ++i)
    FLAGOS_CHECK(out.stride(i) != 0 || out.size(i) <= 1, op, ": out ", out.describe(),
                 " has a broadcast (stride 0) dim; outputs must not alias their own elements");
  return out;
}

static void extent(const Tensor& t, int64_t& lo, int64_t& hi) {
  lo = hi = t.offset();
  for (int i = 0; i < t.dim(); ++i) {
    const int64_t span = (t.size(i) - 1) * t.stride(i);
    (span < 0 ? lo : hi) += span;
  }
  hi += is_quant(t.dtype()) ? static_cast<int64_t>(row_bytes(t.dtype(), t.shape().back())) : static_cast<int64_t>(t.itemsize());
}

bool overlaps(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.numel() == 0 || b.numel() == 0) return false;
  if (a.storage()->data != b.storage()->data) return false;
  int64_t alo, ahi, blo, bhi;
  extent(a, alo, ahi);
  extent(b, blo, bhi);
  return alo < bhi && blo < ahi;
}

void check_inplace_ok(const char* op, const Tensor& out, const Tensor& in) {
  if (!overlaps(out, in)) return;
  const bool same = out.offset() == in.offset() && out.shape() == in.shape() && out.strides() == in.strides() &&
                    out.dtype() == in.dtype();
  FLAGOS_CHECK(same, op, ": out ", out.describe(), " partially overlaps input ", in.describe(),
               " (only exact in-place is allowed)");
}

void check_no_overlap(const char* op, const Tensor& out, const Tensor& in) {
  FLAGOS_CHECK(!overlaps(out, in), op, ": out ", out.describe(), " overlaps input ", in.describe(),
               " (this op cannot run in place)");
}

Tensor to_dtype(const Tensor& x, DType dtype) { return x.dtype() == dtype ? x : cast(x, dtype); }

uint32_t reduce_mask(const char* op, const Dims& dims, int ndim) {
  if (dims.empty()) return ndim == 0 ? 0u : ((1u << ndim) - 1u);
  uint32_t m = 0;
  for (int64_t d : dims) {
    const int n = normalize_dim(d, ndim, op);
    FLAGOS_CHECK(!(m & (1u << n)), op, ": dim ", d, " repeated in ", dims);
    if (ndim > 0) m |= 1u << n;
  }
  return m;
}

Shape reduced_shape(const Shape& s, uint32_t mask, bool keepdim) {
  Shape out;
  for (int i = 0; i < s.size(); ++i) {
    if (mask & (1u << i)) {
      if (keepdim) out.push_back(1);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace flagos::ops::detail
