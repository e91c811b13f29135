// Index family: gather, index_select, scatter (replace / add), index_add, one_hot, cat, repeat,
// pad, tril/triu. Data movers are instantiated per element size and registered for every dtype of
// that size; scatter-add does arithmetic per dtype.
//
// Indices of device tensors are not checked by the op layer (the host cannot read them): these
// kernels skip out-of-range indices and record the first bad position, and the launcher then
// throws the same InvalidArgument the host check gives (op, value, position, size). That check
// synchronizes the stream, except while the stream is being captured into a graph (the kernels
// still never touch memory through a bad index).
#include <climits>
#include <cstring>
#include <string>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels/families.h"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

template <size_t N> struct BytesOf;
template <> struct BytesOf<1> { using type = uint8_t; };
template <> struct BytesOf<2> { using type = uint16_t; };
template <> struct BytesOf<4> { using type = uint32_t; };
template <> struct BytesOf<8> { using type = uint64_t; };

using BadWord = unsigned long long;
constexpr BadWord kNoBad = ULLONG_MAX;

__device__ __forceinline__ void report_bad(BadWord* w, int64_t pos) { atomicMin(w, static_cast<BadWord>(pos)); }

// The first out-of-range index recorded by a kernel, turned into the op layer's error message.
class BadIndexCheck {
 public:
  BadIndexCheck(Device dev, cudaStream_t s) : buf_(Tensor::empty({1}, DType::i64, dev)), stream_(s) {
    CUDA_CHECK(cudaMemsetAsync(buf_.data(), 0xff, sizeof(BadWord), s));
  }
  BadWord* word() const { return static_cast<BadWord*>(buf_.data()); }

