// CPU kernels of the index family: gather, scatter, index_select, index_add, cat, repeat, pad,
// tril/triu, one_hot. These move data, so most are instantiated per element size (1/2/4/8
// bytes) and registered for every dtype of that size; scatter-add / index_add do arithmetic
// and are instantiated per dtype. Indices were bounds-checked by the op layer.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "backends/cpu/loops.h"
#include "backends/cpu/portable_families.h"
#include "flagos/op_params.h"

namespace flagos::cpu {
namespace {

template <size_t N>
struct Bytes;
template <> struct Bytes<1> { using type = uint8_t; };
template <> struct Bytes<2> { using type = uint16_t; };
template <> struct Bytes<4> { using type = uint32_t; };
template <> struct Bytes<8> { using type = uint64_t; };

template <typename T>
inline T ld(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
inline void st(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// Byte offset of flat index `flat` over the first `nd` dims of `shape` with byte `strides`.
inline int64_t offset_of(int64_t flat, const Shape& shape, const Strides& strides, int nd) {
  int64_t off = 0;
  for (int i = nd - 1; i >= 0; --i) {
    const int64_t n = shape[i];
    off += (flat % n) * strides[i];
    flat /= n;
  }
  return off;
}

// Grain (in outer items) so that a task covers about kElementwiseGrain elements.
inline int64_t grain_for(int64_t per_item) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(per_item, 1)); }

// Strided copy of same-dtype tensors of one shape.
template <typename E>
void copy_same(Tensor& dst, const Tensor& src) {
  const Tensor* ts[2] = {&dst, &src};
  for_each_run<2>(ts, kElementwiseGrain, [](char** p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(E) && s[1] == sizeof(E)) {
      std::memcpy(p[0], p[1], static_cast<size_t>(n) * sizeof(E));
      return;
    }
    for (int64_t i = 0; i < n; ++i) st<E>(p[0] + i * s[0], ld<E>(p[1] + i * s[1]));
  });
}

// out[c] = x[c with c[dim] = index[c]], where index has out's shape (any strides, stride 0 ok).
template <typename E, typename I>
void gather_strided(Tensor& out, const Tensor& x, const Tensor& index, int dim) {
  Strides xs = x.strides();
  const int64_t sd = xs[dim];
  xs[dim] = 0;
  const Tensor xv = x.as_strided(out.shape(), xs, x.offset());
  const Tensor* ts[3] = {&out, &index, &xv};
  for_each_run<3>(ts, kElementwiseGrain, [sd](char** p, const int64_t* s, int64_t n) {
    char* o = p[0];
    const char* ix = p[1];
    const char* xb = p[2];
    if (s[0] == sizeof(E) && s[1] == sizeof(I) && s[2] == 0) {  // gather along a contiguous last dim
      E* od = reinterpret_cast<E*>(o);
      for (int64_t i = 0; i < n; ++i) od[i] = ld<E>(xb + ld<I>(ix + i * sizeof(I)) * sd);
      return;
    }
    for (int64_t i = 0; i < n; ++i) st<E>(o + i * s[0], ld<E>(xb + i * s[2] + static_cast<int64_t>(ld<I>(ix + i * s[1])) * sd));
  });
}

template <size_t ES, typename I>
void gather_kernel(const KernelArgs& a) {
  gather_strided<typename Bytes<ES>::type, I>(*a.out[0], *a.in[0], *a.in[1], static_cast<int>(a.p<IndexParams>().dim));
}

template <size_t ES, typename I>
void index_select_kernel(const KernelArgs& a) {
  using E = typename Bytes<ES>::type;
  const Tensor& x = *a.in[0];
  const Tensor& idx = *a.in[1];  // 1-d
  Tensor& out = *a.out[0];
  const int d = static_cast<int>(a.p<IndexParams>().dim);
  const int nd = x.dim();
  // Fast path: the dims after `dim` form one contiguous block in x and out (rows of an embedding table).
  int64_t inner = 1;
  bool block = true;
  for (int i = nd - 1; i > d; --i) {
    if (x.size(i) != 1 && (x.stride(i) != inner * static_cast<int64_t>(ES) || out.stride(i) != x.stride(i)))
      block = false;
    inner *= x.size(i);
  }
  if (block && inner >= 16) {
    const int64_t n = idx.numel(), rows = out.numel() / inner, is = idx.stride(0), xsd = x.stride(d);
    const char* ib = static_cast<const char*>(idx.data());
    const char* xb = static_cast<const char*>(x.data());
    char* ob = static_cast<char*>(out.data());
    const size_t row_bytes = static_cast<size_t>(inner) * ES;
    parallel_for(rows, grain_for(inner), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t outer = r / n, j = r % n;
        const char* src = xb + offset_of(outer, x.shape(), x.strides(), d) + static_cast<int64_t>(ld<I>(ib + j * is)) * xsd;
        std::memcpy(ob + offset_of(outer, out.shape(), out.strides(), d) + j * out.stride(d), src, row_bytes);
      }
    });
    return;
  }
  Strides s = Strides::filled(nd, 0);
  s[d] = idx.stride(0);
  const Tensor idx_full = idx.as_strided(out.shape(), s, idx.offset());
  gather_strided<E, I>(out, x, idx_full, d);
}

