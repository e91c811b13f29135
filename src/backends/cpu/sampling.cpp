#include "backends/cpu/portable_families.h"

namespace flagos::cpu {

void register_sampling(KernelRegistry&, uint16_t) {}

}  // namespace flagos::cpu