  // `index` is the tensor whose flat (row-major) position the kernel recorded.
  void verify(const char* op, const Tensor& index, int64_t size, const std::string& what, const char* noun) const {
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(stream_, &cap));
    if (cap != cudaStreamCaptureStatusNone) return;
    BadWord pos = kNoBad;
    CUDA_CHECK(cudaMemcpyAsync(&pos, word(), sizeof(pos), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (pos == kNoBad) return;
    int64_t flat = static_cast<int64_t>(pos), off = 0;
    std::string coords;
    for (int d = index.dim() - 1; d >= 0; --d) {
      const int64_t c = flat % index.size(d);
      flat /= index.size(d);
      off += c * index.stride(d);
      coords = std::to_string(c) + (coords.empty() ? "" : ", ") + coords;
    }
    int64_t v = 0;
    if (index.dtype() == DType::i64) {
      CUDA_CHECK(cudaMemcpy(&v, static_cast<const char*>(index.data()) + off, 8, cudaMemcpyDeviceToHost));
    } else {
      int32_t w = 0;
      CUDA_CHECK(cudaMemcpy(&w, static_cast<const char*>(index.data()) + off, 4, cudaMemcpyDeviceToHost));
      v = w;
    }
    fail(op, ": ", noun, " ", v, " at position [", coords, "] is out of range for ", what, " of size ", size);
  }

 private:
  Tensor buf_;
  cudaStream_t stream_;
};

std::string dim_of_x(int64_t d) { return "dim " + std::to_string(d) + " of x"; }

// ---------------------------------------------------------------- gather / index_select
// out[c] = x[c with c[dim] = index[c]]; operands of the indexer: out, index, x with stride 0 at dim.
// The recorded position of element i is (i / pos_div) % pos_mod.
struct GatherArgs {
  int64_t n = 0, sd = 0, size = 0, pos_div = 1, pos_mod = LLONG_MAX;
  Indexer<3> ix;
  char* out = nullptr;
  const char* index = nullptr;
  const char* x = nullptr;
  BadWord* bad = nullptr;
};

template <typename E, typename I>
__global__ void __launch_bounds__(kThreads) gather_dev(GatherArgs a) {
  for (int64_t i = global_thread(); i < a.n; i += grid_threads()) {
    int64_t off[3];
    a.ix.offsets(i, off);
    const int64_t v = *reinterpret_cast<const I*>(a.index + off[1]);
    if (v < 0 || v >= a.size) {
      report_bad(a.bad, (i / a.pos_div) % a.pos_mod);
      continue;
    }
    *reinterpret_cast<E*>(a.out + off[0]) = *reinterpret_cast<const E*>(a.x + off[2] + v * a.sd);
  }
}

template <size_t ES, typename I>
void gather_launch(const KernelArgs& args, const Tensor& index_full, int64_t pos_div, int64_t pos_mod,
                   const char* op, const Tensor& reported_index) {
  const Tensor& x = *args.in[0];
  const Tensor& out = *args.out[0];
  const int d = static_cast<int>(args.p<IndexParams>().dim);
  cudaStream_t s = kernel_stream(args);
  BadIndexCheck check(out.device(), s);
  Strides xs = x.strides();
  xs[d] = 0;
  GatherArgs a;
  a.n = out.numel();
  a.sd = x.stride(d);
  a.size = x.size(d);
  a.pos_div = pos_div;
  a.pos_mod = pos_mod;
  a.ix = make_indexer<3>(out.shape(), {&out.strides(), &index_full.strides(), &xs});
  a.out = static_cast<char*>(out.data());
  a.index = static_cast<const char*>(index_full.data());
  a.x = static_cast<const char*>(x.data());
  a.bad = check.word();
  gather_dev<typename BytesOf<ES>::type, I><<<grid_for(a.n, out.device().index), kThreads, 0, s>>>(a);
  CUDA_CHECK_LAUNCH();
  check.verify(op, reported_index, a.size, dim_of_x(d), "index");
}

template <size_t ES, typename I>
void gather_k(const KernelArgs& a) {
  gather_launch<ES, I>(a, *a.in[1], 1, LLONG_MAX, "gather", *a.in[1]);
}

template <size_t ES, typename I>
void index_select_k(const KernelArgs& a) {
  const Tensor& idx = *a.in[1];  // 1-d
  const Tensor& out = *a.out[0];
  const int d = static_cast<int>(a.p<IndexParams>().dim);
  Strides st = Strides::filled(out.dim(), 0);
  st[d] = idx.stride(0);
  const Tensor full = idx.as_strided(out.shape(), st, idx.offset());
  int64_t inner = 1;
  for (int i = d + 1; i < out.dim(); ++i) inner *= out.size(i);
  gather_launch<ES, I>(a, full, inner, idx.size(0), "index_select", idx);
}

// ---------------------------------------------------------------- scatter / index_add
// One thread per position of index with `dim` removed; it walks `dim` in order, so the last write
// wins and sums accumulate in a fixed order (positions that differ outside `dim` never meet).
struct ScatterArgs {
  int64_t cols = 0, n = 0, inner = 1;  // n = index.size(dim); inner = index dims after dim
  int64_t is = 0, ss = 0, os = 0;      // strides along dim: index, src, out
  int64_t size = 0;                    // out.size(dim)
  Indexer<3> ix;                       // over index shape without dim: out (dim stride 0), index, src
  char* out = nullptr;
  const char* index = nullptr;
  const char* src = nullptr;
  double alpha = 1.0;
  bool add = false;
  bool pos_1d = false;  // report j (index_add's 1-d index) instead of the flat position
  BadWord* bad = nullptr;
};

template <typename T>
__device__ __forceinline__ void accumulate(T* dst, const T* src, double alpha) {
  if constexpr (std::is_same_v<T, bool>) {
    *dst = *dst || (alpha != 0.0 && *src);
  } else if constexpr (is_float_v<T>) {
    using C = acc_t<T>;
    store(dst, load(dst) + static_cast<C>(alpha) * load(src));
  } else {
    const uint64_t a = static_cast<uint64_t>(static_cast<int64_t>(alpha));
    const uint64_t r = static_cast<uint64_t>(static_cast<int64_t>(*dst)) + a * static_cast<uint64_t>(static_cast<int64_t>(*src));
    *dst = static_cast<T>(r);
  }
}

template <typename T, typename I>
__global__ void __launch_bounds__(kThreads) scatter_dev(ScatterArgs a) {
  for (int64_t c = global_thread(); c < a.cols; c += grid_threads()) {
    int64_t off[3];
    a.ix.offsets(c, off);
    for (int64_t j = 0; j < a.n; ++j) {
      const int64_t v = *reinterpret_cast<const I*>(a.index + off[1] + j * a.is);
      if (v < 0 || v >= a.size) {
        report_bad(a.bad, a.pos_1d ? j : (c / a.inner) * a.n * a.inner + j * a.inner + c % a.inner);
        continue;
      }
      T* dst = reinterpret_cast<T*>(a.out + off[0] + v * a.os);
      const T* src = reinterpret_cast<const T*>(a.src + off[2] + j * a.ss);
      if (a.add)
        accumulate(dst, src, a.alpha);
      else
        *dst = *src;
    }
  }
}

template <DType D, typename I, bool kIndexAdd>
void scatter_k(const KernelArgs& args) {
  using T = type_of<D>;
  const Tensor& src = *args.in[0];
  const Tensor& index = *args.in[1];
  const Tensor& out = *args.out[0];
  const auto& p = args.p<IndexParams>();
  const int d = static_cast<int>(p.dim);
  cudaStream_t s = kernel_stream(args);
  BadIndexCheck check(out.device(), s);
  ScatterArgs a;
  a.n = index.size(d);
  a.is = index.stride(d);
  a.ss = src.stride(d);
  a.os = out.stride(d);
  a.size = out.size(d);
  for (int i = d + 1; i < index.dim(); ++i) a.inner *= index.size(i);
  // Column views: index's shape with `dim` of size 1 (its stride no longer matters).
  Shape cs = index.shape();
  cs[d] = 1;
  Strides ost = out.strides(), ist = index.strides(), sst = src.strides();
  a.cols = cs.numel();
  a.ix = make_indexer<3>(cs, {&ost, &ist, &sst});
  a.out = static_cast<char*>(out.data());
  a.index = static_cast<const char*>(index.data());
  a.src = static_cast<const char*>(src.data());
  a.alpha = p.alpha;
  a.add = p.reduce != 0;
  a.pos_1d = kIndexAdd;
  a.bad = check.word();
  scatter_dev<T, I><<<grid_for(a.cols, out.device().index), kThreads, 0, s>>>(a);
  CUDA_CHECK_LAUNCH();
  if (kIndexAdd) {
    const Tensor idx1 = index.as_strided({a.n}, {a.is}, index.offset());
    check.verify("index_add", idx1, a.size, dim_of_x(d), "index");
  } else {
    check.verify("scatter", index, a.size, dim_of_x(d), "index");
  }
}

// ---------------------------------------------------------------- one_hot
template <typename E, typename I>
__global__ void __launch_bounds__(kThreads) one_hot_dev(int64_t n, Indexer<1> ix, const char* ids, E* out,
                                                        int64_t classes, E one, BadWord* bad) {
  for (int64_t k = global_thread(); k < n; k += grid_threads()) {
    int64_t off[1];
    ix.offsets(k, off);
    const int64_t v = *reinterpret_cast<const I*>(ids + off[0]);
    if (v < 0 || v >= classes) {
      report_bad(bad, k);
      continue;
    }
    out[k * classes + v] = one;
  }
}

template <DType D, typename I>
void one_hot_k(const KernelArgs& args) {
  using E = typename BytesOf<sizeof(type_of<D>)>::type;
  const Tensor& ids = *args.in[0];
  const Tensor& out = *args.out[0];  // fresh, contiguous
  const int64_t classes = out.size(out.dim() - 1);
  cudaStream_t s = kernel_stream(args);
  BadIndexCheck check(out.device(), s);
  CUDA_CHECK(cudaMemsetAsync(out.data(), 0, out.nbytes(), s));
  alignas(8) unsigned char pat[8] = {};
  store_from_double(pat, out.dtype(), 1.0);
  E one;
  std::memcpy(&one, pat, sizeof(E));
  const int64_t n = ids.numel();
  const Indexer<1> ix = make_indexer<1>(ids.shape(), {&ids.strides()});
  one_hot_dev<E, I><<<grid_for(n, out.device().index), kThreads, 0, s>>>(
      n, ix, static_cast<const char*>(ids.data()), static_cast<E*>(out.data()), classes, one, check.word());
  CUDA_CHECK_LAUNCH();
  check.verify("one_hot", ids, classes, "num_classes", "id");
}

// ---------------------------------------------------------------- cat / repeat / pad / tril / triu
void cat_k(const KernelArgs& a) { copy_strided_async(*a.out[0], *a.in[0], kernel_stream(a)); }

// Shapes and strides for kernels that map output coordinates to input coordinates themselves.
struct DimsArg {
  int nd = 0;
  int64_t out_size[kMaxDims] = {}, out_stride[kMaxDims] = {}, in_size[kMaxDims] = {}, in_stride[kMaxDims] = {};
  int64_t before[kMaxDims] = {};  // pad: where x starts in out
};

DimsArg dims_arg(const Tensor& out, const Tensor& in) {
  DimsArg d;
  d.nd = out.dim();
  for (int i = 0; i < d.nd; ++i) {
    d.out_size[i] = out.size(i);
    d.out_stride[i] = out.stride(i);
    d.in_size[i] = in.size(i);
    d.in_stride[i] = in.stride(i);
  }
  return d;
}

// out = x tiled: out coordinate c reads x at c % x.size.
template <typename E>
__global__ void __launch_bounds__(kThreads) repeat_dev(int64_t n, DimsArg g, char* out, const char* x) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t r = i, oo = 0, xo = 0;
    for (int d = g.nd - 1; d >= 0; --d) {
      const int64_t c = r % g.out_size[d];
      r /= g.out_size[d];
      oo += c * g.out_stride[d];
      xo += (c % g.in_size[d]) * g.in_stride[d];
    }
    *reinterpret_cast<E*>(out + oo) = *reinterpret_cast<const E*>(x + xo);
  }
}