// Scatter arithmetic: replace, or accumulate alpha * src (f16/bf16 in f32, integers wrapping,
// bool as logical or).
template <typename T>
struct Acc {
  using C = typename Io<T>::compute;
  static constexpr bool kFloat = std::is_floating_point_v<C>;
  std::conditional_t<kFloat, C, uint64_t> alpha;  // integers: alpha is integral (checked by the op)
  explicit Acc(double a) {
    if constexpr (kFloat) {
      alpha = static_cast<C>(a);
    } else {
      alpha = static_cast<uint64_t>(static_cast<int64_t>(a));
    }
  }
  void operator()(char* dst, const char* src) const {
    if constexpr (kFloat) {
      Io<T>::store(dst, Io<T>::load(dst) + alpha * Io<T>::load(src));
    } else {
      const uint64_t s = static_cast<uint64_t>(static_cast<int64_t>(Io<T>::load(src)));
      const uint64_t r = static_cast<uint64_t>(static_cast<int64_t>(Io<T>::load(dst))) + alpha * s;
      Io<T>::store(dst, static_cast<C>(r));
    }
  }
  // n elements at byte strides; contiguous float/int rows vectorize.
  void run(char* d, int64_t ds, const char* s, int64_t ss, int64_t n) const {
    if constexpr (std::is_same_v<C, T>) {
      if (ds == sizeof(T) && ss == sizeof(T)) {
        T* __restrict dp = reinterpret_cast<T*>(d);
        const T* __restrict sp = reinterpret_cast<const T*>(s);
        if constexpr (kFloat) {
          for (int64_t i = 0; i < n; ++i) dp[i] += alpha * sp[i];
        } else {
          using U = std::make_unsigned_t<T>;
          const U a = static_cast<U>(alpha);
          for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<T>(static_cast<U>(static_cast<U>(dp[i]) + static_cast<U>(a * static_cast<U>(sp[i]))));
        }
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i) (*this)(d + i * ds, s + i * ss);
  }
};
struct AccBool {
  bool on;
  explicit AccBool(double a) : on(a != 0.0) {}
  void operator()(char* dst, const char* src) const {
    const uint8_t v = static_cast<uint8_t>((ld<uint8_t>(dst) != 0) || (on && ld<uint8_t>(src) != 0));
    st<uint8_t>(dst, v);
  }
  void run(char* d, int64_t ds, const char* s, int64_t ss, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) (*this)(d + i * ds, s + i * ss);
  }
};
template <typename E>
struct Replace {
  void operator()(char* dst, const char* src) const { st<E>(dst, ld<E>(src)); }
  void run(char* d, int64_t ds, const char* s, int64_t ss, int64_t n) const {
    if (ds == sizeof(E) && ss == sizeof(E)) {
      std::memcpy(d, s, static_cast<size_t>(n) * sizeof(E));
      return;
    }
    for (int64_t i = 0; i < n; ++i) st<E>(d + i * ds, ld<E>(s + i * ss));
  }
};

