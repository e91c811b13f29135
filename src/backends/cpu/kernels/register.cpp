#include "backends/cpu/kernels/families.h"

namespace flagos::cpu::FLAGOS_ISA {

void register_simd_kernels(KernelRegistry& reg, uint16_t backend_id) {
#define FLAGOS_CALL_FAMILY(f) register_##f(reg, backend_id);
  FLAGOS_CPU_SIMD_FAMILIES(FLAGOS_CALL_FAMILY)
#undef FLAGOS_CALL_FAMILY
}

}  // namespace flagos::cpu::FLAGOS_ISA
