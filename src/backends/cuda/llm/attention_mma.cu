// Tensor-core flash attention for bf16/f16 prefill (mma.sync m16n8k16, f32 accumulation), for
// D == Dv in {64, 128}, no mask, unit feature strides and 16-byte aligned rows; causal, sliding
// window, softcap and GQA supported. A block (8 warps) owns 128 query rows of one head; each warp
// 16 rows, its Q fragments kept in registers. K/V tiles of 64 keys are double-buffered in shared
// memory with cp.async (rows padded by 16 bytes: conflict-free ldmatrix). Per tile: S = Q K^T on
// the tensor cores, scale/softcap/masks on the S fragments, online softmax in registers (row stats
// reduced over the 4 threads of a quad), P converted to 16-bit and reused as the A operand of
// O += P V (V fragments through ldmatrix.trans). Heavier causal tiles are scheduled first.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/llm/attention.cuh"
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/mma.cuh"

namespace flagos::cuda::llm {
namespace {

constexpr int kBM = 128;  // query rows per block (16 per warp)
constexpr int kBN = 64;   // keys per tile
constexpr int kWarps = kBM / 16;

struct MmaArgs {
  const void* q;
  const void* k;
  const void* v;
  void* o;
  int64_t qs[3], ks[3], vs[3], os[3];  // element strides of dims 0..2 (feature stride is 1)
  int64_t Hq, G, Tq, Tk, off, window;
  bool causal;
  float scale_log2;  // scale * log2(e) (no softcap)
  float scale, cap;  // softcap: cap * tanh(s * scale / cap)
};

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) attn_mma_kernel(MmaArgs a) {
  constexpr int P = D + 8;  // padded row pitch (elements)
  constexpr int KT = D / 16;  // k-steps over the head dim
  constexpr int NT = D / 8;   // n-tiles of the output
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qsm = reinterpret_cast<T*>(smem_raw);  // [kBM][P]
  T* ksm = qsm + kBM * P;                   // [2][kBN][P]
  T* vsm = ksm + 2 * kBN * P;               // [2][kBN][P]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int64_t nqt = (a.Tq + kBM - 1) / kBM;
  const int64_t qt = nqt - 1 - blockIdx.x;  // heavy (late) causal tiles first
  const int64_t h = blockIdx.y, b = blockIdx.z, hkv = h / a.G;
  const int64_t q0 = qt * kBM;
  const T* qb = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
  const T* kb = static_cast<const T*>(a.k) + b * a.ks[0] + hkv * a.ks[1];
  const T* vb = static_cast<const T*>(a.v) + b * a.vs[0] + hkv * a.vs[1];

  // key range of the tile
  int64_t jbeg = 0, jend = a.Tk;
  const int64_t qlast = min(a.Tq, q0 + kBM) - 1;
  if (a.causal) jend = min(a.Tk, qlast + a.off + 1);
  if (a.window > 0) jbeg = max(int64_t{0}, q0 + a.off - a.window + 1);
  jbeg = jbeg / kBN * kBN;
  const int64_t ntiles = jend > jbeg ? (jend - jbeg + kBN - 1) / kBN : 0;

  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  auto load_rows = [&](T* dst, const T* src, int nrows, int64_t row0, int64_t nrows_total, int64_t rstride) {
    for (int i = tid; i < nrows * kChunks; i += kWarps * 32) {
      const int r = i / kChunks, c = i % kChunks;
      const int64_t row = row0 + r;
      const bool ok = row < nrows_total;
      cp_async16(dst + r * P + c * 8, src + (ok ? row : 0) * rstride + c * 8, ok ? 16 : 0);
    }
  };
  load_rows(qsm, qb, kBM, q0, a.Tq, a.qs[2]);
  if (ntiles > 0) {
    load_rows(ksm, kb, kBN, jbeg, a.Tk, a.ks[2]);
    load_rows(vsm, vb, kBN, jbeg, a.Tk, a.vs[2]);
  }
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();

  // Q fragments of this warp's 16 rows
  uint32_t qa[KT][4];
#pragma unroll
  for (int kk = 0; kk < KT; ++kk)
    ldmatrix_x4(qa[kk], qsm + (warp * 16 + (lane & 15)) * P + kk * 16 + (lane >> 4) * 8);

  float o[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const int64_t qi0 = q0 + warp * 16 + g;  // rows qi0 and qi0 + 8 of this thread

  for (int64_t it = 0; it < ntiles; ++it) {
    const int buf = static_cast<int>(it & 1);
    const int64_t j0 = jbeg + it * kBN;
    if (it + 1 < ntiles) {
      load_rows(ksm + (buf ^ 1) * kBN * P, kb, kBN, j0 + kBN, a.Tk, a.ks[2]);
      load_rows(vsm + (buf ^ 1) * kBN * P, vb, kBN, j0 + kBN, a.Tk, a.vs[2]);
    }
    cp_async_commit();
    const T* kt = ksm + buf * kBN * P;
    const T* vt = vsm + buf * kBN * P;
    // ---- S = Q K^T (16 rows x 64 keys per warp)
    float s[kBN / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
#pragma unroll
      for (int nt = 0; nt < kBN / 8; nt += 2) {
        uint32_t bf[4];
        const int mi = lane >> 3;
        ldmatrix_x4(bf, kt + (8 * (nt + (mi >> 1)) + (lane & 7)) * P + kk * 16 + (mi & 1) * 8);
        mma16816<T>(s[nt], qa[kk], bf[0], bf[1]);
        mma16816<T>(s[nt + 1], qa[kk], bf[2], bf[3]);
      }
    }
    // ---- scale (log2 domain), softcap, masks
    const bool edge = j0 + kBN > a.Tk || (a.causal && j0 + kBN - 1 > q0 + a.off) ||
                      (a.window > 0 && j0 <= qlast + a.off - a.window);
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e];
        if (a.cap > 0.f) x = a.cap * tanhf(x * a.scale / a.cap) * 1.4426950408889634f;
        else x *= a.scale_log2;
        if (edge) {
          const int64_t j = j0 + nt * 8 + 2 * t4 + (e & 1);
          const int64_t qi = qi0 + (e >> 1) * 8;
          bool vis = j < a.Tk;
          if (a.causal && j > qi + a.off) vis = false;
          if (a.window > 0 && j <= qi + a.off - a.window) vis = false;
          if (!vis) x = -INFINITY;
        }
        s[nt][e] = x;
      }
    // ---- online softmax (rows g and g + 8 of the warp's 16)
    float alpha[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float mt = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) mt = fmaxf(mt, fmaxf(s[nt][2 * hr], s[nt][2 * hr + 1]));
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
      const float mnew = fmaxf(mrow[hr], mt);
      const float base = mnew == -INFINITY ? 0.f : mnew;  // fully masked so far: p = 0, no NaN
      alpha[hr] = exp2f(mrow[hr] - base);
      mrow[hr] = mnew;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        s[nt][2 * hr] = exp2f(s[nt][2 * hr] - base);
        s[nt][2 * hr + 1] = exp2f(s[nt][2 * hr + 1] - base);
        sum += s[nt][2 * hr] + s[nt][2 * hr + 1];
      }
      lrow[hr] = lrow[hr] * alpha[hr] + sum;  // per-thread partial; quad-reduced at the end
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      o[nt][0] *= alpha[0];
      o[nt][1] *= alpha[0];
      o[nt][2] *= alpha[1];
      o[nt][3] *= alpha[1];
    }
    // ---- O += P V
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        uint32_t bf[4];
        const int mi = lane >> 3;
        ldmatrix_x4_trans(bf, vt + (kk * 16 + (mi & 1) * 8 + (lane & 7)) * P + 8 * (nt + (mi >> 1)));
        mma16816<T>(o[nt], pa, bf[0], bf[1]);
        mma16816<T>(o[nt + 1], pa, bf[2], bf[3]);
      }
    }
    cp_async_wait_all();
    __syncthreads();
  }
  // ---- normalize and store
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    float l = lrow[hr];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int64_t qi = qi0 + hr * 8;
    if (qi >= a.Tq) continue;
    T* orow = static_cast<T*>(a.o) + b * a.os[0] + h * a.os[1] + qi * a.os[2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      *reinterpret_cast<uint32_t*>(orow + nt * 8 + 2 * t4) = pack2<T>(o[nt][2 * hr] * inv, o[nt][2 * hr + 1] * inv);
  }
}