// For every position c of index's shape: out[c with c[dim] = index[c]] op= src[c]. Positions
// that differ outside `dim` never hit the same element, so tasks split the other dims and each
// walks `dim` in order: the last write wins and sums accumulate in a fixed order.
template <typename I, typename Op>
void scatter_impl(Tensor& out, const Tensor& src, const Tensor& index, int dim, Op op) {
  const Shape& s = index.shape();
  const int64_t n = s[dim];
  const int64_t is = index.stride(dim), ss = src.stride(dim), os = out.stride(dim);
  const Tensor iv = index.select(dim, 0);
  const Tensor sv = src.as_strided(s, src.strides(), src.offset()).select(dim, 0);
  Strides ostr = out.strides();
  ostr[dim] = 0;  // index.size(dim) may exceed out.size(dim); `dim` is addressed through `os`
  const Tensor ov = out.as_strided(s, ostr, out.offset()).select(dim, 0);
  const Tensor* ts[3] = {&ov, &iv, &sv};
  for_each_run<3>(ts, grain_for(n), [&](char** p, const int64_t* st3, int64_t cnt) {
    if (cnt > 1 && std::abs(os) > std::abs(st3[0])) {
      // `dim` is the outer one (index_add over rows): walk row by row, each run stays in cache.
      // For each position k the order along `dim` is unchanged, so results are identical.
      if (st3[1] == 0) {  // one index per row (index_add): whole-row updates
        for (int64_t j = 0; j < n; ++j)
          op.run(p[0] + static_cast<int64_t>(ld<I>(p[1] + j * is)) * os, st3[0], p[2] + j * ss, st3[2], cnt);
        return;
      }
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < cnt; ++k)
          op(p[0] + k * st3[0] + static_cast<int64_t>(ld<I>(p[1] + k * st3[1] + j * is)) * os,
             p[2] + k * st3[2] + j * ss);
      return;
    }
    for (int64_t k = 0; k < cnt; ++k) {
      char* ob = p[0] + k * st3[0];
      const char* ib = p[1] + k * st3[1];
      const char* sb = p[2] + k * st3[2];
      for (int64_t j = 0; j < n; ++j) op(ob + static_cast<int64_t>(ld<I>(ib + j * is)) * os, sb + j * ss);
    }
  });
}

template <DType D, typename I>
void scatter_kernel(const KernelArgs& a) {
  using T = typename StorageOf<D>::type;
  const auto& p = a.p<IndexParams>();
  const int dim = static_cast<int>(p.dim);
  if (p.reduce == 0) {
    scatter_impl<I>(*a.out[0], *a.in[0], *a.in[1], dim, Replace<typename Bytes<sizeof(T)>::type>{});
  } else if constexpr (D == DType::boolean) {
    scatter_impl<I>(*a.out[0], *a.in[0], *a.in[1], dim, AccBool(p.alpha));
  } else {
    scatter_impl<I>(*a.out[0], *a.in[0], *a.in[1], dim, Acc<T>(p.alpha));
  }
}

template <size_t ES>
void cat_kernel(const KernelArgs& a) {
  copy_same<typename Bytes<ES>::type>(*a.out[0], *a.in[0]);
}

// out (contiguous) = x tiled; x has out's rank and out.size(i) is a multiple of x.size(i).
template <size_t ES>
void repeat_kernel(const KernelArgs& a) {
  using E = typename Bytes<ES>::type;
  const Tensor& x = *a.in[0];
  Tensor& out = *a.out[0];
  const int nd = out.dim();
  const int64_t len = out.size(nd - 1), xn = x.size(nd - 1), xs = x.stride(nd - 1), reps = len / xn;
  const int64_t rows = out.numel() / len;
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(out.data());
  parallel_for(rows, grain_for(len), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t flat = r, off = 0;
      for (int i = nd - 2; i >= 0; --i) {
        off += (flat % out.size(i) % x.size(i)) * x.stride(i);
        flat /= out.size(i);
      }
      const char* src = xb + off;
      E* dst = reinterpret_cast<E*>(ob + r * len * static_cast<int64_t>(ES));
      if (xs == static_cast<int64_t>(ES)) {
        std::memcpy(dst, src, static_cast<size_t>(xn) * ES);
      } else {
        for (int64_t j = 0; j < xn; ++j) dst[j] = ld<E>(src + j * xs);
      }
      for (int64_t k = 1; k < reps; ++k) std::memcpy(dst + k * xn, dst, static_cast<size_t>(xn) * ES);
    }
  });
}

