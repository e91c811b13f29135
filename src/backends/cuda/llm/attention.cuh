// Internal interface between the attention kernels of the CUDA backend (attention.cu: the general
// CUDA-core flash kernel with split-KV; attention_mma.cu: the tensor-core prefill kernel;
// attention_f32.cu: the register-tiled f32 prefill kernel; paged_attention.cu: the tensor-core
// split-KV decode kernel, shared with paged_attention).
#pragma once
#include "flagos/kernel.h"
#include "flagos/op_params.h"

namespace flagos::cuda::llm {

// Runs the tensor-core kernel when it applies (bf16/f16, no mask, D == Dv in {64, 128}, unit
// feature strides, 16-byte aligned rows, at least 16 query rows); returns false otherwise.
bool attention_mma(const KernelArgs& a, const AttentionParams& p);

// Decode (Tq == 1) through the paged tensor-core kernel (paged_attention.cu), a dense K/V being a
// cache of B blocks of Tk keys: bf16/f16, no mask, D == Dv in {64, 128}, unit feature strides,
// 16-byte aligned K/V rows; returns false otherwise.
bool attention_decode_mma(const KernelArgs& a, const AttentionParams& p);

// f32 prefill on the register-tiled CUDA-core kernel (attention_f32.cu) when it applies: no mask,
// D == Dv in {64, 128}, unit feature strides, 16-byte aligned rows, at least 16 query rows (and not
// a few row tiles on a long cache, where the general kernel splits the keys), and
// FLAGOS_CUDA_F32ATTN_OLD unset; returns false otherwise.
bool attention_f32(const KernelArgs& a, const AttentionParams& p);

}  // namespace flagos::cuda::llm
