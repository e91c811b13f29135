#pragma once
#include <cstdint>

#include "flagos/kernel.h"

namespace flagos::cpu {
#define FLAGOS_CPU_PORTABLE_FAMILIES(X) X(index) X(sort) X(sampling)
#define FLAGOS_DECLARE_FAMILY(f) void register_##f(KernelRegistry& reg, uint16_t backend_id);
FLAGOS_CPU_PORTABLE_FAMILIES(FLAGOS_DECLARE_FAMILY)
#undef FLAGOS_DECLARE_FAMILY
}  // namespace flagos::cpu
