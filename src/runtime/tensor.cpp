#include "flagos/tensor.h"

#include <cstring>
#include <numeric>
#include <sstream>

#include "flagos/backend.h"

namespace flagos {

Strides contiguous_strides(const Shape& shape, DType dtype) {
  Strides s = Strides::filled(shape.size(), 0);
  const int n = shape.size();
  if (n == 0) return s;
  int64_t acc;
  if (is_quant(dtype)) {
    s[n - 1] = 1;  // nominal: the innermost dim is packed blocks
    acc = static_cast<int64_t>(row_bytes(dtype, shape[n - 1]));
  } else {
    acc = static_cast<int64_t>(element_size(dtype));
    s[n - 1] = acc;
    acc *= std::max<int64_t>(shape[n - 1], 1);
  }
  for (int i = n - 2; i >= 0; --i) {
    s[i] = acc;
    if (__builtin_mul_overflow(acc, std::max<int64_t>(shape[i], 1), &acc))
      fail("byte size of shape ", shape, " overflows int64");
  }
  return s;
}

Tensor::Tensor(std::shared_ptr<Storage> s, int64_t offset, const Shape& shape, const Strides& strides, DType dtype)
    : storage_(std::move(s)), offset_(offset), shape_(shape), strides_(strides), dtype_(dtype) {
  numel_ = shape_.numel();
}

static void check_quant_shape(const Shape& shape, DType dtype, const char* what) {
  if (!is_quant(dtype)) return;
  FLAGOS_CHECK(shape.size() >= 1, what, ": a ", dtype, " tensor needs at least one dim");
  const auto be = dtype_info(dtype).block_elems;
  FLAGOS_CHECK(shape.back() % be == 0, what, ": innermost dim ", shape.back(), " of a ", dtype,
               " tensor must be a multiple of its block size ", be, " (shape ", shape, ")");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_quant_shape(shape, dtype, "empty");
  const int64_t n = shape.numel();
  size_t bytes = 0;
  if (n > 0)
    bytes = is_quant(dtype) ? row_bytes(dtype, shape.back()) * static_cast<size_t>(n / shape.back())
                            : static_cast<size_t>(n) * element_size(dtype);
  Backend& be = backend_of(device);
  const int idx = device.index;
  void* p = bytes ? be.alloc(idx, bytes) : nullptr;
  auto st = std::make_shared<Storage>(device, p, bytes, [&be, idx](void* q) { be.free(idx, q); });
  return Tensor(std::move(st), 0, shape, contiguous_strides(shape, dtype), dtype);
}

Tensor Tensor::empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<void> keep) {
  check_quant_shape(shape, dtype, "from_blob");
  return from_blob_strided(data, shape, contiguous_strides(shape, dtype), dtype, device, std::move(keep));
}

Tensor Tensor::from_blob_strided(void* data, const Shape& shape, const Strides& strides, DType dtype, Device device,
                                 std::shared_ptr<void> keep) {
  FLAGOS_CHECK(shape.size() == strides.size(), "from_blob: shape ", shape, " and strides ", strides,
               " differ in rank");
  auto st = std::make_shared<Storage>(device, data, 0, [keep](void*) {});
  Tensor t(std::move(st), 0, shape, strides, dtype);
  t.storage_->nbytes = SIZE_MAX;  // borrowed: extent unknown, bounds are the caller's responsibility
  return t;
}

