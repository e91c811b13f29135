// Tensor-core flash attention for bf16/f16 prefill (mma.sync m16n8k16, f32 accumulation), for
// D == Dv in {64, 128}, no mask, unit feature strides and 16-byte aligned rows; causal, sliding
// window, softcap and GQA supported. A block (8 warps) owns 128 query rows of one head; each warp
// 16 rows, its Q fragments kept in registers. K/V tiles of 64 keys are double-buffered in shared
// memory with cp.async (rows padded by 16 bytes: conflict-free ldmatrix). Per tile: S = Q K^T on
// the tensor cores, scale/softcap/masks on the S fragments, online softmax in registers (row stats
// reduced over the 4 threads of a quad), P converted to 16-bit and reused as the A operand of
// O += P V (V fragments through ldmatrix.trans). Heavier causal tiles are scheduled first.
//
// On Hopper (built for sm_90a) the same cases run on warpgroup MMA instead (attn_wgmma_kernel):
// 2 warpgroups per block, 64 query rows each; Q and 3 stages of 128-key K/V tiles in shared memory
// in the 128-byte-swizzled layout that wgmma reads through matrix descriptors. K/V tiles arrive by
// TMA (a 4-D tensor map per tensor, one thread issuing, an mbarrier per stage; cp.async from every
// thread if the driver cannot encode the maps). S = Q K^T reads both operands from shared memory
// (K-major); O += P V takes P from registers (the S accumulators, rescaled and converted) and V
// from shared memory as an MN-major operand (transposed by the descriptor). The next tile's
// S = Q K^T is issued before this tile's P V, so its softmax overlaps the P V on the tensor cores.
// H200, causal T4096 GQA 28/4 D128 bf16: 287 us (419 TFLOP/s) against 1090 us for the mma.sync
// kernel (run 2026-11-29; TMA rather than cp.async: 1.2-1.3x; 128-key tiles with 2 warpgroups
// rather than 64 with 3: 1.1x; masks and softcap outside the per-element loop: 1.4x).
// The default Hopper kernel is now the warp-specialized attn_ws_kernel (a producer warpgroup on
// TMA with a full/empty mbarrier ring, setmaxnreg 24/240, the two consumer warpgroups taking turns
// at the tensor cores; no block-wide barrier per tile); FLAGOS_CUDA_FATTN_OLD=1 runs the kernel
// above, FLAGOS_CUDA_FATTN_VARIANT=ws the new one without the turns. Not yet measured on a GPU.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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
  int64_t B, Hq, G, Tq, Tk, off, window;
  bool causal;
  float scale_log2;  // scale * log2(e) (no softcap)
  float scale, cap;  // softcap: cap * tanh(s * scale / cap)
  float scale_cap;   // scale / cap
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
    online_softmax_tile(s, mrow, lrow, o);  // s becomes P
    accumulate_pv<T, P>(o, s, vt, lane);     // O += P V
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

// ================================================================ Hopper: warpgroup MMA
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FLAGOS_ATTN_WGMMA 1
#endif

// Kernel parameters: the shape/strides and, for TMA loads, the K and V tensor maps.
struct WgArgs {
  MmaArgs a;
  CUtensorMap tk, tv;
};

template <int D, int NWG, int BN, int S>
constexpr size_t wgmma_smem() {  // Q, S stages of K and V, S mbarriers; + alignment to 1024
  return static_cast<size_t>(64 * NWG + S * 2 * BN) * D * 2 + 64 + 1024;
}

