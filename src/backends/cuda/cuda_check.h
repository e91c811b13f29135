// Host-side helpers shared by the CUDA backend's .cpp and .cu files: CUDA_CHECK (every runtime
// call checked, the error naming the call and file:line), the launch check after each kernel
// launch, and the device/stream a kernel runs on.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "flagos/kernel.h"

namespace flagos::cuda {

// Throws OutOfMemory for allocation failures, RuntimeError otherwise, naming the CUDA error,
// the failing call and where it was made.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

inline void check(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) [[unlikely]]
    throw_cuda_error(err, call, file, line);
}

// Makes `device` current on this thread (a no-op when it already is).
void set_device(int device);

// Streaming multiprocessors of `device` (cached).
int sm_count(int device);

// Compute capability major version of `device` (cached; 0 for an index that is no device).
int compute_major(int device);

// The device and stream a kernel runs on: makes the args' device current and returns its stream.
inline cudaStream_t kernel_stream(const KernelArgs& a) {
  set_device(a.stream.device().index);
  return static_cast<cudaStream_t>(a.stream.handle());
}

}  // namespace flagos::cuda

#define CUDA_CHECK(call) ::flagos::cuda::check((call), #call, __FILE__, __LINE__)
// After every kernel launch: reports bad launch configurations where they happen.
#define CUDA_CHECK_LAUNCH() ::flagos::cuda::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
