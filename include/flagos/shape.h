// Shape / strides: fixed-capacity small vectors (no heap traffic on the op hot path).
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>

#include "flagos/error.h"

namespace flagos {

inline constexpr int kMaxDims = 8;

class Dims {
 public:
  Dims() = default;
  Dims(std::initializer_list<int64_t> v) { assign(v.begin(), v.end()); }
  Dims(std::span<const int64_t> v) { assign(v.begin(), v.end()); }
  template <typename It>
  Dims(It b, It e) { assign(b, e); }
  static Dims filled(int n, int64_t value) {
    Dims d;
    d.resize(n, value);
    return d;
  }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](int i) { return v_[static_cast<size_t>(i)]; }
  int64_t operator[](int i) const { return v_[static_cast<size_t>(i)]; }
  int64_t* begin() { return v_.data(); }
  int64_t* end() { return v_.data() + n_; }
  const int64_t* begin() const { return v_.data(); }
  const int64_t* end() const { return v_.data() + n_; }
  const int64_t* data() const { return v_.data(); }
  int64_t back() const { return v_[static_cast<size_t>(n_ - 1)]; }
  void push_back(int64_t x) {
    FLAGOS_CHECK(n_ < kMaxDims, "tensor rank exceeds the maximum of ", kMaxDims, " dims");
    v_[static_cast<size_t>(n_++)] = x;
  }
  void insert(int pos, int64_t x) {
    FLAGOS_CHECK(n_ < kMaxDims, "tensor rank exceeds the maximum of ", kMaxDims, " dims");
    for (int i = n_; i > pos; --i) v_[static_cast<size_t>(i)] = v_[static_cast<size_t>(i - 1)];
    v_[static_cast<size_t>(pos)] = x;
    ++n_;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < n_; ++i) v_[static_cast<size_t>(i)] = v_[static_cast<size_t>(i + 1)];
    --n_;
  }
  void resize(int n, int64_t fill = 0) {
    FLAGOS_CHECK(n >= 0 && n <= kMaxDims, "tensor rank ", n, " exceeds the maximum of ", kMaxDims, " dims");
    for (int i = n_; i < n; ++i) v_[static_cast<size_t>(i)] = fill;
    n_ = n;
  }
  // Product of all entries (the element count of a shape); checks for overflow.
  int64_t numel() const;
  friend bool operator==(const Dims& a, const Dims& b) {
    return a.n_ == b.n_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  template <typename It>
  void assign(It b, It e) {
    n_ = 0;
    for (; b != e; ++b) push_back(static_cast<int64_t>(*b));
  }
  std::array<int64_t, kMaxDims> v_{};
  int n_ = 0;
};

using Shape = Dims;
using Strides = Dims;  // in bytes

std::ostream& operator<<(std::ostream& os, const Dims& d);

// Wraps a possibly negative dim index into [0, ndim); throws naming `what` when out of range.
int normalize_dim(int64_t dim, int ndim, const char* what);
// numpy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace flagos