template <size_t ES>
void repeat_k(const KernelArgs& a) {
  const Tensor& out = *a.out[0];
  const int64_t n = out.numel();
  repeat_dev<typename BytesOf<ES>::type><<<grid_for(n, out.device().index), kThreads, 0, kernel_stream(a)>>>(
      n, dims_arg(out, *a.in[0]), static_cast<char*>(out.data()), static_cast<const char*>(a.in[0]->data()));
  CUDA_CHECK_LAUNCH();
}

// out = value everywhere except the box at `before` of x's size, which holds x.
template <typename E>
__global__ void __launch_bounds__(kThreads) pad_dev(int64_t n, DimsArg g, char* out, const char* x, E value) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t r = i, oo = 0, xo = 0;
    bool inside = true;
    for (int d = g.nd - 1; d >= 0; --d) {
      const int64_t c = r % g.out_size[d];
      r /= g.out_size[d];
      oo += c * g.out_stride[d];
      const int64_t xc = c - g.before[d];
      inside = inside && xc >= 0 && xc < g.in_size[d];
      xo += xc * g.in_stride[d];
    }
    *reinterpret_cast<E*>(out + oo) = inside ? *reinterpret_cast<const E*>(x + xo) : value;
  }
}

template <size_t ES>
void pad_k(const KernelArgs& a) {
  using E = typename BytesOf<ES>::type;
  const Tensor& x = *a.in[0];
  const Tensor& out = *a.out[0];
  const Tensor& interior = *a.out[1];
  alignas(8) unsigned char pat[8] = {};
  store_from_double(pat, out.dtype(), a.p<PadParams>().value);
  E value;
  std::memcpy(&value, pat, sizeof(E));
  const int64_t off0 = static_cast<const char*>(interior.data()) - static_cast<const char*>(out.data());
  DimsArg g = dims_arg(out, x);
  for (int i = 0; i < out.dim(); ++i) g.before[i] = (off0 / out.stride(i)) % out.size(i);  // out is contiguous
  const int64_t n = out.numel();
  pad_dev<E><<<grid_for(n, out.device().index), kThreads, 0, kernel_stream(a)>>>(
      n, g, static_cast<char*>(out.data()), static_cast<const char*>(x.data()), value);
  CUDA_CHECK_LAUNCH();
}