int64_t Tensor::size(int64_t d) const { return shape_[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides_[normalize_dim(d, dim(), "stride")]; }
size_t Tensor::itemsize() const { return element_size(dtype_); }

size_t Tensor::nbytes() const {
  if (numel_ == 0) return 0;
  if (is_quant(dtype_)) return row_bytes(dtype_, shape_.back()) * static_cast<size_t>(numel_ / shape_.back());
  return static_cast<size_t>(numel_) * element_size(dtype_);
}

bool Tensor::is_contiguous() const {
  if (numel_ == 0) return true;
  const Strides c = contiguous_strides(shape_, dtype_);
  for (int i = 0; i < dim(); ++i) {
    if (shape_[i] == 1) continue;
    if (is_quant(dtype_) && i == dim() - 1) continue;
    if (strides_[i] != c[i]) return false;
  }
  return true;
}

bool Tensor::is_host_accessible() const { return defined() && backend_of(device()).host_accessible(device().index); }

std::string Tensor::describe() const {
  std::ostringstream os;
  if (!defined()) return "undefined tensor";
  os << dtype_ << shape_ << " (strides " << strides_ << " bytes) on " << to_string(device());
  return os.str();
}

void Tensor::check_view_bounds(const char* what) const {
  // Views may not address memory outside the storage (borrowed storage has unknown extent).
  if (!storage_ || storage_->nbytes == SIZE_MAX || numel_ == 0) return;
  int64_t lo = offset_, hi = offset_;
  for (int i = 0; i < dim(); ++i) {
    const int64_t span = (shape_[i] - 1) * strides_[i];
    if (is_quant(dtype_) && i == dim() - 1) {
      hi += static_cast<int64_t>(row_bytes(dtype_, shape_[i])) - 1;
      continue;
    }
    (span < 0 ? lo : hi) += span;
  }
  if (!is_quant(dtype_)) hi += static_cast<int64_t>(element_size(dtype_)) - 1;
  FLAGOS_CHECK(lo >= 0 && hi < static_cast<int64_t>(storage_->nbytes), what, ": view ", shape_, " strides ",
               strides_, " offset ", offset_, " exceeds the storage of ", storage_->nbytes, " bytes");
}

static void no_quant_inner(const Tensor& t, int d, const char* what) {
  FLAGOS_CHECK(!is_quant(t.dtype()) || d != t.dim() - 1, what, ": cannot view the innermost (block-packed) dim of a ",
               t.dtype(), " tensor");
}

Tensor Tensor::slice(int64_t dim_, int64_t start, int64_t end, int64_t step) const {
  const int d = normalize_dim(dim_, dim(), "slice");
  FLAGOS_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape_[d];
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  start = clampi(start);
  end = clampi(end);
  const int64_t len = end > start ? (end - start + step - 1) / step : 0;
  if (is_quant(dtype_) && d == dim() - 1) {
    const int64_t be = dtype_info(dtype_).block_elems;
    FLAGOS_CHECK(step == 1 && start % be == 0 && len % be == 0, "slice: innermost dim of a ", dtype_,
                 " tensor can only be sliced at whole blocks of ", be);
    Tensor t = *this;
    t.offset_ += static_cast<int64_t>(row_bytes(dtype_, start));
    t.shape_[d] = len;
    t.numel_ = t.shape_.numel();
    return t;
  }
  Tensor t = *this;
  if (len > 0) t.offset_ += start * strides_[d];
  t.shape_[d] = len;
  t.strides_[d] = strides_[d] * step;
  t.numel_ = t.shape_.numel();
  return t;
}

Tensor Tensor::narrow(int64_t dim_, int64_t start, int64_t length) const {
  const int d = normalize_dim(dim_, dim(), "narrow");
  FLAGOS_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d], "narrow: [", start, ", ", start + length,
               ") out of range for dim ", d, " of size ", shape_[d]);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim_, int64_t index) const {
  const int d = normalize_dim(dim_, dim(), "select");
  no_quant_inner(*this, d, "select");
  const int64_t n = shape_[d];
  FLAGOS_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  Tensor t = *this;
  t.offset_ += index * strides_[d];
  t.shape_.erase(d);
  t.strides_.erase(d);
  t.numel_ = t.shape_.numel();
  return t;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  const int a = normalize_dim(d0, dim(), "transpose"), b = normalize_dim(d1, dim(), "transpose");
  if (a == b) return *this;
  no_quant_inner(*this, a, "transpose");
  no_quant_inner(*this, b, "transpose");
  Tensor t = *this;
  std::swap(t.shape_[a], t.shape_[b]);
  std::swap(t.strides_[a], t.strides_[b]);
  return t;
}

