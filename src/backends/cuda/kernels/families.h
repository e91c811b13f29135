// Kernel families of the CUDA backend: each kernels/<family>.cu registers its ops; the backend
// calls them all (and llm/llm_kernels.h's register_llm_kernels) from register_kernels.
#pragma once
#include <cstdint>

#include "flagos/kernel.h"

namespace flagos {
class Tensor;
}

namespace flagos::cuda {
#define FLAGOS_CUDA_FAMILIES(X) X(copy) X(unary) X(binary) X(reduce) X(reduce_stats) X(scan) X(index) X(sort)
#define FLAGOS_DECLARE_FAMILY(f) void register_##f(KernelRegistry& reg, uint16_t backend_id);
FLAGOS_CUDA_FAMILIES(FLAGOS_DECLARE_FAMILY)
#undef FLAGOS_DECLARE_FAMILY

// dst <- src, same shape and dtype, any strides, both on the current device; queued on `stream`
// (a cudaStream_t). Implemented in kernels/copy.cu; used by the backend's copy_strided.
void copy_strided_async(const Tensor& dst, const Tensor& src, void* stream);
}  // namespace flagos::cuda