#ifdef FLAGOS_ATTN_WGMMA
__device__ __forceinline__ void cp_async16_s(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
template <int N>
__device__ __forceinline__ void cp_async_wait_n() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void mbar_init(uint32_t bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(bar));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// One box of a 4-D tensor map (coordinates innermost first) into shared memory, completing on bar.
__device__ __forceinline__ void tma_load4(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, int c3,
                                          uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}
// 2^x on the SFU (inputs <= 0 or -inf here; results below 2^-126 flush to 0).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
// Shared-memory matrix descriptor: 128-byte swizzle, start/leading/stride byte offsets. Every
// operand here spans one swizzle atom in the leading dimension (K-major: 16 of 64 columns;
// MN-major V: 64 columns per instruction), so only the stride between 8-row groups (1024 bytes)
// matters; the leading offset is given the same value.
__device__ __forceinline__ uint64_t sdesc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>((lbo >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo >> 4) & 0x3FFF) << 32) | (uint64_t{1} << 62);
}
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accesses of wgmma operand registers across issue/wait points.
template <int N>
__device__ __forceinline__ void reg_fence(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void reg_fence(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

#define FLAGOS_WG_ACC                                                                                    \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define FLAGOS_WG_OUT(d)                                                                                      \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),  \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])

#define FLAGOS_WG_ACC64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define FLAGOS_WG_OUT64(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d[64xN] (+)= A[64x16] B[16xN], A and B from shared memory (both K-major); N = 64 or 128.
template <typename T, int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t da, uint64_t db, int acc) {
  constexpr bool bf = std::is_same_v<T, __nv_bfloat16>;
  if constexpr (N == 64 && bf) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FLAGOS_WG_ACC ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : FLAGOS_WG_OUT(d)
        : "l"(da), "l"(db), "r"(acc));
  } else if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " FLAGOS_WG_ACC ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : FLAGOS_WG_OUT(d)
        : "l"(da), "l"(db), "r"(acc));
  } else if constexpr (bf) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FLAGOS_WG_ACC64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : FLAGOS_WG_OUT64(d)
        : "l"(da), "l"(db), "r"(acc));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " FLAGOS_WG_ACC64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : FLAGOS_WG_OUT64(d)
        : "l"(da), "l"(db), "r"(acc));
  }
}
// d[64xN] (+)= A[64x16] B[16xN], both from shared memory (K-major); the wide key tile (N = 176).
template <typename T, int N>
__device__ __forceinline__ void wgmma_ss_wide(float (&d)[N / 2], uint64_t da, uint64_t db, int acc) {
  constexpr bool bf = std::is_same_v<T, __nv_bfloat16>;
  static_assert(N == 176, "wide tile");
  if constexpr (N == 176 && bf) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n176k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}, %88, %89, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])
        : "l"(da), "l"(db), "r"(acc));
  }
  if constexpr (N == 176 && !bf) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n176k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}, %88, %89, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])
        : "l"(da), "l"(db), "r"(acc));
  }
}
// d[64x64] += A[64x16] B[16x64], A from registers (mma.sync A-fragment layout per warp), B from
// shared memory MN-major (transposed).
template <typename T>
__device__ __forceinline__ void wgmma_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FLAGOS_WG_ACC
        ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : FLAGOS_WG_OUT(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " FLAGOS_WG_ACC
        ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : FLAGOS_WG_OUT(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  }
}
// d[64x128] += A[64x16] B[16x128] (fattn5: one instruction for both 64-column halves of O, d0 the
// columns 0..63, d1 64..127; accumulator i of the m64n128 tile is d0[i] for i < 32, d1[i - 32] else),
// A from registers, B from shared memory MN-major (transposed; the descriptor's leading offset steps
// from the first 64 columns to the next).
template <typename T>
__device__ __forceinline__ void wgmma_rs128(float (&d0)[32], float (&d1)[32], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d0[0]), "+f"(d0[1]), "+f"(d0[2]), "+f"(d0[3]), "+f"(d0[4]), "+f"(d0[5]), "+f"(d0[6]), "+f"(d0[7]), "+f"(d0[8]), "+f"(d0[9]), "+f"(d0[10]), "+f"(d0[11]), "+f"(d0[12]), "+f"(d0[13]), "+f"(d0[14]), "+f"(d0[15]), "+f"(d0[16]), "+f"(d0[17]), "+f"(d0[18]), "+f"(d0[19]), "+f"(d0[20]), "+f"(d0[21]), "+f"(d0[22]), "+f"(d0[23]), "+f"(d0[24]), "+f"(d0[25]), "+f"(d0[26]), "+f"(d0[27]), "+f"(d0[28]), "+f"(d0[29]), "+f"(d0[30]), "+f"(d0[31]), "+f"(d1[0]), "+f"(d1[1]), "+f"(d1[2]), "+f"(d1[3]), "+f"(d1[4]), "+f"(d1[5]), "+f"(d1[6]), "+f"(d1[7]), "+f"(d1[8]), "+f"(d1[9]), "+f"(d1[10]), "+f"(d1[11]), "+f"(d1[12]), "+f"(d1[13]), "+f"(d1[14]), "+f"(d1[15]), "+f"(d1[16]), "+f"(d1[17]), "+f"(d1[18]), "+f"(d1[19]), "+f"(d1[20]), "+f"(d1[21]), "+f"(d1[22]), "+f"(d1[23]), "+f"(d1[24]), "+f"(d1[25]), "+f"(d1[26]), "+f"(d1[27]), "+f"(d1[28]), "+f"(d1[29]), "+f"(d1[30]), "+f"(d1[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d0[0]), "+f"(d0[1]), "+f"(d0[2]), "+f"(d0[3]), "+f"(d0[4]), "+f"(d0[5]), "+f"(d0[6]), "+f"(d0[7]), "+f"(d0[8]), "+f"(d0[9]), "+f"(d0[10]), "+f"(d0[11]), "+f"(d0[12]), "+f"(d0[13]), "+f"(d0[14]), "+f"(d0[15]), "+f"(d0[16]), "+f"(d0[17]), "+f"(d0[18]), "+f"(d0[19]), "+f"(d0[20]), "+f"(d0[21]), "+f"(d0[22]), "+f"(d0[23]), "+f"(d0[24]), "+f"(d0[25]), "+f"(d0[26]), "+f"(d0[27]), "+f"(d0[28]), "+f"(d0[29]), "+f"(d0[30]), "+f"(d0[31]), "+f"(d1[0]), "+f"(d1[1]), "+f"(d1[2]), "+f"(d1[3]), "+f"(d1[4]), "+f"(d1[5]), "+f"(d1[6]), "+f"(d1[7]), "+f"(d1[8]), "+f"(d1[9]), "+f"(d1[10]), "+f"(d1[11]), "+f"(d1[12]), "+f"(d1[13]), "+f"(d1[14]), "+f"(d1[15]), "+f"(d1[16]), "+f"(d1[17]), "+f"(d1[18]), "+f"(d1[19]), "+f"(d1[20]), "+f"(d1[21]), "+f"(d1[22]), "+f"(d1[23]), "+f"(d1[24]), "+f"(d1[25]), "+f"(d1[26]), "+f"(d1[27]), "+f"(d1[28]), "+f"(d1[29]), "+f"(d1[30]), "+f"(d1[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  }
}
// d[64x128] (+)= A[64x16] B[16x128], A from registers (the mma.sync A-fragment layout per warp), B
// from shared memory K-major (fattn5 QREG: Q K^T with Q kept in registers).
template <typename T>
__device__ __forceinline__ void wgmma_rs_k128(float (&d)[64], const uint32_t (&a)[4], uint64_t db, int acc) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " FLAGOS_WG_ACC64
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
        : FLAGOS_WG_OUT64(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " FLAGOS_WG_ACC64
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
        : FLAGOS_WG_OUT64(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc));
  }
}
// Warp-specialized kernel helpers: mbarriers with an arrival count, named barriers, register
// reallocation between warpgroups (setmaxnreg, sm_90a).
__device__ __forceinline__ void mbar_init_n(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void named_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
// Softmax pieces shared by attn_wgmma_kernel and attn_ws_kernel. A thread's S accumulator i of an
// m64nBN tile holds key (i >> 2) * 8 + 2 * t4 + (i & 1) of the tile for row qi0 + ((i >> 1) & 1) * 8.
// Whether the tile at key j0 needs masks for the rows [wr0, wlast]: the last tile, the causal
// diagonal or the window's start.
template <int BN>
__device__ __forceinline__ bool wg_edge_tile(const MmaArgs& a, int64_t j0, int64_t wr0, int64_t wlast) {
  return j0 + BN > a.Tk || (a.causal && j0 + BN - 1 > wr0 + a.off) || (a.window > 0 && j0 <= wlast + a.off - a.window);
}
// Keys past Tk, causally hidden or outside the window become -inf.
template <int BN, int NS>
__device__ __forceinline__ void wg_mask_tile(float (&s)[NS], const MmaArgs& a, int64_t j0, int64_t qi0, int t4) {
  const int jl = static_cast<int>(min(a.Tk - j0, int64_t{BN}));  // keys [j0, j0 + jl) exist
  const int64_t dq = qi0 + a.off - j0;                           // row qi0 sees keys j - j0 <= dq
#pragma unroll
  for (int i = 0; i < NS; ++i) {
    const int jj = (i >> 2) * 8 + 2 * t4 + (i & 1);
    const int64_t lim = dq + ((i >> 1) & 1) * 8;
    bool vis = jj < jl;
    if (a.causal && jj > lim) vis = false;
    if (a.window > 0 && jj <= lim - a.window) vis = false;
    if (!vis) s[i] = -INFINITY;
  }
}
// P (f32 accumulators) as the A fragments of P V.
template <typename T, int BN>
__device__ __forceinline__ void wg_to_p(uint32_t (&pa)[BN / 16][4], const float (&s)[BN / 2]) {
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) {
    pa[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
    pa[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
    pa[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
    pa[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
  }
}
// O / l (l: the per-thread partial sums, quad-reduced here) into rows qi0 and qi0 + 8 of head h, batch b.
template <typename T, int DR>
__device__ __forceinline__ void wg_store_o(const float (&o)[DR][32], const float (&lrow)[2], const MmaArgs& a,
                                           int64_t b, int64_t h, int64_t qi0, int t4) {
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
    for (int n = 0; n < DR; ++n)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
        *reinterpret_cast<uint32_t*>(orow + n * 64 + nt * 8 + 2 * t4) =
            pack2<T>(o[n][nt * 4 + 2 * hr] * inv, o[n][nt * 4 + 2 * hr + 1] * inv);
  }
}
// Issues O += P V of the tile in stage st (one commit group); sv(st): the stage's V in shared memory
// (taken after the fence, where the kernels always computed it).
template <typename T, int BN, int DR, typename SV>
__device__ __forceinline__ void wg_issue_pv(float (&o)[DR][32], const uint32_t (&pa)[BN / 16][4], const SV& sv,
                                            int st) {
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
    for (int n = 0; n < DR; ++n)
      wgmma_rs<T>(o[n], pa[kk], sdesc(sv(st) + n * (BN * 128) + kk * (16 * 128), 1024, 1024));
  wg_commit();
}
// Online softmax of the S tile (raw scores s, log2-domain scale scl; masked scores -inf) with a
// lazy running max (fattn4): the base m of a row's exponentials moves only when the tile's max
// exceeds it by more than kLazyMax (log2 domain), so P <= 2^kLazyMax and O and l are rescaled
// (alpha != 1) only then; the result is exact after the final O / l (numerator and denominator
// share the base). Max and sum reduced over 4 independent partials (shorter dependency chains
// than one running value). s becomes P (f32); alpha[hr] = 1 exactly when row hr keeps its base.
constexpr float kLazyMax = 8.f;  // 2^8 = 256: no overflow of P in bf16 / f16, nor of l in f32
template <int BN>
__device__ __forceinline__ void lazy_softmax_rows(float (&s)[BN / 2], float (&mrow)[2], float (&lrow)[2],
                                                  float (&alpha)[2], float scl) {
  constexpr int NT = BN / 8;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    float m4[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) m4[nt & 3] = fmaxf(m4[nt & 3], fmaxf(s[nt * 4 + 2 * hr], s[nt * 4 + 2 * hr + 1]));
    float mt = fmaxf(fmaxf(m4[0], m4[1]), fmaxf(m4[2], m4[3]));
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
    const float mts = mt * scl;                                  // the tile's row max, log2 domain
    const float mnew = mts > mrow[hr] + kLazyMax ? mts : mrow[hr];  // -inf > -inf + 8: false
    const float base = mnew == -INFINITY ? 0.f : mnew;             // nothing visible so far: p = 0
    alpha[hr] = ex2(mrow[hr] - base);                              // ex2(0) = 1 when kept
    mrow[hr] = mnew;
    float l4[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float p0 = ex2(fmaf(s[nt * 4 + 2 * hr], scl, -base));
      const float p1 = ex2(fmaf(s[nt * 4 + 2 * hr + 1], scl, -base));
      s[nt * 4 + 2 * hr] = p0;
      s[nt * 4 + 2 * hr + 1] = p1;
      l4[nt & 3] += p0 + p1;
    }
    lrow[hr] = lrow[hr] * alpha[hr] + ((l4[0] + l4[1]) + (l4[2] + l4[3]));  // per-thread partial
  }
}
#undef FLAGOS_WG_ACC
#undef FLAGOS_WG_OUT
#undef FLAGOS_WG_ACC64
#undef FLAGOS_WG_OUT64
#endif  // FLAGOS_ATTN_WGMMA

// Shared memory (1024-byte aligned; a "region" holds 64 columns of every row, 128 bytes a row,
// 16-byte chunk c of row r at chunk c ^ (r & 7)): Q [D/64][BM rows], then per stage K and V
// [D/64][BN keys], then S mbarriers (TMA). K/V tiles arrive by TMA (one thread issues, an mbarrier
// per stage counts the bytes) or by cp.async from every thread. Grid: one block per (query tile,
// batch, head), heaviest query tiles of every head first, the heads of one kv group adjacent
// (their K/V tiles shared in L2; head by head measured slower for causal).
template <typename T, int D, int NWG, int BN, int S, bool TMA>
__global__ void __launch_bounds__(NWG * 128, 1) attn_wgmma_kernel(const __grid_constant__ WgArgs w) {
#ifdef FLAGOS_ATTN_WGMMA
  static_assert(S >= 3, "the pipeline keeps tiles it (P V) and it + 1 (Q K^T) while loading");
  const MmaArgs& a = w.a;
  constexpr int BM = 64 * NWG, NT = NWG * 128, DR = D / 64, NS = BN / 2;  // NS: S accumulators
  constexpr uint32_t kQBytes = BM * D * 2, kTile = BN * D * 2;
  extern __shared__ __align__(16) unsigned char wg_smem[];
  const uint32_t sq = (smem_addr(wg_smem) + 1023u) & ~1023u;
  auto sk = [&](int st) { return sq + kQBytes + static_cast<uint32_t>(st) * 2 * kTile; };
  auto sv = [&](int st) { return sq + kQBytes + static_cast<uint32_t>(st) * 2 * kTile + kTile; };
  const uint32_t sbar = sq + kQBytes + S * 2 * kTile;  // S mbarriers of 8 bytes
  const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, wi = (tid >> 5) & 3;
  const int g = lane >> 2, t4 = lane & 3;
  const int64_t nqt = (a.Tq + BM - 1) / BM, BH = a.B * a.Hq, bid = blockIdx.x;
  const int64_t qt = nqt - 1 - bid / BH, bh = bid % BH;
  const int64_t h = bh % a.Hq, b = bh / a.Hq, hkv = h / a.G;
  const int64_t q0 = qt * BM;
  const T* qb = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
  const T* kb = static_cast<const T*>(a.k) + b * a.ks[0] + hkv * a.ks[1];
  const T* vb = static_cast<const T*>(a.v) + b * a.vs[0] + hkv * a.vs[1];

  // key range of the block
  int64_t jbeg = 0, jend = a.Tk;
  const int64_t qlast = min(a.Tq, q0 + BM) - 1;
  if (a.causal) jend = min(a.Tk, qlast + a.off + 1);
  if (a.window > 0) jbeg = max(int64_t{0}, q0 + a.off - a.window + 1);
  jbeg = jbeg / BN * BN;
  const int ntiles = jend > jbeg ? static_cast<int>((jend - jbeg + BN - 1) / BN) : 0;

  // rows [row0, row0 + NR) of src (zeros past `total`) into the swizzled regions at dst
  auto load = [&](uint32_t dst, const T* src, auto nr, int64_t row0, int64_t total, int64_t rstride) {
    constexpr int NR = decltype(nr)::value, C = D / 8;
#pragma unroll 4
    for (int i = tid; i < NR * C; i += NT) {
      const int r = i / C, c = i % C;
      const int64_t row = row0 + r;
      const bool ok = row < total;
      cp_async16_s(dst + (c >> 3) * (NR * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4),
                   src + (ok ? row : 0) * rstride + c * 8, ok ? 16 : 0);
    }
  };
  using RowsQ = std::integral_constant<int, BM>;
  using RowsK = std::integral_constant<int, BN>;
  auto load_kv = [&](int tile) {  // TMA: by thread 0 only
    const int st = tile % S;
    const int64_t j0 = jbeg + static_cast<int64_t>(tile) * BN;
    if constexpr (TMA) {
      const uint32_t bar = sbar + 8 * st;
      mbar_expect_tx(bar, 2 * kTile);
#pragma unroll
      for (int r = 0; r < DR; ++r) {
        tma_load4(sk(st) + r * (BN * 128), &w.tk, r * 64, static_cast<int>(j0), static_cast<int>(hkv),
                  static_cast<int>(b), bar);
        tma_load4(sv(st) + r * (BN * 128), &w.tv, r * 64, static_cast<int>(j0), static_cast<int>(hkv),
                  static_cast<int>(b), bar);
      }
    } else {
      load(sk(st), kb, RowsK{}, j0, a.Tk, a.ks[2]);
      load(sv(st), vb, RowsK{}, j0, a.Tk, a.vs[2]);
    }
  };
  auto tile_ready = [&](int tile) {  // this thread sees `tile` (a __syncthreads must follow)
    if constexpr (TMA) {
      mbar_wait(sbar + 8 * (tile % S), static_cast<uint32_t>(tile / S) & 1u);
    } else {
      cp_async_wait_n<S - 3>();  // the S - 3 younger tiles may still be in flight
      fence_proxy_async();
    }
  };
  if constexpr (TMA) {
    if (tid == 0) {
      for (int st = 0; st < S; ++st) mbar_init(sbar + 8 * st);
      asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    load(sq, qb, RowsQ{}, q0, a.Tq, a.qs[2]);
    cp_async_commit();
    if (tid == 0)
      for (int t = 0; t < S - 1 && t < ntiles; ++t) load_kv(t);
    cp_async_wait_all();
    fence_proxy_async();
    if (ntiles > 0) mbar_wait(sbar, 0);
  } else {
    load(sq, qb, RowsQ{}, q0, a.Tq, a.qs[2]);  // with tile 0 in group 0
    for (int t = 0; t < S - 1; ++t) {
      if (t < ntiles) load_kv(t);
      cp_async_commit();
    }
    cp_async_wait_n<S - 2>();
    fence_proxy_async();
  }
  __syncthreads();

  const int64_t wr0 = q0 + wg * 64, wlast = wr0 + 63;  // this warpgroup's rows
  const int64_t qi0 = wr0 + wi * 16 + g;               // this thread's rows qi0, qi0 + 8
  float o[DR][32];
#pragma unroll
  for (int n = 0; n < DR; ++n)
#pragma unroll
    for (int i = 0; i < 32; ++i) o[n][i] = 0.f;
  float s[NS];
  uint32_t pa[BN / 16][4];
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f}, alpha[2] = {1.f, 1.f};

  auto qk = [&](int tile) {  // issue S = Q K^T of a tile (one commit group)
    const int st = tile % S;
#pragma unroll
    for (int i = 0; i < NS; ++i) s[i] = 0.f;
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t qa = sq + (kk >> 2) * (BM * 128) + wg * (64 * 128) + (kk & 3) * 32;
      const uint32_t ka = sk(st) + (kk >> 2) * (BN * 128) + (kk & 3) * 32;
      wgmma_ss<T, BN>(s, sdesc(qa, 1024, 1024), sdesc(ka, 1024, 1024), kk > 0);
    }
    wg_commit();
  };
  auto pv = [&](int tile) { wg_issue_pv<T, BN, DR>(o, pa, sv, tile % S); };  // O += P V of a tile
  // scale, softcap, masks and the online softmax of S (tile starting at key j0): s becomes P
  // (unnormalized, f32), alpha the rescale of the rows' previous O
  auto softmax = [&](int64_t j0) {
    const bool edge = wg_edge_tile<BN>(a, j0, wr0, wlast);
    if (a.cap > 0.f) {
#pragma unroll
      for (int i = 0; i < NS; ++i) s[i] = a.cap * tanhf(s[i] * a.scale_cap) * 1.4426950408889634f;
    } else {
#pragma unroll
      for (int i = 0; i < NS; ++i) s[i] *= a.scale_log2;
    }
    if (edge) {  // diagonal / window / last tiles only
      wg_mask_tile<BN>(s, a, j0, qi0, t4);
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      float mt = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) mt = fmaxf(mt, fmaxf(s[nt * 4 + 2 * hr], s[nt * 4 + 2 * hr + 1]));
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
      mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
      const float mnew = fmaxf(mrow[hr], mt);
      const float base = mnew == -INFINITY ? 0.f : mnew;  // nothing visible so far: p = 0, no NaN
      alpha[hr] = ex2(mrow[hr] - base);
      mrow[hr] = mnew;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) {
        s[nt * 4 + 2 * hr] = ex2(s[nt * 4 + 2 * hr] - base);
        s[nt * 4 + 2 * hr + 1] = ex2(s[nt * 4 + 2 * hr + 1] - base);
        sum += s[nt * 4 + 2 * hr] + s[nt * 4 + 2 * hr + 1];
      }
      lrow[hr] = lrow[hr] * alpha[hr] + sum;  // per-thread partial; quad-reduced at the end
    }
  };
  auto to_p = [&] { wg_to_p<T, BN>(pa, s); };  // P as the A fragments of P V

  if (ntiles > 0) {
    qk(0);
    wg_wait<0>();
    reg_fence(s);
    softmax(jbeg);
    to_p();
  }
  for (int it = 0; it + 1 < ntiles; ++it) {
    tile_ready(it + 1);
    __syncthreads();  // tile it + 1 visible to all; every warpgroup is done with tile it - 1
    if (it + S - 1 < ntiles && (!TMA || tid == 0)) load_kv(it + S - 1);  // into tile it - 1's stage
    if constexpr (!TMA) cp_async_commit();
    qk(it + 1);
    pv(it);
    wg_wait<1>();  // S of tile it + 1 (the P V may still run)
    reg_fence(s);
    softmax(jbeg + static_cast<int64_t>(it + 1) * BN);
    wg_wait<0>();
#pragma unroll
    for (int n = 0; n < DR; ++n) reg_fence(o[n]);
    reg_fence(pa);
#pragma unroll
    for (int n = 0; n < DR; ++n)
#pragma unroll
      for (int i = 0; i < 32; ++i) o[n][i] *= alpha[(i >> 1) & 1];
    to_p();
  }
  if (ntiles > 0) {
    pv(ntiles - 1);
    wg_wait<0>();
#pragma unroll
    for (int n = 0; n < DR; ++n) reg_fence(o[n]);
  }
  // ---- normalize and store
  wg_store_o<T, DR>(o, lrow, a, b, h, qi0, t4);
