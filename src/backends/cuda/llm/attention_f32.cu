// f32 prefill attention on the CUDA cores (f32 FMA throughout, no tensor cores), flash style:
// online softmax in base 2, f32 accumulation, O(tile) memory. Taken by attention.cu for f32
// without a mask, D == Dv in {64, 128}, unit feature strides and 16-byte aligned rows, at least
// kMinRows query rows (decode, short chunks and a few row tiles on a long cache keep the general
// kernel with its split-KV); causal, sliding window, softcap and GQA/MQA supported.
//
// A block of 128 threads owns 64 query rows of one (batch, head); the threads form a 16 x 8 grid
// (ty = tid / 8, tx = tid % 8): thread (ty, tx) owns rows ty + 16 i (i < 4) of every tile. Q stays in
// shared memory; K/V tiles of 32 keys are double-buffered in shared memory with cp.async (zeros
// past Tk). Per tile:
//   S = Q K^T, register-tiled: the thread computes its 4 rows x 4 keys (tx + 8 j) with float4
//     loads along the head dim (a warp reads 4 Q rows and 8 K rows per load: rows padded by 16
//     bytes, so each load is one shared-memory wavefront);
//   scale (or softcap) and log2(e), masks only on tiles that cross a causal/window/Tk edge; the
//     row max over the 8 threads of a row by xor shuffles; exp2f; the row sums stay per thread
//     (rescaled with the row max) and are reduced once at the end;
//   P -> shared memory (pitch 40: conflict-free stores and float4 loads), then O += P V with the
//     thread's 4 rows x D/8 columns (float4 chunks 4 tx + 32 h) in registers.
// Heavier (later) causal row tiles are scheduled first (launch_f32 says how, for one wave). Rows with
// no visible key give zeros.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "backends/cuda/llm/attention.cuh"
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/mma.cuh"  // cp.async helpers