// tril keeps j <= i + diagonal, triu keeps j >= i + diagonal (last two dims), zeros elsewhere.
template <typename E>
__global__ void __launch_bounds__(kThreads) tri_dev(int64_t n, Indexer<2> ix, int64_t rows, int64_t cols,
                                                    int64_t diagonal, bool upper, char* out, const char* x) {
  for (int64_t k = global_thread(); k < n; k += grid_threads()) {
    int64_t off[2];
    ix.offsets(k, off);
    const int64_t j = k % cols, i = (k / cols) % rows;
    const bool keep = upper ? j >= i + diagonal : j <= i + diagonal;
    *reinterpret_cast<E*>(out + off[0]) = keep ? *reinterpret_cast<const E*>(x + off[1]) : E(0);
  }
}

template <size_t ES>
void tri_k(const KernelArgs& a) {
  const Tensor& x = *a.in[0];
  const Tensor& out = *a.out[0];
  const auto& p = a.p<TriParams>();
  const int64_t n = out.numel();
  const Indexer<2> ix = make_indexer<2>(out.shape(), {&out.strides(), &x.strides()});
  tri_dev<typename BytesOf<ES>::type><<<grid_for(n, out.device().index), kThreads, 0, kernel_stream(a)>>>(
      n, ix, out.size(out.dim() - 2), out.size(out.dim() - 1), p.diagonal, p.upper, static_cast<char*>(out.data()),
      static_cast<const char*>(x.data()));
  CUDA_CHECK_LAUNCH();
}

