// Hook for the LLM kernel family of the CUDA backend (llm/*.cu): linear, matmul, embedding,
// quantize/dequantize, the norms, rope, the gated activations, attention, paged_attention /
// kv_cache_store, softmax/log_softmax, sample and multinomial. The backend calls it from register_kernels.
#pragma once
#include <cstdint>

#include "flagos/kernel.h"

namespace flagos::cuda {
void register_llm_kernels(KernelRegistry& reg, uint16_t backend_id);
}  // namespace flagos::cuda