namespace flagos::cuda::llm {
namespace {

constexpr int kBM = 64;        // query rows per block
constexpr int kBN = 32;        // keys per tile
constexpr int kThreads = 128;  // 16 (rows) x 8 (keys / columns)
constexpr int kPP = kBN + 8;   // P row pitch (floats)
constexpr int64_t kMinRows = 16;

struct F32Args {
  const float* q;
  const float* k;
  const float* v;
  float* o;
  int64_t qs[3], ks[3], vs[3], os[3];  // element strides of dims 0..2 (feature stride is 1)
  int64_t BH, Hq, G, Tq, Tk, off, window, nqt;
  int64_t flip0, flip1;  // block ranks >= flip0 run in reverse order: rank -> flip1 - rank
  bool causal, softcap;
  float sl2;        // scale * log2(e) (no softcap)
  float scale_cap;  // scale / cap
  float cap_l2;     // cap * log2(e)
};

template <int D>
constexpr size_t f32_smem() {  // Q, 2 K tiles (padded), 2 V tiles, P
  return sizeof(float) * static_cast<size_t>(kBM * (D + 4) + 2 * kBN * (D + 4) + 2 * kBN * D + kBM * kPP);
}

template <int D>
__global__ void __launch_bounds__(kThreads, 2) attn_f32_kernel(F32Args a) {
  constexpr int QP = D + 4, KP = D + 4, VP = D;  // row pitches (floats)
  constexpr int NH = D / 32;                     // float4 column chunks of O per thread
  constexpr int C4 = D / 4;                      // 16-byte pieces per row
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* qsm = reinterpret_cast<float*>(smem_raw);  // [kBM][QP]
  float* ksm = qsm + kBM * QP;                      // [2][kBN][KP]
  float* vsm = ksm + 2 * kBN * KP;                  // [2][kBN][VP]
  float* psm = vsm + 2 * kBN * VP;                  // [kBM][kPP]
  const int tid = threadIdx.x, tx = tid & 7, ty = tid >> 3;

  int64_t bid = blockIdx.x;
  if (bid >= a.flip0) bid = a.flip1 - bid;
  const int64_t qt = a.nqt - 1 - bid / a.BH, bh = bid % a.BH;  // heavy (late) causal tiles first
  const int64_t h = bh % a.Hq, b = bh / a.Hq, hkv = h / a.G;
  const int64_t r0 = qt * kBM;
  const int64_t rlast = (r0 + kBM < a.Tq ? r0 + kBM : a.Tq) - 1;  // last valid row
  const float* qb = a.q + b * a.qs[0] + h * a.qs[1];
  const float* kb = a.k + b * a.ks[0] + hkv * a.ks[1];
  const float* vb = a.v + b * a.vs[0] + hkv * a.vs[1];

  // keys any row of the tile may see
  int64_t jbeg = 0, jend = a.Tk;
  if (a.causal) jend = min(a.Tk, rlast + a.off + 1);
  if (a.window > 0) jbeg = max(int64_t{0}, r0 + a.off - a.window + 1);
  const int64_t ntiles = jend > jbeg ? (jend - jbeg + kBN - 1) / kBN : 0;

  // Q rows (zeros past Tq)
  for (int i = tid; i < kBM * C4; i += kThreads) {
    const int r = i / C4, c = i - r * C4;
    const int64_t qi = r0 + r;
    const bool ok = qi < a.Tq;
    cp_async16(qsm + r * QP + c * 4, ok ? qb + qi * a.qs[2] + c * 4 : qb, ok ? 16 : 0);
  }
  auto load_kv = [&](int64_t j0, int buf) {  // keys [j0, j0 + kBN) into buffer buf (zeros past Tk)
    float* kd = ksm + buf * kBN * KP;
    float* vd = vsm + buf * kBN * VP;
    for (int i = tid; i < kBN * C4; i += kThreads) {
      const int r = i / C4, c = i - r * C4;
      const int64_t j = j0 + r;
      const bool ok = j < a.Tk;
      cp_async16(kd + r * KP + c * 4, ok ? kb + j * a.ks[2] + c * 4 : kb, ok ? 16 : 0);
      cp_async16(vd + r * VP + c * 4, ok ? vb + j * a.vs[2] + c * 4 : vb, ok ? 16 : 0);
    }
  };
  if (ntiles > 0) load_kv(jbeg, 0);
  cp_async_commit();

  float o[4][NH][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int hh = 0; hh < NH; ++hh)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[i][hh][e] = 0.f;
  float m[4], l[4];  // running row max (base 2, same in the 8 threads of a row); partial row sum
#pragma unroll
  for (int i = 0; i < 4; ++i) m[i] = -INFINITY, l[i] = 0.f;

  for (int64_t t = 0; t < ntiles; ++t) {
    const int buf = static_cast<int>(t & 1);
    const int64_t j0 = jbeg + t * kBN;
    cp_async_wait_all();
    __syncthreads();  // tile t landed for everyone; tile t - 1's readers (P, buffer buf ^ 1) are done
    if (t + 1 < ntiles) load_kv(j0 + kBN, buf ^ 1);
    cp_async_commit();

    // ---- S = Q K^T: rows ty + 16 i, keys tx + 8 jj
    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) s[i][jj] = 0.f;
    const float* kt = ksm + buf * kBN * KP;
#pragma unroll 8
    for (int d = 0; d < D; d += 4) {
      float4 qv[4], kv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) qv[i] = *reinterpret_cast<const float4*>(qsm + (ty + 16 * i) * QP + d);
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) kv[jj] = *reinterpret_cast<const float4*>(kt + (tx + 8 * jj) * KP + d);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          s[i][jj] = fmaf(qv[i].x, kv[jj].x, s[i][jj]);
          s[i][jj] = fmaf(qv[i].y, kv[jj].y, s[i][jj]);
          s[i][jj] = fmaf(qv[i].z, kv[jj].z, s[i][jj]);
          s[i][jj] = fmaf(qv[i].w, kv[jj].w, s[i][jj]);
        }
    }

    // ---- scale / softcap, masks on edge tiles, online softmax (base 2)
    const bool edge = j0 + kBN > a.Tk || (a.causal && j0 + kBN - 1 > r0 + a.off) ||
                      (a.window > 0 && j0 <= r0 + kBM - 1 + a.off - a.window);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t qi = r0 + ty + 16 * i;
      float mt = -INFINITY;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        float x = a.softcap ? a.cap_l2 * tanhf(s[i][jj] * a.scale_cap) : s[i][jj] * a.sl2;
        if (edge) {
          const int64_t j = j0 + tx + 8 * jj;
          bool vis = j < a.Tk;
          if (a.causal && j > qi + a.off) vis = false;
          if (a.window > 0 && j <= qi + a.off - a.window) vis = false;
          if (!vis) x = -INFINITY;
        }
        s[i][jj] = x;
        mt = fmaxf(mt, x);
      }
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 4));
      const float mn = fmaxf(m[i], mt);
      const float mu = mn == -INFINITY ? 0.f : mn;  // nothing visible yet: p = 0, alpha = 0
      const float al = exp2f(m[i] - mu);
      m[i] = mn;
      float ps = 0.f;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const float pv = exp2f(s[i][jj] - mu);
        ps += pv;
        psm[(ty + 16 * i) * kPP + tx + 8 * jj] = pv;
      }
      l[i] = l[i] * al + ps;