#endif  // FLAGOS_ATTN_WGMMA
}

// ---------------------------------------------------------------- warp-specialized variant
// 3 warpgroups per block, 128 query rows. Warpgroup 0 is the producer: setmaxnreg shrinks it to
// 24 registers and one of its threads issues the TMA loads of the K/V tiles into a ring of S
// stages (full[st]: one arrival + the transaction bytes; empty[st]: the 8 consumer warps done with
// the stage). Warpgroups 1 and 2 are consumers of 64 query rows each, grown to 240 registers;
// they never load K/V and never meet at a block-wide barrier. Per tile a consumer issues Q K^T of
// tile it + 1 and P V of tile it as two commit groups, runs the softmax of tile it + 1 while the
// P V runs, then rescales O. PP: the two consumers take turns issuing their GEMMs (two named
// barriers, ids 3 and 4), so one's softmax runs while the other's GEMMs do. Same masks, softcap,
// GQA and grid order (heaviest causal query tiles first) as attn_wgmma_kernel.
// SPLIT (fattn3 variants): K and V of a stage have their own full/empty mbarriers, so K of a stage
// is handed back as soon as Q K^T of its tile is done (P V of the tile before still running) and
// 2 stages suffice; BN (keys per tile) 128 or 176 (192 spills: 420 bytes at 240 registers).
// LAZY (fattn4, SPLIT only): lazy_softmax_rows (the exponentials' base moves only when a tile's max
// exceeds it by 2^8; O rescaled only then), and the wait for P V in the branches on the rescale
// vote, which keeps ptxas from scheduling that wait ahead of the softmax (it did in one block).
template <int D, int S, int BN = 128>
constexpr size_t ws_smem() {  // Q [128 rows], S stages of K and V [BN keys], up to 4 S mbarriers; + 1024 alignment
  return static_cast<size_t>(128 + S * 2 * BN) * D * 2 + 128 + 1024;
}

