#include "backends/cpu/kernels/families.h"

namespace flagos::cpu::FLAGOS_ISA {

void register_softmax(KernelRegistry&, uint16_t) {}

}  // namespace flagos::cpu::FLAGOS_ISA
