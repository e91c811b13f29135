#include "flagos/shape.h"

namespace flagos {

int64_t Dims::numel() const {
  int64_t n = 1;
  for (int i = 0; i < n_; ++i) {
    const int64_t d = v_[static_cast<size_t>(i)];
    FLAGOS_CHECK(d >= 0, "negative dimension ", d, " in shape ", *this);
    if (__builtin_mul_overflow(n, d, &n)) fail("element count of shape ", *this, " overflows int64");
  }
  return n;
}

std::ostream& operator<<(std::ostream& os, const Dims& d) {
  os << '[';
  for (int i = 0; i < d.size(); ++i) os << (i ? ", " : "") << d[i];
  return os << ']';
}

int normalize_dim(int64_t dim, int ndim, const char* what) {
  const int64_t lim = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 / -1
  FLAGOS_CHECK(dim >= -lim && dim < lim, what, ": dim ", dim, " out of range for a ", ndim, "-d tensor");
  return static_cast<int>(dim < 0 ? dim + lim : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int n = std::max(a.size(), b.size());
  Shape out = Shape::filled(n, 1);
  for (int i = 0; i < n; ++i) {
    const int ia = a.size() - n + i, ib = b.size() - n + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    FLAGOS_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b, " do not broadcast (dim ", i,
                 ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace flagos