template <typename T, int D, int S, bool PP, int BN = 128, bool SPLIT = false, bool LAZY = false, int PVW = 0,
          bool QREG = false>
__global__ void __launch_bounds__(384, 1) attn_ws_kernel(const __grid_constant__ WgArgs w) {
#ifdef FLAGOS_ATTN_WGMMA
  static_assert(!QREG || (LAZY && BN == 128 && D == 128), "Q in registers: the lazy loop, 128-key tiles, D = 128");
  static_assert(PVW == 0 || (LAZY && D == 128), "wide P V: the lazy loop, D = 128");
  static_assert((SPLIT ? 4 : 2) * S * 8 <= 128, "mbarrier area");
  static_assert(BN == 128 || (SPLIT && BN == 176), "key tile");
  static_assert(SPLIT ? S >= 2 : S >= 3, "stages");
  static_assert(!LAZY || SPLIT, "the lazy-max loop releases K and V separately");
  const MmaArgs& a = w.a;
  constexpr int BM = 128, DR = D / 64, NS = BN / 2;  // NS: S accumulators per thread
  constexpr uint32_t kQBytes = BM * D * 2, kTile = BN * D * 2;
  extern __shared__ __align__(16) unsigned char ws_smem_raw[];
  const uint32_t sq = (smem_addr(ws_smem_raw) + 1023u) & ~1023u;
  auto sk = [&](int st) { return sq + kQBytes + static_cast<uint32_t>(st) * 2 * kTile; };
  auto sv = [&](int st) { return sq + kQBytes + static_cast<uint32_t>(st) * 2 * kTile + kTile; };
  const uint32_t full = sq + kQBytes + S * 2 * kTile, empty = full + 8 * S;
  const uint32_t vfull = empty + 8 * S, vempty = vfull + 8 * S;  // SPLIT: full/empty are K's
  const int tid = threadIdx.x, wg = tid >> 7;
  const int64_t nqt = (a.Tq + BM - 1) / BM, BH = a.B * a.Hq, nwork = nqt * BH;
  // Work items (query tile, batch, head), heaviest causal query tiles first; one item per block (the
  // loops over items below run once: a persistent grid looping over items measured no gain).
  const int64_t wstep = nwork;
  struct Work {
    int64_t h, b, hkv, q0, jbeg;
    int ntiles;
  };
  auto work_of = [&](int64_t bid) {
    Work k;
    const int64_t qt = nqt - 1 - bid / BH, bh = bid % BH;
    k.h = bh % a.Hq, k.b = bh / a.Hq, k.hkv = k.h / a.G, k.q0 = qt * BM;
    // key range of the item (both consumers run the same tiles)
    int64_t jbeg = 0, jend = a.Tk;
    const int64_t qlast = min(a.Tq, k.q0 + BM) - 1;
    if (a.causal) jend = min(a.Tk, qlast + a.off + 1);
    if (a.window > 0) jbeg = max(int64_t{0}, k.q0 + a.off - a.window + 1);
    k.jbeg = jbeg / BN * BN;
    k.ntiles = jend > k.jbeg ? static_cast<int>((jend - k.jbeg + BN - 1) / BN) : 0;
    return k;
  };

  if (tid == 0) {
    for (int st = 0; st < S; ++st) {
      mbar_init_n(full + 8 * st, 1);
      mbar_init_n(empty + 8 * st, 8);
      if constexpr (SPLIT) {
        mbar_init_n(vfull + 8 * st, 1);
        mbar_init_n(vempty + 8 * st, 8);
      }
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();  // the only block-wide barrier

  if (wg == 0) {  // ---- producer
    setmaxnreg_dec<24>();
    for (int64_t wk = blockIdx.x, tb = 0; tid == 0 && wk < nwork; wk += wstep) {
      const Work item = work_of(wk);
      const int64_t jbeg = item.jbeg, hkv = item.hkv, b = item.b;
      const int ntiles = item.ntiles;
      for (int tl = 0; tl < ntiles && SPLIT; ++tl) {  // K then V of each tile, each on its own barriers
        const int t = static_cast<int>(tb) + tl;  // the ring's tile count
        const int st = t % S;
        const uint32_t par = static_cast<uint32_t>(t / S - 1) & 1u;
        const int j0 = static_cast<int>(jbeg + static_cast<int64_t>(tl) * BN);
        if (t >= S) mbar_wait(empty + 8 * st, par);
        mbar_expect_tx(full + 8 * st, kTile);
#pragma unroll
        for (int r = 0; r < DR; ++r)
          tma_load4(sk(st) + r * (BN * 128), &w.tk, r * 64, j0, static_cast<int>(hkv), static_cast<int>(b), full + 8 * st);
        if (t >= S) mbar_wait(vempty + 8 * st, par);
        mbar_expect_tx(vfull + 8 * st, kTile);
#pragma unroll
        for (int r = 0; r < DR; ++r)
          tma_load4(sv(st) + r * (BN * 128), &w.tv, r * 64, j0, static_cast<int>(hkv), static_cast<int>(b), vfull + 8 * st);
      }
      for (int tl = 0; tl < ntiles && !SPLIT; ++tl) {
        const int t = static_cast<int>(tb) + tl;
        const int st = t % S;
        if (t >= S) mbar_wait(empty + 8 * st, static_cast<uint32_t>(t / S - 1) & 1u);
        const uint32_t bar = full + 8 * st;
        mbar_expect_tx(bar, 2 * kTile);
        const int j0 = static_cast<int>(jbeg + static_cast<int64_t>(tl) * BN);
#pragma unroll
        for (int r = 0; r < DR; ++r) {
          tma_load4(sk(st) + r * (BN * 128), &w.tk, r * 64, j0, static_cast<int>(hkv), static_cast<int>(b), bar);
          tma_load4(sv(st) + r * (BN * 128), &w.tv, r * 64, j0, static_cast<int>(hkv), static_cast<int>(b), bar);
        }
      }
      tb += ntiles;
    }
  } else {  // ---- consumers
    setmaxnreg_inc<240>();
    const int cw = wg - 1, ct = tid & 127, lane = tid & 31, wi = (tid >> 5) & 3;
    const int g = lane >> 2, t4 = lane & 3;
    // GEMM turns (PP): steps counted over all of the block's items (ntiles + 1 per item)
    int total_steps = 0, step = 0, tb = 0;
    for (int64_t wk = blockIdx.x; wk < nwork; wk += wstep) {
      const int n = work_of(wk).ntiles;
      total_steps += n > 0 ? n + 1 : 0;
    }
    for (int64_t wk = blockIdx.x; wk < nwork; wk += wstep) {
      const Work item = work_of(wk);
      const int64_t h = item.h, b = item.b, q0 = item.q0, jbeg = item.jbeg;
      const int ntiles = item.ntiles;
      {  // this warpgroup's 64 Q rows (zeros past Tq), swizzled like the TMA tiles
        const T* qb = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1];
        constexpr int C = D / 8;
#pragma unroll 4
        for (int i = ct; i < 64 * C; i += 128) {
          const int r = cw * 64 + i / C, c = i % C;
          const int64_t row = q0 + r;
          const bool ok = row < a.Tq;
          cp_async16_s(sq + (c >> 3) * (BM * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4),
                       qb + (ok ? row : 0) * a.qs[2] + c * 8, ok ? 16 : 0);
        }
        cp_async_commit();
        cp_async_wait_all();
        fence_proxy_async();
        named_sync(1 + cw, 128);
      }
      const int64_t wr0 = q0 + cw * 64, wlast = wr0 + 63;  // this warpgroup's rows
      const int64_t qi0 = wr0 + wi * 16 + g;               // this thread's rows qi0, qi0 + 8
      // QREG (fattn5): this warp's 16 Q rows as the A fragments of Q K^T (32 registers), read once
      // from the swizzled Q above; each Q K^T then reads only K from shared memory (per tile and
      // warpgroup 16 KB less shared-memory traffic: with TMA writes and both operands read, the
      // SS form moves ~109 B per clock at the tensor cores' pace, near the 128 B/clk limit)
      [[maybe_unused]] uint32_t qf[QREG ? D / 16 : 1][4];
      if constexpr (QREG) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
          for (int j = 0; j < 4; ++j) {  // j: (row g | g + 8) x (k 2 t4 | 8 + 2 t4), mma.sync A order
            const int r = cw * 64 + wi * 16 + g + (j & 1) * 8, c = kk * 16 + (j >> 1) * 8 + 2 * t4;
            const uint32_t addr =
                sq + (c >> 6) * (BM * 128) + r * 128 + ((((c & 63) >> 3) ^ (r & 7)) << 4) + (c & 7) * 2;
            asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(qf[kk][j]) : "r"(addr) : "memory");
          }
      }
      float o[DR][32];
#pragma unroll
      for (int n = 0; n < DR; ++n)
#pragma unroll
        for (int i = 0; i < 32; ++i) o[n][i] = 0.f;
      // LAZY: zeroed once; Q K^T's first k-step ignores the accumulators (scale-d 0), so later
      // tiles reuse the registers as they are (no per-tile zeroing)
      float s[NS];
      if constexpr (LAZY)
#pragma unroll
        for (int i = 0; i < NS; ++i) s[i] = 0.f;
      uint32_t pa[BN / 16][4];
      float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f}, alpha[2] = {1.f, 1.f};
      // LAZY: matrix descriptors of this warpgroup's Q and of stage 0's K; any operand's is one of
      // these plus its byte offset / 16 (the start field holds (address & 0x3FFFF) >> 4 in its low
      // 14 bits, and every address here is 16-byte aligned and below 2^18, so nothing carries out)
      [[maybe_unused]] const uint64_t dq0 = sdesc(sq + cw * (64 * 128), 1024, 1024), dk0 = sdesc(sk(0), 1024, 1024);
      // PVW (fattn5): stage 0's V as one MN-major m64n128 operand: the leading offset steps between
      // the two 64-column regions (BN * 128 bytes apart), the stride offset between 8-key row groups
      // (1024 bytes); PTX canonical MN-major 128B-swizzle layout ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)).
      [[maybe_unused]] const uint64_t dvw0 = sdesc(sv(0), BN * 128, 1024);

      // GEMM turns (PP): step k of nsteps (all items); consumer 0 goes first; each waits for the other's
      // previous turn and hands the turn over after issuing (the last hand-over is dropped so that
      // every arrival has a matching wait)
      const int nsteps = total_steps;
      auto turn = [&] {
        if constexpr (PP)
          if (cw == 1 || step > 0) named_sync(3 + cw, 256);
      };
      auto pass = [&] {
        if constexpr (PP)
          if (cw == 0 || step + 1 < nsteps) named_arrive(4 - cw, 256);
        ++step;
      };
      auto ready = [&](int tile) {
        mbar_wait(full + 8 * ((tb + tile) % S), static_cast<uint32_t>((tb + tile) / S) & 1u);
      };
      auto release = [&](int tile) {  // after wgmma.wait_group: this warp is done with the stage
        if (lane == 0) mbar_arrive(empty + 8 * ((tb + tile) % S));
      };
      // SPLIT: ready/release above are K's; V's:
      auto vready = [&](int tile) {
        if constexpr (SPLIT) mbar_wait(vfull + 8 * ((tb + tile) % S), static_cast<uint32_t>((tb + tile) / S) & 1u);
      };
      auto vrelease = [&](int tile) {
        if constexpr (SPLIT)
          if (lane == 0) mbar_arrive(vempty + 8 * ((tb + tile) % S));
      };
      auto qk = [&](int tile) {  // issue S = Q K^T of a tile (one commit group)
        const int st = (tb + tile) % S;
        if constexpr (!LAZY)
#pragma unroll
          for (int i = 0; i < NS; ++i) s[i] = 0.f;
        wg_fence();
        if constexpr (QREG) {
          const uint64_t dk = dk0 + static_cast<uint64_t>(st) * ((2 * kTile) >> 4);
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk)
            wgmma_rs_k128<T>(s, qf[kk], dk + ((kk >> 2) * (BN * 128) + (kk & 3) * 32) / 16, kk > 0);
        } else if constexpr (LAZY) {  // descriptors as the base's plus constants (see dq0)
          const uint64_t dk = dk0 + static_cast<uint64_t>(st) * ((2 * kTile) >> 4);
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            const uint64_t qo = ((kk >> 2) * (BM * 128) + (kk & 3) * 32) / 16;
            const uint64_t ko = ((kk >> 2) * (BN * 128) + (kk & 3) * 32) / 16;
            if constexpr (BN == 128)
              wgmma_ss<T, BN>(s, dq0 + qo, dk + ko, kk > 0);
            else
              wgmma_ss_wide<T, BN>(s, dq0 + qo, dk + ko, kk > 0);
          }
        } else {
#pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            const uint32_t qa = sq + (kk >> 2) * (BM * 128) + cw * (64 * 128) + (kk & 3) * 32;
            const uint32_t ka = sk(st) + (kk >> 2) * (BN * 128) + (kk & 3) * 32;
            if constexpr (BN == 128)
              wgmma_ss<T, BN>(s, sdesc(qa, 1024, 1024), sdesc(ka, 1024, 1024), kk > 0);
            else
              wgmma_ss_wide<T, BN>(s, sdesc(qa, 1024, 1024), sdesc(ka, 1024, 1024), kk > 0);
          }
        }
        wg_commit();
      };
      auto pv = [&](int tile) {  // O += P V of a tile
        if constexpr (PVW > 0) {  // one m64n128k16 per 16 keys (half the instructions of m64n64k16)
          const uint64_t dv = dvw0 + static_cast<uint64_t>((tb + tile) % S) * ((2 * kTile) >> 4);
          wg_fence();
#pragma unroll
          for (int kk = 0; kk < BN / 16; ++kk) wgmma_rs128<T>(o[0], o[DR - 1], pa[kk], dv + (kk * (16 * 128)) / 16);
          wg_commit();
        } else if constexpr (LAZY) {
          const uint64_t dv = dk0 + (kTile >> 4) + static_cast<uint64_t>((tb + tile) % S) * ((2 * kTile) >> 4);
          wg_fence();
#pragma unroll
          for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
            for (int n = 0; n < DR; ++n) wgmma_rs<T>(o[n], pa[kk], dv + (n * (BN * 128) + kk * (16 * 128)) / 16);
          wg_commit();
        } else {
          wg_issue_pv<T, BN, DR>(o, pa, sv, (tb + tile) % S);
        }
      };
      // scale, softcap, masks and the online softmax of S (tile at key j0): s becomes P, alpha the
      // rescale of the rows' previous O
      auto softmax = [&](int64_t j0) {
        const bool edge = wg_edge_tile<BN>(a, j0, wr0, wlast);
        // softcap: s moves to the log2 domain here; else the scale is folded into the exponent's
        // FMA (scale > 0, so max(s) * scale is the max of the scaled row)
        float scl = a.scale_log2;
        if (a.cap > 0.f) {
#pragma unroll
          for (int i = 0; i < NS; ++i) s[i] = a.cap * tanhf(s[i] * a.scale_cap) * 1.4426950408889634f;
          scl = 1.f;
        }
        if (SPLIT && edge) {  // as below, the bounds per row clamped to 32 bits first (fewer registers)
          const int jl = static_cast<int>(min(a.Tk - j0, int64_t{BN}));  // keys [j0, j0 + jl) exist
          int hi[2], lo[2];  // row hr of this thread sees tile keys lo < jj <= hi
#pragma unroll
          for (int hr = 0; hr < 2; ++hr) {
            const int64_t lim = qi0 + hr * 8 + a.off - j0;  // causal: keys j - j0 <= lim
            const int64_t c = a.causal ? min(lim, int64_t{BN}) : int64_t{BN};
            hi[hr] = min(static_cast<int>(max(c, int64_t{-1})), jl - 1);
            lo[hr] = a.window > 0 ? static_cast<int>(max(min(lim - a.window, int64_t{BN}), int64_t{-1})) : -1;
          }
#pragma unroll
          for (int i = 0; i < NS; ++i) {
            const int jj = (i >> 2) * 8 + 2 * t4 + (i & 1), hr = (i >> 1) & 1;
            if (jj > hi[hr] || jj <= lo[hr]) s[i] = -INFINITY;
          }
        } else if (edge) {  // diagonal / window / last tiles only
          wg_mask_tile<BN>(s, a, j0, qi0, t4);
        }
        if constexpr (LAZY) {
          lazy_softmax_rows<BN>(s, mrow, lrow, alpha, scl);
        } else {
#pragma unroll
          for (int hr = 0; hr < 2; ++hr) {
            float mt = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < BN / 8; ++nt) mt = fmaxf(mt, fmaxf(s[nt * 4 + 2 * hr], s[nt * 4 + 2 * hr + 1]));
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
            const float mnew = fmaxf(mrow[hr], mt * scl);  // log2 domain
            const float base = mnew == -INFINITY ? 0.f : mnew;  // nothing visible so far: p = 0, no NaN
            alpha[hr] = ex2(mrow[hr] - base);
            mrow[hr] = mnew;
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < BN / 8; ++nt) {
              s[nt * 4 + 2 * hr] = ex2(fmaf(s[nt * 4 + 2 * hr], scl, -base));
              s[nt * 4 + 2 * hr + 1] = ex2(fmaf(s[nt * 4 + 2 * hr + 1], scl, -base));
              sum += s[nt * 4 + 2 * hr] + s[nt * 4 + 2 * hr + 1];
            }
            lrow[hr] = lrow[hr] * alpha[hr] + sum;  // per-thread partial; quad-reduced at the end
          }
        }
      };
      auto to_p = [&] { wg_to_p<T, BN>(pa, s); };  // P as the A fragments of P V

      if (ntiles > 0) {
        ready(0);
        turn();
        qk(0);
        pass();
        wg_wait<0>();
        reg_fence(s);
        if constexpr (SPLIT) release(0);  // K of tile 0 read
        softmax(jbeg);
        to_p();
      }
      for (int it = 0; it + 1 < ntiles; ++it) {
        ready(it + 1);
        turn();
        qk(it + 1);
        vready(it);
        pv(it);
        pass();
        wg_wait<1>();  // S of tile it + 1 (the P V may still run)
        reg_fence(s);
        if constexpr (SPLIT) release(it + 1);  // K of tile it + 1 read
        softmax(jbeg + static_cast<int64_t>(it + 1) * BN);
        if constexpr (LAZY) {
          // the wait for P V sits in the branches on the rescale vote. In one basic block with the
          // softmax, ptxas scheduled the wait first (SASS of n176: WARPGROUP.DEPBAR.LE gsb0, 0x0
          // ahead of the softmax's shuffles and exponentials): the softmax did not overlap the P V.
          auto pv_done = [&] {
            wg_wait<0>();
#pragma unroll
            for (int n = 0; n < DR; ++n) reg_fence(o[n]);
            reg_fence(pa);
          };
          if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {  // else O * 1 = O: skip
            pv_done();
#pragma unroll
            for (int n = 0; n < DR; ++n)
#pragma unroll
              for (int i = 0; i < 32; ++i) o[n][i] *= alpha[(i >> 1) & 1];
          } else {
            pv_done();
          }
          vrelease(it);  // V of tile it read
        } else {
          wg_wait<0>();
#pragma unroll
          for (int n = 0; n < DR; ++n) reg_fence(o[n]);
          reg_fence(pa);
          if constexpr (SPLIT) vrelease(it);  // V of tile it read
          else release(it);  // K (Q K^T of tile it) and V (P V of tile it) read
          if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {  // else O * 1 = O: skip
#pragma unroll
            for (int n = 0; n < DR; ++n)
#pragma unroll
              for (int i = 0; i < 32; ++i) o[n][i] *= alpha[(i >> 1) & 1];
          }
        }
        to_p();
      }
      if (ntiles > 0) {
        turn();
        vready(ntiles - 1);
        pv(ntiles - 1);
        pass();
        wg_wait<0>();
#pragma unroll
        for (int n = 0; n < DR; ++n) reg_fence(o[n]);
      }
      // ---- normalize and store
      wg_store_o<T, DR>(o, lrow, a, b, h, qi0, t4);
      tb += ntiles;
    }  // work items
  }
