// Tensor-core building blocks shared by the attention kernels (attention_mma.cu, paged_attention.cu):
// cp.async 16-byte copies, ldmatrix, mma.sync m16n8k16 with f32 accumulation, f32 pairs -> 16-bit.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace flagos::cuda::llm {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; src_bytes = 0 fills zeros (rows past the end).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }
// Waits for all but the most recently committed group.
__device__ __forceinline__ void cp_async_wait_1() { asm volatile("cp.async.wait_group 1;\n" ::); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// The inner step of the mma.sync flash-attention kernels for one key tile on a warp's 16 query
// rows: s[KT][4] holds the tile's scores (log2 domain, masked = -inf) as m16n8 accumulator
// fragments (KT = keys / 8) and becomes P = exp2(s - running max); mrow / lrow are the running max
// and this thread's partial sum of rows g and g + 8 (quad-reduced by the caller at the end); the
// output fragments o[NT][4] (NT = head_dim / 8) are rescaled by the change of the max.
template <int KT, int NT>
__device__ __forceinline__ void online_softmax_tile(float (&s)[KT][4], float (&mrow)[2], float (&lrow)[2],
                                                    float (&o)[NT][4]) {
  float alpha[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    float mt = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < KT; ++nt) mt = fmaxf(mt, fmaxf(s[nt][2 * hr], s[nt][2 * hr + 1]));
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
    mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
    const float mnew = fmaxf(mrow[hr], mt);
    const float base = mnew == -INFINITY ? 0.f : mnew;  // nothing visible so far: p = 0, no NaN
    alpha[hr] = exp2f(mrow[hr] - base);
    mrow[hr] = mnew;
    float sum = 0.f;
#pragma unroll
    for (int nt = 0; nt < KT; ++nt) {
      s[nt][2 * hr] = exp2f(s[nt][2 * hr] - base);
      s[nt][2 * hr + 1] = exp2f(s[nt][2 * hr + 1] - base);
      sum += s[nt][2 * hr] + s[nt][2 * hr + 1];
    }
    lrow[hr] = lrow[hr] * alpha[hr] + sum;
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    o[nt][0] *= alpha[0];
    o[nt][1] *= alpha[0];
    o[nt][2] *= alpha[1];
    o[nt][3] *= alpha[1];
  }
}

// O += P V for the tile: P from s (online_softmax_tile's output) as 16-bit A fragments, V^T via
// ldmatrix.trans from the tile's V rows in shared memory (row r = key r, pitch P elements).
template <typename T, int P, int KT, int NT>
__device__ __forceinline__ void accumulate_pv(float (&o)[NT][4], const float (&s)[KT][4], const T* vt, int lane) {
#pragma unroll
  for (int kk = 0; kk < KT / 2; ++kk) {
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
}

}  // namespace flagos::cuda::llm
