// Kernel families compiled once per ISA (namespace flagos::cpu::<isa>). Each file registers
// its kernels; register.cpp calls them all.
#pragma once
#include <cstdint>

#include "flagos/kernel.h"

#ifndef FLAGOS_ISA
#error "kernels/ files are compiled per ISA with -DFLAGOS_ISA=<isa>"
#endif

namespace flagos::cpu::FLAGOS_ISA {
#define FLAGOS_CPU_SIMD_FAMILIES(X) \
  X(copy) X(unary) X(binary) X(reduce) X(softmax) X(norm) X(matmul) X(quant) X(rope) X(act) X(attention)
#define FLAGOS_DECLARE_FAMILY(f) void register_##f(KernelRegistry& reg, uint16_t backend_id);
FLAGOS_CPU_SIMD_FAMILIES(FLAGOS_DECLARE_FAMILY)
#undef FLAGOS_DECLARE_FAMILY
}  // namespace flagos::cpu::FLAGOS_ISA
