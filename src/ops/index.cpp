// Index and shape ops: gather, scatter, index_select, index_add, cat, split, stack, repeat, pad,
// tril/triu, one_hot. Indices are bounds-checked here, on the host, before any kernel writes
// (index tensors on a device that the host cannot read are left to that device's kernel).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "ops/op_common.h"

namespace flagos::ops {
using namespace detail;

namespace {

void check_index_dtype(const char* op, const Tensor& index, const char* arg) {
  FLAGOS_CHECK(index.dtype() == DType::i32 || index.dtype() == DType::i64, op, ": ", arg,
               " must be i32 or i64, got ", index.dtype());
}

void check_plain(const char* op, const Tensor& t, const char* arg) {
  FLAGOS_CHECK(!is_quant(t.dtype()), op, ": ", arg, " has quantized dtype ", t.dtype(),
               "; dequantize() it first");
}

std::string coords_of(int64_t flat, const Shape& s) {
  std::string r = "[";
  int64_t c[kMaxDims] = {};
  for (int i = s.size() - 1; i >= 0; --i) {
    c[i] = s[i] ? flat % s[i] : 0;
    flat = s[i] ? flat / s[i] : 0;
  }
  for (int i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(c[i]);
  return r + "]";
}

// Every value of `index` must lie in [0, size). Walks any strides; throws naming the op, the
// offending value, its position and the size.
void check_index_range(const char* op, const Tensor& index, int64_t size, const std::string& what,
                       const char* noun = "index") {
  if (index.numel() == 0 || !index.is_host_accessible()) return;
  const bool wide = index.dtype() == DType::i64;
  const char* base = static_cast<const char*>(index.data());
  const Shape& s = index.shape();
  const int nd = index.dim();
  int64_t c[kMaxDims] = {};
  int64_t off = 0;
  for (int64_t flat = 0; flat < index.numel(); ++flat) {
    int64_t v;
    if (wide) {
      std::memcpy(&v, base + off, 8);
    } else {
      int32_t w;
      std::memcpy(&w, base + off, 4);
      v = w;
    }
    if (v < 0 || v >= size) [[unlikely]]
      fail(op, ": ", noun, " ", v, " at position ", coords_of(flat, s), " is out of range for ", what, " of size ", size);
    for (int i = nd - 1; i >= 0; --i) {  // advance the coordinates
      off += index.stride(i);
      if (++c[i] < s[i]) break;
      off -= c[i] * index.stride(i);
      c[i] = 0;
    }
  }
}

int64_t checked_mul(const char* op, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(op, ": size ", a, " * ", b, " overflows int64");
  return r;
}

int64_t checked_add(const char* op, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(op, ": size ", a, " + ", b, " overflows int64");
  return r;
}

void check_numel(const char* op, const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n = checked_mul(op, n, d);
}

Tensor as_1d_if_scalar(const Tensor& t) { return t.dim() == 0 ? t.unsqueeze(0) : t; }

}  // namespace

// ---------------------------------------------------------------- gather / scatter

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  check_defined(op, x, "x");
  check_defined(op, index, "index");
  check_plain(op, x, "x");
  check_index_dtype(op, index, "index");
  const Device dev = common_device(op, {&x, &index});
  FLAGOS_CHECK(index.dim() == x.dim(), op, ": index ", index.shape(), " must have the rank of x ", x.shape());
  const int d = normalize_dim(dim, x.dim(), op);
  if (x.dim() == 0) return gather(x.unsqueeze(0), 0, index.unsqueeze(0)).squeeze(0);
  for (int i = 0; i < x.dim(); ++i)
    FLAGOS_CHECK(i == d || index.size(i) <= x.size(i), op, ": index ", index.shape(), " is larger than x ",
                 x.shape(), " in dim ", i, " (only dim ", d, " may be larger)");
  check_index_range(op, index, x.size(d), "dim " + std::to_string(d) + " of x");
  Tensor out = Tensor::empty(index.shape(), x.dtype(), dev);
  if (out.numel() == 0) return out;
  static const uint16_t id = op_id(op);
  const IndexParams p{d, 1.0, 0};
  launch(id, KernelKey{x.dtype(), index.dtype()}, dev, {&x, &index}, {&out}, &p);
  return out;
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, bool add) {
  const char* op = "scatter";
  check_defined(op, x, "x");
  check_defined(op, index, "index");
  check_defined(op, src, "src");
  check_plain(op, x, "x");
  check_index_dtype(op, index, "index");
  const Device dev = common_device(op, {&x, &index, &src});
  FLAGOS_CHECK(src.dtype() == x.dtype(), op, ": src dtype ", src.dtype(), " differs from x dtype ", x.dtype(),
               "; cast() it first");
  FLAGOS_CHECK(index.dim() == x.dim() && src.dim() == x.dim(), op, ": x ", x.shape(), ", index ", index.shape(),
               " and src ", src.shape(), " must have the same rank");
  const int d = normalize_dim(dim, x.dim(), op);
  if (x.dim() == 0)
    return scatter(x.unsqueeze(0), 0, index.unsqueeze(0), src.unsqueeze(0), add).squeeze(0);
  for (int i = 0; i < x.dim(); ++i) {
    FLAGOS_CHECK(index.size(i) <= src.size(i), op, ": index ", index.shape(), " is larger than src ", src.shape(),
                 " in dim ", i);
    FLAGOS_CHECK(i == d || index.size(i) <= x.size(i), op, ": index ", index.shape(), " is larger than x ",
                 x.shape(), " in dim ", i, " (only dim ", d, " may be larger)");
  }
  check_index_range(op, index, x.size(d), "dim " + std::to_string(d) + " of x");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (out.numel() == 0) return out;
  copy(out, x);
  if (index.numel() == 0) return out;
  static const uint16_t id = op_id(op);
  const IndexParams p{d, 1.0, add ? 1 : 0};
  launch(id, KernelKey{x.dtype(), index.dtype()}, dev, {&src, &index}, {&out}, &p);
  return out;
}

// ---------------------------------------------------------------- index_select / index_add

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  check_defined(op, x, "x");
  check_defined(op, index, "index");
  check_plain(op, x, "x");
  check_index_dtype(op, index, "index");
  const Device dev = common_device(op, {&x, &index});
  FLAGOS_CHECK(index.dim() <= 1, op, ": index must be 0-d or 1-d, got shape ", index.shape());
  const int d = normalize_dim(dim, x.dim(), op);
  if (x.dim() == 0) return index_select(x.unsqueeze(0), 0, index).reshape(index.shape());
  check_index_range(op, index, x.size(d), "dim " + std::to_string(d) + " of x");
  Shape s = x.shape();
  s[d] = index.numel();
  Tensor out = Tensor::empty(s, x.dtype(), dev);
  if (out.numel() == 0) return out;
  const Tensor idx = as_1d_if_scalar(index);
  static const uint16_t id = op_id(op);
  const IndexParams p{d, 1.0, 0};
  launch(id, KernelKey{x.dtype(), index.dtype()}, dev, {&x, &idx}, {&out}, &p);
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, double alpha) {
  const char* op = "index_add";
  check_defined(op, x, "x");
  check_defined(op, index, "index");
  check_defined(op, src, "src");
  check_plain(op, x, "x");
  check_index_dtype(op, index, "index");
  const Device dev = common_device(op, {&x, &index, &src});
  FLAGOS_CHECK(src.dtype() == x.dtype(), op, ": src dtype ", src.dtype(), " differs from x dtype ", x.dtype(),
               "; cast() it first");
  FLAGOS_CHECK(index.dim() <= 1, op, ": index must be 0-d or 1-d, got shape ", index.shape());
  FLAGOS_CHECK(std::isfinite(alpha), op, ": alpha ", alpha, " must be finite");
  FLAGOS_CHECK(is_float(x.dtype()) || (alpha == std::trunc(alpha) && std::abs(alpha) < 9.2e18), op, ": alpha ",
               alpha, " must be an integer for ", x.dtype(), " tensors");
  const int d = normalize_dim(dim, x.dim(), op);
  if (x.dim() == 0) {
    FLAGOS_CHECK(src.dim() <= 1 && src.numel() == index.numel(), op, ": src ", src.shape(), " must hold ",
                 index.numel(), " values for index ", index.shape());
    return index_add(x.unsqueeze(0), 0, as_1d_if_scalar(index), src.reshape({src.numel()}), alpha).squeeze(0);
  }
  Shape want = x.shape();
  want[d] = index.numel();
  FLAGOS_CHECK(src.shape() == want, op, ": src ", src.shape(), " must have shape ", want, " (x ", x.shape(), " with dim ", d,
               " of size index.numel() = ", index.numel(), ")");
  check_index_range(op, index, x.size(d), "dim " + std::to_string(d) + " of x");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (out.numel() == 0) return out;
  copy(out, x);
  if (index.numel() == 0) return out;
  // index_add is scatter-add with the 1-d index broadcast over src's other dims.
  const Tensor& s = src;
  const Tensor idx = as_1d_if_scalar(index);
  Strides st = Strides::filled(s.dim(), 0);
  st[d] = idx.stride(0);
  const Tensor idx_full = idx.as_strided(s.shape(), st, idx.offset());
  static const uint16_t id = op_id(op);
  const IndexParams p{d, alpha, 1};
  launch(id, KernelKey{x.dtype(), index.dtype()}, dev, {&s, &idx_full}, {&out}, &p);
  return out;
}