#pragma unroll
      for (int hh = 0; hh < NH; ++hh)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[i][hh][e] *= al;
    }
    __syncthreads();  // P complete

    // ---- O += P V: rows ty + 16 i, columns 32 hh + 4 tx + e
    const float* vt = vsm + buf * kBN * VP;
#pragma unroll
    for (int j = 0; j < kBN; j += 4) {
      float pr[4][4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float4 p4 = *reinterpret_cast<const float4*>(psm + (ty + 16 * i) * kPP + j);
        pr[i][0] = p4.x, pr[i][1] = p4.y, pr[i][2] = p4.z, pr[i][3] = p4.w;
      }
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        float4 vv[NH];
#pragma unroll
        for (int hh = 0; hh < NH; ++hh) vv[hh] = *reinterpret_cast<const float4*>(vt + (j + jj) * VP + 32 * hh + 4 * tx);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int hh = 0; hh < NH; ++hh) {
            o[i][hh][0] = fmaf(pr[i][jj], vv[hh].x, o[i][hh][0]);
            o[i][hh][1] = fmaf(pr[i][jj], vv[hh].y, o[i][hh][1]);
            o[i][hh][2] = fmaf(pr[i][jj], vv[hh].z, o[i][hh][2]);
            o[i][hh][3] = fmaf(pr[i][jj], vv[hh].w, o[i][hh][3]);
          }
      }
    }
  }
  cp_async_wait_all();

  // ---- results: O / (row sum over the 8 threads), zeros for rows that saw no key
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float L = l[i];
    L += __shfl_xor_sync(0xffffffffu, L, 1);
    L += __shfl_xor_sync(0xffffffffu, L, 2);
    L += __shfl_xor_sync(0xffffffffu, L, 4);
    const int64_t qi = r0 + ty + 16 * i;
    if (qi < a.Tq) {
      float* orow = a.o + b * a.os[0] + h * a.os[1] + qi * a.os[2];
#pragma unroll
      for (int hh = 0; hh < NH; ++hh) {
        float4 r;
        r.x = L > 0.f ? o[i][hh][0] / L : 0.f;
        r.y = L > 0.f ? o[i][hh][1] / L : 0.f;
        r.z = L > 0.f ? o[i][hh][2] / L : 0.f;
        r.w = L > 0.f ? o[i][hh][3] / L : 0.f;
        *reinterpret_cast<float4*>(orow + 32 * hh + 4 * tx) = r;
      }
    }
  }
}

// FLAGOS_CUDA_F32ATTN_ORDER=heavy: always heaviest row tiles first (no reversed second layer).
bool heavy_order() {
  static const bool f = [] {
    const char* e = std::getenv("FLAGOS_CUDA_F32ATTN_ORDER");
    return e != nullptr && std::string_view(e) == "heavy";
  }();
  return f;
}