template <typename T, int D>
void launch_mma(const MmaArgs& ma, int64_t B, cudaStream_t s) {
  constexpr size_t smem = static_cast<size_t>(kBM + 4 * kBN) * (D + 8) * sizeof(T);
  auto* fn = &attn_mma_kernel<T, D>;
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((ma.Tq + kBM - 1) / kBM), static_cast<unsigned>(ma.Hq), static_cast<unsigned>(B));
  fn<<<grid, kWarps * 32, smem, s>>>(ma);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool attention_mma(const KernelArgs& a, const AttentionParams& p) {
  const Tensor& q = *a.in[0];
  const Tensor& k = *a.in[1];
  const Tensor& v = *a.in[2];
  Tensor& o = *a.out[0];
  const DType dt = q.dtype();
  if (dt != DType::bf16 && dt != DType::f16) return false;
  if (a.in.size() > 3) return false;
  const int64_t D = q.size(3), Dv = v.size(3), Tq = q.size(2);
  if (D != Dv || (D != 64 && D != 128) || Tq < 16) return false;
  for (const Tensor* t : {&q, &k, &v, static_cast<const Tensor*>(&o)}) {
    if (t->stride(3) != 2 || !aligned16(t->data())) return false;
    for (int d = 0; d < 3; ++d)
      if (t->size(d) > 1 && t->stride(d) % 16 != 0) return false;
  }
  MmaArgs ma{};
  ma.q = q.data(), ma.k = k.data(), ma.v = v.data(), ma.o = o.data();
  for (int d = 0; d < 3; ++d) ma.qs[d] = est(q, d), ma.ks[d] = est(k, d), ma.vs[d] = est(v, d), ma.os[d] = est(o, d);
  ma.Hq = q.size(1), ma.G = q.size(1) / k.size(1), ma.Tq = Tq, ma.Tk = k.size(2), ma.off = ma.Tk - Tq;
  ma.window = p.window, ma.causal = p.causal;
  ma.scale = static_cast<float>(p.scale), ma.cap = static_cast<float>(p.softcap);
  ma.scale_log2 = static_cast<float>(p.scale * 1.4426950408889634);
  const int64_t B = q.size(0);
  const cudaStream_t s = kernel_stream(a);
  if (dt == DType::bf16) {
    if (D == 64) launch_mma<__nv_bfloat16, 64>(ma, B, s);
    else launch_mma<__nv_bfloat16, 128>(ma, B, s);
  } else {
    if (D == 64) launch_mma<__half, 64>(ma, B, s);
    else launch_mma<__half, 128>(ma, B, s);
  }
  return true;
}

}  // namespace flagos::cuda::llm
