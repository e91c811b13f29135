// Rotary position embedding over x [..., T, H, D] with positions [..., T] (expanded by the op
// layer). The inverse frequencies come from ops::rope_inv_freq on the host (every scaling mode)
// and travel in the kernel's parameters. One block per token: the angles pos * inv_freq are
// reduced mod 2*pi in double (large positions keep f32 accuracy), cos/sin are taken in f32 once
// into shared memory and reused by every head. NeoX rotates the halves of the rotary part, GPT-J
// interleaved pairs; features past rotary_dim pass through. Contiguous 16-byte aligned heads use
// 16-byte loads; in place (out == x) works since each thread rewrites only what it read.
#include <cmath>

#include "backends/cuda/llm/llm_common.cuh"
#include "flagos/op_params.h"
#include "flagos/ops.h"

namespace flagos::cuda::llm {
namespace {

constexpr int kMaxHalf = 256;  // rotary_dim <= 512
constexpr int kMaxLead = kMaxDims;

struct RopeFreqs {
  double f[kMaxHalf];
};

struct RopeGeom {
  int nlead = 0;                   // leading dims [..., T]
  int64_t lead[kMaxLead] = {};     // sizes
  int64_t xs[kMaxLead] = {}, os[kMaxLead] = {}, ps[kMaxLead] = {};  // element strides of x, out, pos
  int64_t H = 0, D = 0, xh = 0, xd = 0, oh = 0, od = 0;
  int half = 0;
  bool neox = true, same = false;
  float mscale = 1.f;
};

template <typename T, typename P, int VE>
__global__ void rope_kernel(const T* x, T* o, const P* pos, RopeGeom g, RopeFreqs fr) {
  __shared__ float cs[2 * kMaxHalf];
  int64_t t = blockIdx.x, xo = 0, oo = 0, po = 0;
  for (int d = g.nlead - 1; d >= 0; --d) {
    const int64_t q = t / g.lead[d], i = t - q * g.lead[d];
    t = q;
    xo += i * g.xs[d];
    oo += i * g.os[d];
    po += i * g.ps[d];
  }
  const double pd = static_cast<double>(pos[po]);
  constexpr double two_pi = 6.283185307179586476925286766559;
  for (int i = threadIdx.x; i < g.half; i += blockDim.x) {
    const double th = pd * fr.f[i];
    const float af = static_cast<float>(th - two_pi * rint(th * (1.0 / two_pi)));
    float sn, cn;
    sincosf(af, &sn, &cn);
    cs[i] = cn * g.mscale;
    cs[kMaxHalf + i] = sn * g.mscale;
  }
  __syncthreads();
  const T* xt = x + xo;
  T* ot = o + oo;
  const int half = g.half;
  if (g.neox) {
    // item = VE consecutive pairs (i, i + half) of one head
    const int per_head = half / VE;
    for (int64_t it = threadIdx.x; it < g.H * per_head; it += blockDim.x) {
      const int64_t h = it / per_head;
      const int i0 = static_cast<int>(it - h * per_head) * VE;
      const T* xr = xt + h * g.xh;
      T* orow = ot + h * g.oh;
      if constexpr (VE > 1) {
        const Pack<T, VE> a = *reinterpret_cast<const Pack<T, VE>*>(xr + i0);
        const Pack<T, VE> b = *reinterpret_cast<const Pack<T, VE>*>(xr + i0 + half);
        Pack<T, VE> ya, yb;
#pragma unroll
        for (int k = 0; k < VE; ++k) {
          const float c = cs[i0 + k], s = cs[kMaxHalf + i0 + k];
          const float x1 = to_f(a.v[k]), x2 = to_f(b.v[k]);
          ya.v[k] = from_f<T>(x1 * c - x2 * s);
          yb.v[k] = from_f<T>(x2 * c + x1 * s);
        }
        *reinterpret_cast<Pack<T, VE>*>(orow + i0) = ya;
        *reinterpret_cast<Pack<T, VE>*>(orow + i0 + half) = yb;
      } else {
        const float c = cs[i0], s = cs[kMaxHalf + i0];
        const float x1 = to_f(xr[i0 * g.xd]), x2 = to_f(xr[(i0 + half) * g.xd]);
        orow[i0 * g.od] = from_f<T>(x1 * c - x2 * s);
        orow[(i0 + half) * g.od] = from_f<T>(x2 * c + x1 * s);
      }
    }
  } else {
    // item = VE consecutive elements = VE / 2 interleaved pairs (one pair when VE == 1)
    constexpr int PE = VE > 1 ? VE : 2;
    const int per_head = 2 * half / PE;
    for (int64_t it = threadIdx.x; it < g.H * per_head; it += blockDim.x) {
      const int64_t h = it / per_head;
      const int e0 = static_cast<int>(it - h * per_head) * PE;
      const T* xr = xt + h * g.xh;
      T* orow = ot + h * g.oh;
      if constexpr (VE > 1) {
        const Pack<T, VE> a = *reinterpret_cast<const Pack<T, VE>*>(xr + e0);
        Pack<T, VE> y;
#pragma unroll
        for (int k = 0; k < VE; k += 2) {
          const int i = (e0 + k) / 2;
          const float c = cs[i], s = cs[kMaxHalf + i];
          const float x0 = to_f(a.v[k]), x1 = to_f(a.v[k + 1]);
          y.v[k] = from_f<T>(x0 * c - x1 * s);
          y.v[k + 1] = from_f<T>(x1 * c + x0 * s);
        }
        *reinterpret_cast<Pack<T, VE>*>(orow + e0) = y;
      } else {
        const int i = e0 / 2;
        const float c = cs[i], s = cs[kMaxHalf + i];
        const float x0 = to_f(xr[e0 * g.xd]), x1 = to_f(xr[(e0 + 1) * g.xd]);
        orow[e0 * g.od] = from_f<T>(x0 * c - x1 * s);
        orow[(e0 + 1) * g.od] = from_f<T>(x1 * c + x0 * s);
      }
    }
  }
  if (!g.same) {  // features past rotary_dim pass through
    const int64_t rest = g.D - 2 * half;
    for (int64_t it = threadIdx.x; it < g.H * rest; it += blockDim.x) {
      const int64_t h = it / rest, d = 2 * half + (it - h * rest);
      ot[h * g.oh + d * g.od] = xt[h * g.xh + d * g.xd];
    }
  }
}

template <typename T, typename P>
void rope_launch(const KernelArgs& a) {
  const RopeParams& p = a.p<RopeParams>();
  const Tensor& x = *a.in[0];
  const Tensor& pos = *a.in[1];
  Tensor& o = *a.out[0];
  const int nd = x.dim();
  const int64_t tokens = pos.numel();
  if (tokens == 0 || o.numel() == 0) return;
  const std::vector<double> inv = ops::rope_inv_freq(p);
  if (inv.size() > static_cast<size_t>(kMaxHalf))
    fail<NotSupported>("rope on cuda: rotary_dim ", p.rotary_dim, " exceeds the supported ", 2 * kMaxHalf);
  RopeFreqs fr{};
  for (size_t i = 0; i < inv.size(); ++i) fr.f[i] = inv[i];
  RopeGeom g;
  g.nlead = nd - 2;
  for (int d = 0; d < nd - 2; ++d) {
    g.lead[d] = x.size(d);
    g.xs[d] = est(x, d);
    g.os[d] = est(o, d);
    g.ps[d] = est(pos, d);
  }
  g.H = x.size(nd - 2);
  g.D = x.size(nd - 1);
  g.xh = est(x, nd - 2), g.xd = est(x, nd - 1), g.oh = est(o, nd - 2), g.od = est(o, nd - 1);
  g.half = static_cast<int>(p.rotary_dim / 2);
  g.neox = p.layout == RopeLayout::neox;
  g.same = x.data() == o.data() && g.xh == g.oh && g.xd == g.od;
  g.mscale = static_cast<float>(ops::rope_mscale(p));
  const cudaStream_t s = kernel_stream(a);
  constexpr int VE = 16 / sizeof(T);
  // 16-byte path: unit feature stride, every head and token start 16-byte aligned, and the
  // vector fits the rotary halves (neox) or the rotary part (gptj).
  bool vec = g.xd == 1 && g.od == 1 && aligned16(x.data()) && aligned16(o.data()) && g.xh % VE == 0 &&
             g.oh % VE == 0 && (g.neox ? g.half % VE == 0 : (2 * g.half) % VE == 0);
  for (int d = 0; d < g.nlead && vec; ++d) vec = g.xs[d] % VE == 0 && g.os[d] % VE == 0;
  const int64_t items = g.H * (vec ? (g.neox ? g.half / VE : 2 * g.half / VE) : g.half);
  int threads = static_cast<int>(std::min<int64_t>(256, (items + 31) / 32 * 32));
  threads = std::max(threads, 64);
  const P* pp = pos.data_as<P>();
  if (vec)
    rope_kernel<T, P, VE><<<static_cast<unsigned>(tokens), threads, 0, s>>>(x.data_as<T>(), o.data_as<T>(), pp, g, fr);
  else
    rope_kernel<T, P, 1><<<static_cast<unsigned>(tokens), threads, 0, s>>>(x.data_as<T>(), o.data_as<T>(), pp, g, fr);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void register_rope(KernelRegistry& reg, uint16_t b) {
  reg.add("rope", b, KernelKey{DType::f32, DType::i32}, &rope_launch<float, int32_t>);
  reg.add("rope", b, KernelKey{DType::f32, DType::i64}, &rope_launch<float, int64_t>);
  reg.add("rope", b, KernelKey{DType::f16, DType::i32}, &rope_launch<__half, int32_t>);
  reg.add("rope", b, KernelKey{DType::f16, DType::i64}, &rope_launch<__half, int64_t>);
  reg.add("rope", b, KernelKey{DType::bf16, DType::i32}, &rope_launch<__nv_bfloat16, int32_t>);
  reg.add("rope", b, KernelKey{DType::bf16, DType::i64}, &rope_launch<__nv_bfloat16, int64_t>);
}

}  // namespace flagos::cuda::llm