// Block order: heavy (late) causal row tiles first. When the grid is one resident wave of at most
// two blocks per SM (T512 causal: 224 blocks on 132 SMs), the blocks after the first SM-count run
// lightest first, so that (with blocks handed to SMs in order, one per SM, then a second) an SM
// that got a heavy tile gets a light one next to it.
template <int D>
void launch_f32(F32Args fa, int64_t blocks, int device, cudaStream_t s) {
  constexpr size_t smem = f32_smem<D>();
  auto* fn = &attn_f32_kernel<D>;
  if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  static const int per_sm = [fn] {  // resident blocks per SM (the first device's arch)
    int n = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn, kThreads, smem));
    return n;
  }();
  const int64_t nsm = sm_count(device);
  fa.flip0 = blocks, fa.flip1 = 0;
  if (fa.causal && !heavy_order() && per_sm >= 2 && blocks > nsm && blocks <= 2 * nsm)
    fa.flip0 = nsm, fa.flip1 = nsm + blocks - 1;
  fn<<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(fa);
  CUDA_CHECK_LAUNCH();
}

// FLAGOS_CUDA_F32ATTN_OLD=1: f32 prefill on the general kernel of attention.cu, as before.
bool use_old() {
  static const bool f = [] {
    const char* e = std::getenv("FLAGOS_CUDA_F32ATTN_OLD");
    return e != nullptr && e[0] != '\0' && e[0] != '0';
  }();
  return f;
}

}  // namespace

bool attention_f32(const KernelArgs& a, const AttentionParams& p) {
  if (use_old()) return false;
  const Tensor& q = *a.in[0];
  const Tensor& k = *a.in[1];
  const Tensor& v = *a.in[2];
  Tensor& o = *a.out[0];
  if (q.dtype() != DType::f32 || a.in.size() > 3) return false;
  const int64_t B = q.size(0), Hq = q.size(1), Tq = q.size(2), D = q.size(3), Dv = v.size(3), Tk = k.size(2);
  if (D != Dv || (D != 64 && D != 128) || Tq < kMinRows || Tk < 1) return false;
  for (const Tensor* t : {&q, &k, &v, static_cast<const Tensor*>(&o)}) {
    if (t->stride(3) != 4 || !aligned16(t->data())) return false;
    for (int d = 0; d < 3; ++d)
      if (t->size(d) > 1 && t->stride(d) % 16 != 0) return false;
  }
  F32Args fa{};
  fa.q = q.data_as<float>(), fa.k = k.data_as<float>(), fa.v = v.data_as<float>(), fa.o = o.data_as<float>();
  for (int d = 0; d < 3; ++d) fa.qs[d] = est(q, d), fa.ks[d] = est(k, d), fa.vs[d] = est(v, d), fa.os[d] = est(o, d);
  fa.BH = B * Hq, fa.Hq = Hq, fa.G = Hq / k.size(1), fa.Tq = Tq, fa.Tk = Tk, fa.off = Tk - Tq;
  fa.window = p.window, fa.causal = p.causal;
  fa.nqt = (Tq + kBM - 1) / kBM;
  fa.softcap = p.softcap > 0;
  fa.sl2 = static_cast<float>(p.scale * 1.4426950408889634);
  fa.scale_cap = p.softcap > 0 ? static_cast<float>(p.scale / p.softcap) : 0.f;
  fa.cap_l2 = static_cast<float>(p.softcap * 1.4426950408889634);
  const int64_t blocks = fa.nqt * fa.BH;
  if (blocks > std::numeric_limits<int32_t>::max()) return false;
  const int device = a.stream.device().index;
  // a handful of row tiles on a long cache: the general kernel splits the keys over the GPU
  if (blocks * 8 < sm_count(device) && Tk >= 2048) return false;
  const cudaStream_t s = kernel_stream(a);
  if (D == 64) launch_f32<64>(fa, blocks, device, s);
  else launch_f32<128>(fa, blocks, device, s);
  return true;
}

}  // namespace flagos::cuda::llm