template <typename E>
inline void fill_row(E* dst, int64_t n, E v) {
  for (int64_t i = 0; i < n; ++i) dst[i] = v;
}

// out (contiguous) = value everywhere except `interior` (a view of out), which gets in[0].
template <size_t ES>
void pad_kernel(const KernelArgs& a) {
  using E = typename Bytes<ES>::type;
  const Tensor& x = *a.in[0];
  Tensor& out = *a.out[0];
  const Tensor& interior = *a.out[1];
  alignas(8) unsigned char pat[8] = {};
  store_from_double(pat, out.dtype(), a.p<PadParams>().value);
  const E val = ld<E>(reinterpret_cast<const char*>(pat));
  const int nd = out.dim();
  const int64_t off0 = static_cast<const char*>(interior.data()) - static_cast<const char*>(out.data());
  int64_t before[kMaxDims];
  for (int i = 0; i < nd; ++i) before[i] = (off0 / out.stride(i)) % out.size(i);
  const int64_t len = out.size(nd - 1), xn = x.size(nd - 1), xs = x.stride(nd - 1), bl = before[nd - 1];
  const int64_t rows = out.numel() / len;
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(out.data());
  parallel_for(rows, grain_for(len), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      E* dst = reinterpret_cast<E*>(ob + r * len * static_cast<int64_t>(ES));
      int64_t flat = r, off = 0;
      bool inside = true;
      for (int i = nd - 2; i >= 0 && inside; --i) {
        const int64_t c = flat % out.size(i) - before[i];
        flat /= out.size(i);
        if (c < 0 || c >= x.size(i)) inside = false;
        off += c * x.stride(i);
      }
      if (!inside) {
        fill_row(dst, len, val);
        continue;
      }
      const char* src = xb + off;
      fill_row(dst, bl, val);
      if (xs == static_cast<int64_t>(ES)) {
        std::memcpy(dst + bl, src, static_cast<size_t>(xn) * ES);
      } else {
        for (int64_t j = 0; j < xn; ++j) dst[bl + j] = ld<E>(src + j * xs);
      }
      fill_row(dst + bl + xn, len - bl - xn, val);
    }
  });
}

// tril/triu over the last two dims; out contiguous, x any strides.
template <size_t ES>
void tri_kernel(const KernelArgs& a) {
  using E = typename Bytes<ES>::type;
  const Tensor& x = *a.in[0];
  Tensor& out = *a.out[0];
  const auto& p = a.p<TriParams>();
  const int nd = x.dim();
  const int64_t R = x.size(nd - 2), C = x.size(nd - 1), rs = x.stride(nd - 2), cs = x.stride(nd - 1);
  const int64_t rows = out.numel() / C;
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(out.data());
  parallel_for(rows, grain_for(C), [&](int64_t b, int64_t e) {
    int64_t cur_batch = -1, boff = 0;
    for (int64_t r = b; r < e; ++r) {
      const int64_t batch = r / R, i = r % R;
      if (batch != cur_batch) {
        cur_batch = batch;
        boff = offset_of(batch, x.shape(), x.strides(), nd - 2);
      }
      // keep j in [lo, hi): tril keeps j <= i + diagonal, triu keeps j >= i + diagonal
      int64_t lo = 0, hi = C;
      if (p.upper) {
        lo = std::clamp<int64_t>(i + p.diagonal, 0, C);
      } else {
        hi = std::clamp<int64_t>(i + p.diagonal + 1, 0, C);
      }
      if (hi < lo) hi = lo;
      E* dst = reinterpret_cast<E*>(ob + r * C * static_cast<int64_t>(ES));
      const char* src = xb + boff + i * rs;
      fill_row<E>(dst, lo, E{0});
      if (cs == static_cast<int64_t>(ES)) {
        std::memcpy(dst + lo, src + lo * cs, static_cast<size_t>(hi - lo) * ES);
      } else {
        for (int64_t j = lo; j < hi; ++j) dst[j] = ld<E>(src + j * cs);
      }
      fill_row<E>(dst + hi, C - hi, E{0});
    }
  });
}

