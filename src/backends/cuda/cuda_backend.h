// The CUDA backend: NVIDIA GPUs through the CUDA runtime. This header is free of CUDA types so
// that code built without the CUDA toolkit's headers (builtin_backends.cpp) can include it.
#pragma once
#include <cstddef>
#include <memory>

#include "flagos/backend.h"

namespace flagos::cuda {

// Registers with device_count() == 0 when there is no driver or GPU; never throws for that.
std::unique_ptr<Backend> make_cuda_backend();

// Page-locked host memory for asynchronous copies (cached; see PinnedHostPool in allocator.h).
// Free a buffer only after the copies using it have completed.
void* alloc_pinned(size_t bytes);
void free_pinned(void* p) noexcept;

}  // namespace flagos::cuda