Tensor Tensor::permute(const Dims& order) const {
  FLAGOS_CHECK(order.size() == dim(), "permute: order ", order, " does not match a ", dim(), "-d tensor");
  Tensor t = *this;
  bool seen[kMaxDims] = {};
  for (int i = 0; i < dim(); ++i) {
    const int d = normalize_dim(order[i], dim(), "permute");
    FLAGOS_CHECK(!seen[d], "permute: dim ", d, " repeated in ", order);
    seen[d] = true;
    t.shape_[i] = shape_[d];
    t.strides_[i] = strides_[d];
  }
  if (is_quant(dtype_)) FLAGOS_CHECK(normalize_dim(order[dim() - 1], dim(), "permute") == dim() - 1,
                                     "permute: the innermost dim of a ", dtype_, " tensor must stay innermost");
  return t;
}

Tensor Tensor::unsqueeze(int64_t dim_) const {
  const int d = normalize_dim(dim_ < 0 ? dim_ + dim() + 1 : dim_, dim() + 1, "unsqueeze");
  Tensor t = *this;
  const int64_t st = d < dim() ? strides_[d] * shape_[d] : (is_quant(dtype_) ? 1 : static_cast<int64_t>(itemsize()));
  t.shape_.insert(d, 1);
  t.strides_.insert(d, st);
  return t;
}

Tensor Tensor::squeeze(int64_t dim_) const {
  const int d = normalize_dim(dim_, dim(), "squeeze");
  if (shape_[d] != 1) return *this;
  no_quant_inner(*this, d, "squeeze");
  Tensor t = *this;
  t.shape_.erase(d);
  t.strides_.erase(d);
  return t;
}

Tensor Tensor::expand(const Shape& shape) const {
  FLAGOS_CHECK(shape.size() >= dim(), "expand: cannot expand ", shape_, " to fewer dims ", shape);
  Tensor t = *this;
  const int off = shape.size() - dim();
  t.shape_ = shape;
  t.strides_ = Strides::filled(shape.size(), 0);
  for (int i = 0; i < shape.size(); ++i) {
    const int j = i - off;
    const int64_t want = shape[i];
    if (j < 0) {
      FLAGOS_CHECK(want >= 0, "expand: size ", want, " for a new leading dim");
      continue;
    }
    if (want == -1 || want == shape_[j]) {
      t.shape_[i] = shape_[j];
      t.strides_[i] = strides_[j];
    } else {
      FLAGOS_CHECK(shape_[j] == 1 && want >= 0, "expand: dim ", j, " of size ", shape_[j], " cannot become ", want,
                   " (", shape_, " -> ", shape, ")");
      no_quant_inner(*this, j, "expand");
    }
  }
  t.numel_ = t.shape_.numel();
  return t;
}

Tensor Tensor::as_strided(const Shape& shape, const Strides& strides, int64_t byte_offset) const {
  FLAGOS_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape, " and strides ", strides,
               " differ in rank");
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = strides;
  t.offset_ = byte_offset;
  t.numel_ = shape.numel();
  t.check_view_bounds("as_strided");
  return t;
}

static Shape infer_shape(const Shape& req, int64_t numel, const char* what) {
  Shape s = req;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      FLAGOS_CHECK(infer < 0, what, ": more than one -1 in ", req);
      infer = i;
    } else {
      FLAGOS_CHECK(s[i] >= 0, what, ": negative size in ", req);
      if (__builtin_mul_overflow(known, s[i], &known)) fail(what, ": shape ", req, " overflows");
    }
  }
  if (infer >= 0) {
    FLAGOS_CHECK(known != 0 && numel % known == 0, what, ": cannot infer -1 in ", req, " for ", numel, " elements");
    s[infer] = numel / known;
  }
  FLAGOS_CHECK(s.numel() == numel, what, ": shape ", req, " has ", s.numel(), " elements, tensor has ", numel);
  return s;
}