#endif  // FLAGOS_ATTN_WGMMA
}

// K or V [B, H, T, D] (byte strides rs, hs, bs) as a 4-D tensor map of boxes [BN rows][64
// columns] with the 128-byte swizzle; rows past T read as zeros. False when the driver refuses.
bool make_map(CUtensorMap& m, const void* base, DType dt, int64_t B, int64_t H, int64_t T, int64_t D, int64_t rs,
              int64_t hs, int64_t bs, int BN) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess)
      fn = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (!encode) return false;
  if (H == 1) hs = rs * T;  // unused strides of size-1 dimensions: any valid value
  if (B == 1) bs = hs * H;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(D), static_cast<cuuint64_t>(T), static_cast<cuuint64_t>(H),
                              static_cast<cuuint64_t>(B)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(rs), static_cast<cuuint64_t>(hs),
                                 static_cast<cuuint64_t>(bs)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(BN), 1, 1};
  const cuuint32_t estr[4] = {1, 1, 1, 1};
  return encode(&m, dt == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
                const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The dynamic shared-memory limit of a kernel, raised once per device (bit d of `done`; devices
// past 63 every time): the attribute call is host time in front of every launch otherwise.
template <typename F>
void raise_smem_once(F* fn, size_t smem, std::atomic<uint64_t>& done) {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = dev < 64 ? uint64_t{1} << dev : 0;
  if (bit && (done.load(std::memory_order_acquire) & bit)) return;
  CUDA_CHECK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  done.fetch_or(bit, std::memory_order_acq_rel);
}

template <typename T, int D, int NWG, int BN, int S, bool TMA>
void launch_wgmma(const WgArgs& w, cudaStream_t s) {
  constexpr size_t smem = wgmma_smem<D, NWG, BN, S>();
  static_assert(smem <= 227 * 1024, "shared memory per block");
  auto* fn = &attn_wgmma_kernel<T, D, NWG, BN, S, TMA>;
  static std::atomic<uint64_t> raised{0};
  raise_smem_once(fn, smem, raised);
  const int64_t blocks = (w.a.Tq + 64 * NWG - 1) / (64 * NWG) * w.a.B * w.a.Hq;
  fn<<<static_cast<unsigned>(blocks), NWG * 128, smem, s>>>(w);
  CUDA_CHECK_LAUNCH();
}

template <typename T, int D, int S, bool PP, int BN = 128, bool SPLIT = false, bool LAZY = false, int PVW = 0,
          bool QREG = false>
void launch_ws(const WgArgs& w, cudaStream_t s) {
  constexpr size_t smem = ws_smem<D, S, BN>();
  static_assert(smem <= 227 * 1024, "shared memory per block");
  auto* fn = &attn_ws_kernel<T, D, S, PP, BN, SPLIT, LAZY, PVW, QREG>;
  static std::atomic<uint64_t> raised{0};
  raise_smem_once(fn, smem, raised);
  const int64_t blocks = (w.a.Tq + 127) / 128 * w.a.B * w.a.Hq;
  fn<<<static_cast<unsigned>(blocks), 384, smem, s>>>(w);
  CUDA_CHECK_LAUNCH();
}

// Hopper prefill kernel choice, read once: FLAGOS_CUDA_FATTN_OLD=1 keeps the PR-1 kernel
// (attn_wgmma_kernel, both warpgroups loading and meeting at a barrier per tile);
// FLAGOS_CUDA_FATTN_VARIANT picks a warp-specialized (ping-pong) variant:
//   kvqa  (default, D = 128) K and V on separate barriers, 128-key tiles, 3 stages, the lazy running
//         max (LAZY), P V as one m64n128k16 per 16 keys (PVW) and Q K^T with Q in registers (QREG)
//   kvr   the same without PVW and QREG (the default before 2026-11-30 02:35)
//   pp    one full/empty barrier pair per stage, no LAZY (fattn2; the D = 64 kernel)
// D other than 128 runs pp. Measured and removed (2026-11-30): 176-key tiles (n176*), PVW without
// QREG (kvw*), a persistent grid (kvwp / kvqp: no gain), pp without the turns (ws), kv without LAZY.
enum class HopperKernel { ws_pingpong, old, kvr, kvqa };
// The default when FLAGOS_CUDA_FATTN_VARIANT is unset (one line to flip after measuring):
// H200 2026-11-29 23:45 (same job, us): no-mask T4096 n176 433.5 / pp 442.6; causal T4096 kv 241.7 /
// pp 252.1; T1024 causal 25.2 / 30.9; T512 causal 13.8 / 16.0.
// H200 2026-11-30 01:50 (same job, us; torch SDPA 405.4 / 251.8 / 32.7 / 21.7): no-mask T4096 kvr
// 430.5 / n176ra 431.8 / n176r 433.1 / n176 436.6; causal T4096 kvr 232.8 / n176ra 233.7 / n176 244.3;
// T1024 causal 25.2 / 25.4 / 25.6; T512 causal 14.0 / 14.2 / 14.3.
// H200 2026-11-30 02:35 (same job, us; batches of ~4 ms; torch 394.2 / 246.6 / 257.6 / 30.1 / 28.0): no-mask
// T4096 kvq 412.4 / kvqa 413.8 / kvqp 416.0 / kvwp 417.3 / kvw 417.6 / kvr 428.5; causal T4096 bf16 kvqa
// 224.6 / kvr 231.0; f16 232.1 / 240.4; T1024 24.4 / 24.7; T512 13.2 / 13.5: kvqa.
constexpr HopperKernel kDefaultHopperKernel = HopperKernel::kvqa;
HopperKernel hopper_kernel() {
  static const HopperKernel k = [] {
    const char* old = std::getenv("FLAGOS_CUDA_FATTN_OLD");
    if (old && std::string_view(old) == "1") return HopperKernel::old;
    const char* var = std::getenv("FLAGOS_CUDA_FATTN_VARIANT");
    const std::string_view v = var ? var : "";
    if (v == "pp") return HopperKernel::ws_pingpong;
    if (v == "kvr") return HopperKernel::kvr;
    if (v == "kvqa") return HopperKernel::kvqa;
    if (!v.empty())
      throw std::runtime_error("FLAGOS_CUDA_FATTN_VARIANT=" + std::string(v) + ": expected kvqa, kvr or pp");
    return kDefaultHopperKernel;
  }();
  return k;
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
  ma.B = q.size(0), ma.Hq = q.size(1), ma.G = q.size(1) / k.size(1), ma.Tq = Tq, ma.Tk = k.size(2), ma.off = ma.Tk - Tq;
  ma.window = p.window, ma.causal = p.causal;
  ma.scale = static_cast<float>(p.scale), ma.cap = static_cast<float>(p.softcap);
  ma.scale_cap = p.softcap > 0 ? static_cast<float>(p.scale / p.softcap) : 0.f;
  ma.scale_log2 = static_cast<float>(p.scale * 1.4426950408889634);
  const int64_t B = q.size(0);
  const cudaStream_t s = kernel_stream(a);
  if (sm90a_device(a.stream.device().index)) {
    // 2 warpgroups x 64 query rows, 128-key tiles, 3 stages, TMA (measured best on H200); if the
    // driver cannot encode the tensor maps: 3 warpgroups, 64-key tiles fed by cp.async
    WgArgs w{};
    w.a = ma;
    HopperKernel hk = hopper_kernel();
    const bool pos_scale = ma.scale_log2 > 0.f;  // the warp-specialized kernel folds it into exp2
    if (!pos_scale) hk = HopperKernel::old;
    if (hk != HopperKernel::old && D != 128) hk = HopperKernel::ws_pingpong;
    const bool tma =
        make_map(w.tk, k.data(), dt, B, k.size(1), k.size(2), D, k.stride(2), k.stride(1), k.stride(0), 128) &&
        make_map(w.tv, v.data(), dt, B, v.size(1), v.size(2), D, v.stride(2), v.stride(1), v.stride(0), 128);
    // (no tensor maps: the cp.async kernel below, whatever the variant)
    auto go = [&](auto tag) {
      using TT = decltype(tag);
      if (tma && pos_scale && hk == HopperKernel::kvqa)
        launch_ws<TT, 128, 3, true, 128, true, true, 1, true>(w, s);
      else if (tma && pos_scale && hk == HopperKernel::kvr)
        launch_ws<TT, 128, 3, true, 128, true, true>(w, s);
      else if (tma && pos_scale && hk == HopperKernel::ws_pingpong)
        D == 64 ? launch_ws<TT, 64, 4, true>(w, s) : launch_ws<TT, 128, 3, true>(w, s);
      else if (tma) D == 64 ? launch_wgmma<TT, 64, 2, 128, 3, true>(w, s) : launch_wgmma<TT, 128, 2, 128, 3, true>(w, s);
      else D == 64 ? launch_wgmma<TT, 64, 3, 64, 3, false>(w, s) : launch_wgmma<TT, 128, 3, 64, 3, false>(w, s);
    };
    if (dt == DType::bf16) go(__nv_bfloat16{});
    else go(__half{});
    return true;
  }
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