// out (contiguous) [..., C]: 1 at the id, 0 elsewhere.
template <size_t ES, typename I>
void one_hot_kernel(const KernelArgs& a) {
  using E = typename Bytes<ES>::type;
  const Tensor& ids = *a.in[0];
  Tensor& out = *a.out[0];
  alignas(8) unsigned char pat[8] = {};
  store_from_double(pat, out.dtype(), 1.0);
  const E one = ld<E>(reinterpret_cast<const char*>(pat));
  const int64_t C = out.size(out.dim() - 1);
  const char* ib = static_cast<const char*>(ids.data());
  char* ob = static_cast<char*>(out.data());
  parallel_for(ids.numel(), grain_for(C), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      E* dst = reinterpret_cast<E*>(ob + k * C * static_cast<int64_t>(ES));
      fill_row<E>(dst, C, E{0});
      dst[ld<I>(ib + offset_of(k, ids.shape(), ids.strides(), ids.dim()))] = one;
    }
  });
}

#define FLAGOS_INDEX_PLAIN_DTYPES(X) \
  X(f32) X(f64) X(f16) X(bf16) X(i8) X(u8) X(i16) X(i32) X(i64) X(boolean)

}  // namespace

void register_index(KernelRegistry& reg, uint16_t id) {
#define FLAGOS_REG(d)                                                                                      \
  {                                                                                                        \
    constexpr DType D = DType::d;                                                                          \
    constexpr size_t ES = sizeof(typename StorageOf<D>::type);                                             \
    reg.add("gather", id, KernelKey{D, DType::i32}, &gather_kernel<ES, int32_t>);                           \
    reg.add("gather", id, KernelKey{D, DType::i64}, &gather_kernel<ES, int64_t>);                           \
    reg.add("index_select", id, KernelKey{D, DType::i32}, &index_select_kernel<ES, int32_t>);               \
    reg.add("index_select", id, KernelKey{D, DType::i64}, &index_select_kernel<ES, int64_t>);               \
    reg.add("scatter", id, KernelKey{D, DType::i32}, &scatter_kernel<D, int32_t>);                          \
    reg.add("scatter", id, KernelKey{D, DType::i64}, &scatter_kernel<D, int64_t>);                          \
    reg.add("index_add", id, KernelKey{D, DType::i32}, &scatter_kernel<D, int32_t>);                        \
    reg.add("index_add", id, KernelKey{D, DType::i64}, &scatter_kernel<D, int64_t>);                        \
    reg.add("one_hot", id, KernelKey{D, DType::i32}, &one_hot_kernel<ES, int32_t>);                         \
    reg.add("one_hot", id, KernelKey{D, DType::i64}, &one_hot_kernel<ES, int64_t>);                         \
    reg.add("cat", id, KernelKey{D}, &cat_kernel<ES>);                                                     \
    reg.add("repeat", id, KernelKey{D}, &repeat_kernel<ES>);                                               \
    reg.add("pad", id, KernelKey{D}, &pad_kernel<ES>);                                                     \
    reg.add("tril", id, KernelKey{D}, &tri_kernel<ES>);                                                    \
    reg.add("triu", id, KernelKey{D}, &tri_kernel<ES>);                                                    \
  }
  FLAGOS_INDEX_PLAIN_DTYPES(FLAGOS_REG)
#undef FLAGOS_REG
}

}  // namespace flagos::cpu