template <DType D>
void register_dtype(KernelRegistry& reg, uint16_t b) {
  constexpr size_t ES = sizeof(type_of<D>);
  reg.add("gather", b, KernelKey{D, DType::i32}, &gather_k<ES, int32_t>);
  reg.add("gather", b, KernelKey{D, DType::i64}, &gather_k<ES, int64_t>);
  reg.add("index_select", b, KernelKey{D, DType::i32}, &index_select_k<ES, int32_t>);
  reg.add("index_select", b, KernelKey{D, DType::i64}, &index_select_k<ES, int64_t>);
  reg.add("scatter", b, KernelKey{D, DType::i32}, &scatter_k<D, int32_t, false>);
  reg.add("scatter", b, KernelKey{D, DType::i64}, &scatter_k<D, int64_t, false>);
  reg.add("index_add", b, KernelKey{D, DType::i32}, &scatter_k<D, int32_t, true>);
  reg.add("index_add", b, KernelKey{D, DType::i64}, &scatter_k<D, int64_t, true>);
  reg.add("one_hot", b, KernelKey{D, DType::i32}, &one_hot_k<D, int32_t>);
  reg.add("one_hot", b, KernelKey{D, DType::i64}, &one_hot_k<D, int64_t>);
  reg.add("cat", b, KernelKey{D}, &cat_k);
  reg.add("repeat", b, KernelKey{D}, &repeat_k<ES>);
  reg.add("pad", b, KernelKey{D}, &pad_k<ES>);
  reg.add("tril", b, KernelKey{D}, &tri_k<ES>);
  reg.add("triu", b, KernelKey{D}, &tri_k<ES>);
}

}  // namespace

void register_index(KernelRegistry& reg, uint16_t b) {
  register_dtype<DType::f32>(reg, b);
  register_dtype<DType::f64>(reg, b);
  register_dtype<DType::f16>(reg, b);
  register_dtype<DType::bf16>(reg, b);
  register_dtype<DType::i8>(reg, b);
  register_dtype<DType::u8>(reg, b);
  register_dtype<DType::i16>(reg, b);
  register_dtype<DType::i32>(reg, b);
  register_dtype<DType::i64>(reg, b);
  register_dtype<DType::boolean>(reg, b);
}

}  // namespace flagos::cuda
