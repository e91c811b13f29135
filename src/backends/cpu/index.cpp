#include "backends/cpu/portable_families.h"

namespace flagos::cpu {

void register_index(KernelRegistry&, uint16_t) {}

}  // namespace flagos::cpu
