// Dense GEMM through cuBLASLt for the LLM kernels (matmul, linear's many-row path), plus the small
// helpers linear needs around it: dtype conversion of a strided matrix into a contiguous buffer,
// the bias epilogue, and block-quantized weight rows dequantized into a buffer.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "flagos/dtype.h"
#include "flagos/kernel.h"

namespace flagos::cuda::llm {

// Column-major BLAS convention: C (m x n, ldc) = op(A) (m x k) * op(B) (k x n) + beta * C, for
// `batch` matrices `s*` elements apart (all one dtype: f32, f64, f16 or bf16; f32/f16/bf16
// accumulate in f32 with TF32 off, f64 in f64).
struct GemmCall {
  DType dt = DType::f32;
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  const void* A = nullptr;
  int64_t lda = 0, sa = 0;
  const void* B = nullptr;
  int64_t ldb = 0, sb = 0;
  void* C = nullptr;
  int64_t ldc = 0, sc = 0;
  int64_t batch = 1;
  float beta = 0.f;
};
// Runs on a.stream (workspace from the stream-ordered allocator). Throws NotSupported when
// cuBLASLt has no algorithm for the call.
void gemm(const KernelArgs& a, const GemmCall& g);

// dst (contiguous [rows, cols] of dst_dt) <- src [rows, cols] of src_dt with element strides (rs, cs).
void convert_matrix(const void* src, DType src_dt, int64_t rows, int64_t cols, int64_t rs, int64_t cs, void* dst,
                    DType dst_dt, int device, cudaStream_t s);
// y [M, N] contiguous of y_dt: y = bias (broadcast over rows; zeros when bias is null) when
// `overwrite`, else y += bias.
void bias_rows(void* y, DType y_dt, int64_t M, int64_t N, const float* bias, bool overwrite, int device,
               cudaStream_t s);
// Block-quantized [rows, K] (row stride in bytes) -> contiguous f32/f16/bf16 (quant.cu).
void dequantize_rows(DType qt, const void* q, int64_t rows, int64_t K, int64_t row_stride, DType out_dtype,
                     void* out, int device, cudaStream_t s);

}  // namespace flagos::cuda::llm