// ---------------------------------------------------------------- cat / split / stack

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  const char* op = "cat";
  FLAGOS_CHECK(!xs.empty(), op, ": needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) {
    FLAGOS_CHECK(xs[i].defined(), op, ": tensor ", i, " is undefined");
    check_plain(op, xs[i], ("tensor " + std::to_string(i)).c_str());
  }
  Device dev = xs[0].device();
  for (size_t i = 1; i < xs.size(); ++i)
    FLAGOS_CHECK(xs[i].device() == dev, op, ": tensor ", i, " is on ", to_string(xs[i].device()), ", tensor 0 on ",
                 to_string(dev), "; move them with .to(device) first");
  DType dt = xs[0].dtype();
  for (size_t i = 1; i < xs.size(); ++i) dt = promote_types(dt, xs[i].dtype());
  // As in torch, 1-d empty tensors are skipped whatever the other shapes.
  const auto skipped = [](const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; };
  const Tensor* ref = nullptr;
  for (const Tensor& t : xs)
    if (!skipped(t)) {
      ref = &t;
      break;
    }
  if (!ref) return Tensor::empty({0}, dt, dev);
  FLAGOS_CHECK(ref->dim() > 0, op, ": zero-dimensional tensor ", ref->shape(), " cannot be concatenated");
  const int d = normalize_dim(dim, ref->dim(), op);
  Shape s = ref->shape();
  s[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    if (skipped(t)) continue;
    FLAGOS_CHECK(t.dim() == ref->dim(), op, ": tensor ", i, " has shape ", t.shape(), ", expected rank ",
                 ref->dim(), " like ", ref->shape());
    for (int k = 0; k < t.dim(); ++k)
      FLAGOS_CHECK(k == d || t.size(k) == ref->size(k), op, ": tensor ", i, " has shape ", t.shape(),
                   ", which differs from ", ref->shape(), " outside dim ", d);
    s[d] = checked_add(op, s[d], t.size(d));
  }
  check_numel(op, s);
  Tensor out = Tensor::empty(s, dt, dev);
  if (out.numel() == 0) return out;
  static const uint16_t id = op_id(op);
  int64_t off = 0;
  for (const Tensor& t : xs) {
    if (skipped(t) || t.size(d) == 0) continue;
    const Tensor src = to_dtype(t, dt);
    Tensor dst = out.narrow(d, off, t.size(d));
    off += t.size(d);
    launch(id, KernelKey{dt}, dev, {&src}, {&dst}, nullptr);
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  const char* op = "split";
  check_defined(op, x, "x");
  FLAGOS_CHECK(x.dim() > 0, op, ": cannot split a 0-d tensor");
  const int d = normalize_dim(dim, x.dim(), op);
  const int64_t n = x.size(d);
  FLAGOS_CHECK(split_size > 0 || (split_size == 0 && n == 0), op, ": split_size must be positive, got ", split_size);
  std::vector<Tensor> r;
  if (n == 0) {
    r.push_back(x);
    return r;
  }
  for (int64_t o = 0; o < n; o += split_size) r.push_back(x.narrow(d, o, std::min(split_size, n - o)));
  return r;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const char* op = "split";
  check_defined(op, x, "x");
  FLAGOS_CHECK(x.dim() > 0, op, ": cannot split a 0-d tensor");
  const int d = normalize_dim(dim, x.dim(), op);
  int64_t total = 0;
  for (int64_t s : sizes) {
    FLAGOS_CHECK(s >= 0, op, ": negative split size ", s);
    total = checked_add(op, total, s);
  }
  FLAGOS_CHECK(total == x.size(d), op, ": sizes sum to ", total, " but dim ", d, " of ", x.shape(), " has size ",
               x.size(d));
  std::vector<Tensor> r;
  int64_t o = 0;
  for (int64_t s : sizes) {
    r.push_back(x.narrow(d, o, s));
    o += s;
  }
  return r;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  const char* op = "stack";
  FLAGOS_CHECK(!xs.empty(), op, ": needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) FLAGOS_CHECK(xs[i].defined(), op, ": tensor ", i, " is undefined");
  for (size_t i = 1; i < xs.size(); ++i)
    FLAGOS_CHECK(xs[i].shape() == xs[0].shape(), op, ": tensor ", i, " has shape ", xs[i].shape(),
                 ", tensor 0 has ", xs[0].shape(), "; all must match");
  FLAGOS_CHECK(xs[0].dim() < kMaxDims, op, ": rank ", xs[0].dim(), " + 1 exceeds the maximum of ", kMaxDims);
  const int d = normalize_dim(dim, xs[0].dim() + 1, op);
  std::vector<Tensor> u;
  u.reserve(xs.size());
  for (const Tensor& t : xs) u.push_back(t.unsqueeze(d));
  return cat(u, d);
}

// ---------------------------------------------------------------- repeat / pad / tril / triu / one_hot

Tensor repeat(const Tensor& x, const Dims& repeats) {
  const char* op = "repeat";
  check_defined(op, x, "x");
  check_plain(op, x, "x");
  FLAGOS_CHECK(repeats.size() >= x.dim(), op, ": ", repeats.size(), " repeats for a ", x.dim(),
               "-d tensor; need at least one per dim");
  Tensor v = x;
  while (v.dim() < repeats.size()) v = v.unsqueeze(0);
  Shape s = v.shape();
  for (int i = 0; i < s.size(); ++i) {
    FLAGOS_CHECK(repeats[i] >= 0, op, ": repeats ", repeats, " has a negative entry");
    s[i] = checked_mul(op, s[i], repeats[i]);
  }
  check_numel(op, s);
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (out.dim() == 0) {
    copy(out, x);
    return out;
  }
  static const uint16_t id = op_id(op);
  launch(id, KernelKey{x.dtype()}, x.device(), {&v}, {&out}, nullptr);
  return out;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  const char* op = "pad";
  check_defined(op, x, "x");
  check_plain(op, x, "x");
  FLAGOS_CHECK(pads.size() % 2 == 0, op, ": pads must come in (before, after) pairs, got ", pads.size(), " values");
  FLAGOS_CHECK(static_cast<int>(pads.size() / 2) <= x.dim(), op, ": ", pads.size() / 2, " padded dims for a ",
               x.dim(), "-d tensor ", x.shape());
  if (is_int(x.dtype())) {
    FLAGOS_CHECK(value == std::trunc(value), op, ": value ", value, " is not an integer for ", x.dtype());
    const double hi = std::ldexp(1.0, static_cast<int>(8 * element_size(x.dtype())) - (dtype_info(x.dtype()).is_signed ? 1 : 0));
    const double lo = dtype_info(x.dtype()).is_signed ? -hi : 0.0;
    FLAGOS_CHECK(value >= lo && value < hi, op, ": value ", value, " does not fit in ", x.dtype());
  }
  Shape s = x.shape();
  Tensor src = x;  // the part of x that survives (negative pads crop)
  Shape before = Shape::filled(x.dim(), 0);
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    const int d = x.dim() - 1 - static_cast<int>(k);
    const int64_t b = pads[2 * k], a = pads[2 * k + 1];
    const int64_t n = checked_add(op, checked_add(op, s[d], b), a);
    FLAGOS_CHECK(n >= 0, op, ": pads (", b, ", ", a, ") make dim ", d, " of size ", s[d], " negative");
    s[d] = n;
    const int64_t lo = std::max<int64_t>(-b, 0), hi = x.size(d) - std::max<int64_t>(-a, 0);
    src = src.narrow(d, std::min(lo, x.size(d)), std::max<int64_t>(hi - lo, 0));
    before[d] = std::max<int64_t>(b, 0);
  }
  check_numel(op, s);
  Tensor out = Tensor::empty(s, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (out.dim() == 0) {
    copy(out, x);
    return out;
  }
  if (src.numel() == 0) {
    fill(out, value);
    return out;
  }
  // The kernel gets the surviving part of x and the view of `out` it lands in; the rest is `value`.
  Tensor interior = out;
  for (int d = 0; d < out.dim(); ++d) interior = interior.narrow(d, before[d], src.size(d));
  static const uint16_t id = op_id(op);
  const PadParams p{value};
  launch(id, KernelKey{x.dtype()}, x.device(), {&src}, {&out, &interior}, &p);
  return out;
}

static Tensor tri(const char* op, const Tensor& x, int64_t diagonal, bool upper) {
  check_defined(op, x, "x");
  check_plain(op, x, "x");
  FLAGOS_CHECK(x.dim() >= 2, op, ": needs at least 2 dims, got ", x.shape());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const uint16_t id = op_id(op);
  const TriParams p{diagonal, upper};
  launch(id, KernelKey{x.dtype()}, x.device(), {&x}, {&out}, &p);
  return out;
}

Tensor tril(const Tensor& x, int64_t diagonal) { return tri("tril", x, diagonal, false); }
Tensor triu(const Tensor& x, int64_t diagonal) { return tri("triu", x, diagonal, true); }

Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype) {
  const char* op = "one_hot";
  check_defined(op, ids, "ids");
  check_index_dtype(op, ids, "ids");
  FLAGOS_CHECK(!is_quant(dtype), op, ": output dtype ", dtype, " is quantized");
  FLAGOS_CHECK(num_classes >= -1, op, ": num_classes must be >= 0 (or -1 to infer), got ", num_classes);
  FLAGOS_CHECK(ids.dim() < kMaxDims, op, ": ids rank ", ids.dim(), " + 1 exceeds the maximum of ", kMaxDims);
  check_numel(op, ids.shape());
  if (num_classes < 0) {
    FLAGOS_CHECK(ids.numel() > 0, op, ": cannot infer num_classes from empty ids");
    const std::vector<int64_t> v = ids.to_vector<int64_t>();
    num_classes = *std::max_element(v.begin(), v.end()) + 1;
    FLAGOS_CHECK(num_classes > 0, op, ": cannot infer num_classes: every id is negative");
  }
  Shape s = ids.shape();
  s.push_back(num_classes);
  check_numel(op, s);
  check_index_range(op, ids, num_classes, "num_classes", "id");
  Tensor out = Tensor::empty(s, dtype, ids.device());
  if (out.numel() == 0) return out;
  static const uint16_t id = op_id(op);
  launch(id, KernelKey{dtype, ids.dtype()}, ids.device(), {&ids}, {&out}, nullptr);
  return out;
}

}  // namespace flagos::ops