// Strides of a view with `ns` of a tensor with (os, ost), or false when no view is possible.
static bool view_strides(const Shape& os, const Strides& ost, const Shape& ns, Strides& out) {
  out = Strides::filled(ns.size(), 0);
  if (os.numel() == 0 || os.size() == 0) return false;
  int vd = ns.size() - 1;
  int64_t chunk = ost[os.size() - 1], tn = 1, vn = 1;
  for (int td = os.size() - 1; td >= 0; --td) {
    tn *= os[td];
    if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tn * chunk)) {
      while (vd >= 0 && (vn < tn || ns[vd] == 1)) {
        out[vd] = vn * chunk;
        vn *= ns[vd];
        --vd;
      }
      if (vn != tn) return false;
      if (td > 0) {
        chunk = ost[td - 1];
        tn = 1;
        vn = 1;
      }
    }
  }
  return vd == -1;
}

Tensor Tensor::view(const Shape& req) const {
  const Shape ns = infer_shape(req, numel_, "view");
  Tensor t = *this;
  t.shape_ = ns;
  if (is_quant(dtype_)) {
    FLAGOS_CHECK(ns.size() >= 1 && ns.back() == shape_.back(), "view: a ", dtype_,
                 " tensor must keep its innermost dim (", shape_, " -> ", ns, ")");
    Shape oo(shape_.begin(), shape_.end() - 1), no(ns.begin(), ns.end() - 1);
    Strides oos(strides_.begin(), strides_.end() - 1), nst;
    if (no.size() == 0 || oo.size() == 0 || no.numel() == 0) {
      t.strides_ = contiguous_strides(ns, dtype_);
      FLAGOS_CHECK(is_contiguous() || no.numel() <= 1, "view: ", shape_, " -> ", ns, " needs a copy");
      return t;
    }
    FLAGOS_CHECK(view_strides(oo, oos, no, nst), "view: ", describe(), " cannot be viewed as ", ns,
                 " without a copy; use reshape()");
    nst.push_back(1);
    t.strides_ = nst;
    return t;
  }
  if (is_contiguous()) {
    t.strides_ = contiguous_strides(ns, dtype_);
    return t;
  }
  Strides st;
  FLAGOS_CHECK(view_strides(shape_, strides_, ns, st), "view: ", describe(), " cannot be viewed as ", ns,
               " without a copy; use reshape()");
  t.strides_ = st;
  return t;
}

Tensor Tensor::reshape(const Shape& req) const {
  const Shape ns = infer_shape(req, numel_, "reshape");
  if (is_contiguous()) return view(ns);
  Strides st;
  if (!is_quant(dtype_) && view_strides(shape_, strides_, ns, st)) {
    Tensor t = *this;
    t.shape_ = ns;
    t.strides_ = st;
    return t;
  }
  return contiguous().view(ns);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int s = normalize_dim(start_dim, dim(), "flatten"), e = normalize_dim(end_dim, dim(), "flatten");
  FLAGOS_CHECK(s <= e, "flatten: start_dim ", s, " > end_dim ", e);
  Shape ns;
  for (int i = 0; i < s; ++i) ns.push_back(shape_[i]);
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= shape_[i];
  ns.push_back(m);
  for (int i = e + 1; i < dim(); ++i) ns.push_back(shape_[i]);
  return reshape(ns);
}

