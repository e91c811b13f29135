// Kernels with no SIMD benefit are compiled once; their families register here.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/portable_families.h"

namespace flagos::cpu {

void register_portable_kernels(KernelRegistry& reg, uint16_t backend_id) {
#define FLAGOS_CALL_FAMILY(f) register_##f(reg, backend_id);
  FLAGOS_CPU_PORTABLE_FAMILIES(FLAGOS_CALL_FAMILY)
#undef FLAGOS_CALL_FAMILY
}

}  // namespace flagos::cpu
