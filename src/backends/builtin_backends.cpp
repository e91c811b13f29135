// Registers the backends compiled into this build: the CPU first (id 0), then accelerators.
#include "backends/cpu/cpu_backend.h"
#ifdef FLAGOS_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif
#include "flagos/backend.h"

namespace flagos::detail {

void register_builtin_backends() {
  register_backend(cpu::make_cpu_backend());
  // Accelerator backends (CUDA, OpenCL) register here when compiled in; a backend whose
  // driver finds no device still registers, reporting device_count() == 0.
#ifdef FLAGOS_HAVE_CUDA
  register_backend(cuda::make_cuda_backend());  // id 1
#endif
}

}  // namespace flagos::detail