Tensor Tensor::view_as_dtype(DType dt) const {
  FLAGOS_CHECK(!is_quant(dt) && !is_quant(dtype_) && element_size(dt) == element_size(dtype_),
               "view_as_dtype: ", dtype_, " -> ", dt, " needs equal element sizes");
  Tensor t = *this;
  t.dtype_ = dt;
  return t;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor t = empty(shape_, dtype_, dev);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  FLAGOS_CHECK(defined() && src.defined(), "copy_from: undefined tensor");
  FLAGOS_CHECK(src.shape() == shape_ && src.dtype() == dtype_, "copy_from: source ", src.describe(),
               " does not match destination ", describe(), " (cast or broadcast with ops::copy)");
  if (numel_ == 0) return;
  const Device dd = device(), sd = src.device();
  if (dd == sd) {
    Backend& be = backend_of(dd);
    be.copy_strided(*this, src, current_stream(dd).handle());
    return;
  }
  // Across devices: through contiguous host memory, synchronously.
  Tensor s = src.contiguous();
  const size_t n = s.nbytes();
  Tensor host = sd.is_cpu() ? s : empty(shape_, dtype_, Device::cpu());
  if (!sd.is_cpu()) {
    Backend& sb = backend_of(sd);
    const Stream st = current_stream(sd);
    sb.copy_to_host(sd.index, host.data(), s.data(), n, st.handle());
    sb.synchronize_stream(sd.index, st.handle());
  }
  if (dd.is_cpu()) {
    if (data() != host.data()) backend_of(dd).copy_strided(*this, host, nullptr);
    return;
  }
  Backend& db = backend_of(dd);
  const Stream st = current_stream(dd);
  Tensor dst = is_contiguous() ? *this : empty(shape_, dtype_, dd);
  db.copy_to_device(dd.index, dst.data(), host.data(), n, st.handle());
  db.synchronize_stream(dd.index, st.handle());
  if (dst.data() != data()) db.copy_strided(*this, dst, st.handle());
}

double Tensor::item() const {
  FLAGOS_CHECK(numel_ == 1, "item: tensor ", describe(), " has ", numel_, " elements, not 1");
  return to_vector<double>()[0];
}

double load_as_double(const void* p, DType t) {
  switch (t) {
    case DType::f32: return *static_cast<const float*>(p);
    case DType::f64: return *static_cast<const double*>(p);
    case DType::f16: return f16_to_f32(*static_cast<const uint16_t*>(p));
    case DType::bf16: return bf16_to_f32(*static_cast<const uint16_t*>(p));
    case DType::i8: return *static_cast<const int8_t*>(p);
    case DType::u8: return *static_cast<const uint8_t*>(p);
    case DType::i16: return *static_cast<const int16_t*>(p);
    case DType::i32: return *static_cast<const int32_t*>(p);
    case DType::i64: return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::boolean: return *static_cast<const uint8_t*>(p) ? 1.0 : 0.0;
    default: fail("load_as_double: ", t, " is not a plain dtype");
  }
}

void store_from_double(void* p, DType t, double v) {
  switch (t) {
    case DType::f32: *static_cast<float*>(p) = static_cast<float>(v); return;
    case DType::f64: *static_cast<double*>(p) = v; return;
    case DType::f16: *static_cast<uint16_t*>(p) = f32_to_f16(static_cast<float>(v)); return;
    case DType::bf16: *static_cast<uint16_t*>(p) = f32_to_bf16(static_cast<float>(v)); return;
    case DType::i8: *static_cast<int8_t*>(p) = static_cast<int8_t>(v); return;
    case DType::u8: *static_cast<uint8_t*>(p) = static_cast<uint8_t>(v); return;
    case DType::i16: *static_cast<int16_t*>(p) = static_cast<int16_t>(v); return;
    case DType::i32: *static_cast<int32_t*>(p) = static_cast<int32_t>(v); return;
    case DType::i64: *static_cast<int64_t*>(p) = static_cast<int64_t>(v); return;
    case DType::boolean: *static_cast<uint8_t*>(p) = v != 0.0; return;
    default: fail("store_from_double: ", t, " is not a plain dtype");
  }
}

}  // namespace flagos
