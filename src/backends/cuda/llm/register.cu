// register_llm_kernels: the CUDA backend's LLM kernel family (every llm/*.cu file registers its own).
#include "backends/cuda/llm/llm_common.cuh"
#include "backends/cuda/llm/llm_kernels.h"

namespace flagos::cuda {

void register_llm_kernels(KernelRegistry& reg, uint16_t backend_id) {
  llm::register_norm(reg, backend_id);
  llm::register_act(reg, backend_id);
  llm::register_rope(reg, backend_id);
  llm::register_softmax(reg, backend_id);
  llm::register_quant(reg, backend_id);
  llm::register_embedding(reg, backend_id);
  llm::register_gemm(reg, backend_id);
  llm::register_linear(reg, backend_id);
  llm::register_attention(reg, backend_id);
  llm::register_paged(reg, backend_id);
  llm::register_sampling(reg, backend_id);
}

}  // namespace flagos::cuda
