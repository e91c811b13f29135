// Creation and copy family: copy (strided copy + cast between every pair of plain dtypes), fill,
// arange, linspace, eye, and the backend's same-dtype strided copy (also for block-quantized rows).
#include "backends/cuda/kernels/elementwise.cuh"
#include "backends/cuda/kernels/families.h"
#include "flagos/op_params.h"

namespace flagos::cuda {
namespace {

template <typename D, typename S>
struct ConvertF {
  __device__ D operator()(const S* v, int64_t) const { return convert<D>(v[0]); }
};

// Same-size copies move raw bits: one instantiation per element size serves every dtype.
template <typename U>
void copy_bits(const Tensor& dst, const Tensor& src, cudaStream_t stream) {
  launch_map<U, U, 1>(dst, {&src}, stream, ConvertF<U, U>{});
}

template <typename U>
Tensor as_bits(const Tensor& t, DType bits) {
  return Tensor::from_blob_strided(t.data(), t.shape(), t.strides(), bits, t.device());
}

void copy_same_dtype(const Tensor& dst, const Tensor& src, cudaStream_t stream) {
  if (dst.is_contiguous() && src.is_contiguous()) {
    CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  switch (dst.itemsize()) {
    case 1: copy_bits<uint8_t>(as_bits<uint8_t>(dst, DType::u8), as_bits<uint8_t>(src, DType::u8), stream); break;
    case 2: copy_bits<int16_t>(as_bits<int16_t>(dst, DType::i16), as_bits<int16_t>(src, DType::i16), stream); break;
    case 4: copy_bits<int32_t>(as_bits<int32_t>(dst, DType::i32), as_bits<int32_t>(src, DType::i32), stream); break;
    case 8: copy_bits<int64_t>(as_bits<int64_t>(dst, DType::i64), as_bits<int64_t>(src, DType::i64), stream); break;
    default: fail<NotSupported>("cuda copy: element size ", dst.itemsize());
  }
}

// Rows of quantized blocks: the innermost dim becomes bytes, copied in the widest unit that
// divides the row size and every outer stride.
void copy_quant_rows(const Tensor& dst, const Tensor& src, cudaStream_t stream) {
  const int64_t rb = static_cast<int64_t>(row_bytes(dst.dtype(), dst.shape().back()));
  int64_t unit = 8;
  auto fits = [&](int64_t u) {
    if (rb % u || !aligned_to(dst.data(), static_cast<size_t>(u)) || !aligned_to(src.data(), static_cast<size_t>(u)))
      return false;
    for (int d = 0; d + 1 < dst.dim(); ++d)
      if (dst.stride(d) % u || src.stride(d) % u) return false;
    return true;
  };
  while (unit > 1 && !fits(unit)) unit /= 2;
  Shape shape(dst.shape().begin(), dst.shape().end() - 1);
  shape.push_back(rb / unit);
  Strides ds(dst.strides().begin(), dst.strides().end() - 1), ss(src.strides().begin(), src.strides().end() - 1);
  ds.push_back(unit);
  ss.push_back(unit);
  const DType bits = unit == 8 ? DType::i64 : unit == 4 ? DType::i32 : unit == 2 ? DType::i16 : DType::u8;
  copy_same_dtype(Tensor::from_blob_strided(dst.data(), shape, ds, bits, dst.device()),
                  Tensor::from_blob_strided(src.data(), shape, ss, bits, src.device()), stream);
}

template <DType DD, DType SD>
void copy_kernel(const KernelArgs& a) {
  cudaStream_t stream = kernel_stream(a);
  if constexpr (DD == SD) {
    copy_same_dtype(*a.out[0], *a.in[0], stream);
  } else {
    using D = type_of<DD>;
    using S = type_of<SD>;
    launch_map<D, S, 1>(*a.out[0], {a.in[0]}, stream, ConvertF<D, S>{});
  }
}

template <typename T>
struct ConstantF {
  T value;
  __device__ T operator()(const T*, int64_t) const { return value; }
};

template <DType DD>
void fill_kernel(const KernelArgs& a) {
  using T = type_of<DD>;
  const T v = convert<T>(a.p<ScalarParams>().a);
  launch_map<T, T, 0>(*a.out[0], {}, kernel_stream(a), ConstantF<T>{v});
}

template <typename T>
struct ArangeF {
  double start, step;
  __device__ T operator()(const T*, int64_t i) const { return convert<T>(start + static_cast<double>(i) * step); }
};

template <DType DD>
void arange_kernel(const KernelArgs& a) {
  using T = type_of<DD>;
  const auto& p = a.p<ScalarParams>();
  launch_map<T, T, 0>(*a.out[0], {}, kernel_stream(a), ArangeF<T>{p.a, p.b});
}

// Symmetric from both ends, so the last value is exactly `end` (as the CPU backend).
template <typename T>
struct LinspaceF {
  double start, end, step;
  int64_t n;
  __device__ T operator()(const T*, int64_t i) const {
    const double v = i < n / 2 ? start + step * static_cast<double>(i) : end - step * static_cast<double>(n - 1 - i);
    return convert<T>(v);
  }
};

template <DType DD>
void linspace_kernel(const KernelArgs& a) {
  using T = type_of<DD>;
  const auto& p = a.p<ScalarParams>();
  const int64_t n = a.out[0]->numel();
  const double step = n > 1 ? (p.b - p.a) / static_cast<double>(n - 1) : 0.0;
  launch_map<T, T, 0>(*a.out[0], {}, kernel_stream(a), LinspaceF<T>{p.a, p.b, step, n});
}

template <typename T>
struct EyeF {
  int64_t cols;
  __device__ T operator()(const T*, int64_t i) const { return convert<T>(i / cols == i % cols ? 1 : 0); }
};

template <DType DD>
void eye_kernel(const KernelArgs& a) {
  using T = type_of<DD>;
  launch_map<T, T, 0>(*a.out[0], {}, kernel_stream(a), EyeF<T>{a.out[0]->size(1)});
}

#define FLAGOS_PLAIN_DTYPES(X) X(f32) X(f64) X(f16) X(bf16) X(i8) X(u8) X(i16) X(i32) X(i64) X(boolean)

template <DType DD>
void register_copy_from_all(KernelRegistry& reg, uint16_t id) {
#define FLAGOS_REG_SRC(s) reg.add("copy", id, KernelKey{DD, DType::s}, &copy_kernel<DD, DType::s>);
  FLAGOS_PLAIN_DTYPES(FLAGOS_REG_SRC)
#undef FLAGOS_REG_SRC
}

}  // namespace

void copy_strided_async(const Tensor& dst, const Tensor& src, void* stream) {
  auto* st = static_cast<cudaStream_t>(stream);
  if (is_quant(dst.dtype())) copy_quant_rows(dst, src, st);
  else copy_same_dtype(dst, src, st);
}

void register_copy(KernelRegistry& reg, uint16_t id) {
#define FLAGOS_REG_DST(d)                                                   \
  register_copy_from_all<DType::d>(reg, id);                                \
  reg.add("fill", id, KernelKey{DType::d}, &fill_kernel<DType::d>);         \
  reg.add("arange", id, KernelKey{DType::d}, &arange_kernel<DType::d>);     \
  reg.add("linspace", id, KernelKey{DType::d}, &linspace_kernel<DType::d>); \
  reg.add("eye", id, KernelKey{DType::d}, &eye_kernel<DType::d>);
  FLAGOS_PLAIN_DTYPES(FLAGOS_REG_DST)
#undef FLAGOS_REG_DST
}

}  // namespace flagos::cuda
