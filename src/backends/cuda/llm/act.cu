// Gated activations over x [..., 2n] = [gate | up] -> act(gate) * up [..., n]: silu_and_mul and
// gelu_and_mul (erf form, or the tanh approximation). f32 compute, one rounding at the store.
// Contiguous x and out with n a multiple of the 16-byte vector: one pass of 16-byte loads and
// stores (grid-stride); otherwise per element through a strided indexer.
#include "backends/cuda/llm/llm_common.cuh"
#include "flagos/op_params.h"

namespace flagos::cuda::llm {
namespace {

enum class Act { silu, gelu_erf, gelu_tanh };

template <Act A>
__device__ __forceinline__ float act(float g) {
  if constexpr (A == Act::silu) {
    return g / (1.0f + expf(-g));
  } else if constexpr (A == Act::gelu_erf) {
    return 0.5f * g * erfcf(-g * 0.70710678118654752f);  // erfc: no cancellation in the negative tail
  } else {
    // 0.5 g (1 + tanh(y)) == g * sigmoid(2y)
    const float y = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return g / (1.0f + expf(-2.0f * y));
  }
}

template <typename T, Act A>
__global__ void act_vec_kernel(const T* __restrict__ x, T* __restrict__ o, int64_t n, int64_t nvec_row, int64_t total) {
  constexpr int VE = 16 / sizeof(T);
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t r = i / nvec_row, c = (i - r * nvec_row) * VE;
    const T* g = x + r * 2 * n + c;
    const Pack<T, VE> pg = *reinterpret_cast<const Pack<T, VE>*>(g);
    const Pack<T, VE> pu = *reinterpret_cast<const Pack<T, VE>*>(g + n);
    Pack<T, VE> po;
#pragma unroll
    for (int k = 0; k < VE; ++k) po.v[k] = from_f<T>(act<A>(to_f(pg.v[k])) * to_f(pu.v[k]));
    *reinterpret_cast<Pack<T, VE>*>(o + r * n + c) = po;
  }
}

template <typename T, Act A>
__global__ void act_strided_kernel(const char* __restrict__ x, char* __restrict__ o, Indexer<2> ix, int64_t up_off,
                                   int64_t total) {
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    int64_t off[2];
    ix.offsets(i, off);
    const T* g = reinterpret_cast<const T*>(x + off[1]);
    const T* u = reinterpret_cast<const T*>(x + off[1] + up_off);
    *reinterpret_cast<T*>(o + off[0]) = from_f<T>(act<A>(to_f(*g)) * to_f(*u));
  }
}

template <typename T, Act A>
void act_run(const KernelArgs& a) {
  const Tensor& x = *a.in[0];
  Tensor& o = *a.out[0];
  const int64_t n = o.shape().back(), total = o.numel();
  if (total == 0) return;
  const cudaStream_t s = kernel_stream(a);
  const int dev = a.stream.device().index;
  constexpr int VE = 16 / sizeof(T);
  if (x.is_contiguous() && o.is_contiguous() && n % VE == 0 && aligned16(x.data()) && aligned16(o.data())) {
    const int64_t nv = total / VE;
    act_vec_kernel<T, A><<<grid_for(nv, dev), kThreads, 0, s>>>(x.data_as<T>(), o.data_as<T>(), n, n / VE, nv);
  } else {
    const Indexer<2> ix = make_indexer<2>(o.shape(), {&o.strides(), &x.strides()});
    act_strided_kernel<T, A><<<grid_for(total, dev), kThreads, 0, s>>>(
        static_cast<const char*>(x.data()), static_cast<char*>(o.data()), ix, n * x.stride(x.dim() - 1), total);
  }
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void silu_and_mul_launch(const KernelArgs& a) {
  act_run<T, Act::silu>(a);
}

template <typename T>
void gelu_and_mul_launch(const KernelArgs& a) {
  if (a.p<ScalarParams>().a != 0) act_run<T, Act::gelu_tanh>(a);
  else act_run<T, Act::gelu_erf>(a);
}

}  // namespace

void register_act(KernelRegistry& reg, uint16_t b) {
  reg.add("silu_and_mul", b, KernelKey{DType::f32}, &silu_and_mul_launch<float>);
  reg.add("silu_and_mul", b, KernelKey{DType::f16}, &silu_and_mul_launch<__half>);
  reg.add("silu_and_mul", b, KernelKey{DType::bf16}, &silu_and_mul_launch<__nv_bfloat16>);
  reg.add("gelu_and_mul", b, KernelKey{DType::f32}, &gelu_and_mul_launch<float>);
  reg.add("gelu_and_mul", b, KernelKey{DType::f16}, &gelu_and_mul_launch<__half>);
  reg.add("gelu_and_mul", b, KernelKey{DType::bf16}, &gelu_and_mul_launch<__nv_bfloat16>);
}

}  // namespace flagos::cuda::llm
