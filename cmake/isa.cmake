# flagos_add_isa_kernels(<target> <sources...>)
# Compiles each source once per ISA in FLAGOS_CPU_ISAS with that ISA's flags and
# -DFLAGOS_ISA=<isa>; the sources put their code in namespace flagos::cpu::FLAGOS_ISA.
# -fno-trapping-math lets GCC vectorize the branch-free selects in kernels/vec_math.h.
set(FLAGOS_ISA_FLAGS_common -fno-trapping-math)
set(FLAGOS_ISA_FLAGS_generic "")
set(FLAGOS_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c -mbmi2)
set(FLAGOS_ISA_FLAGS_avx512 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c -mbmi2)
function(flagos_add_isa_kernels target)
  foreach(isa IN LISTS FLAGOS_CPU_ISAS)
    set(lib ${target}_${isa})
    add_library(${lib} OBJECT ${ARGN})
    target_compile_definitions(${lib} PRIVATE FLAGOS_ISA=${isa} FLAGOS_ISA_${isa}=1)
    target_compile_options(${lib} PRIVATE ${FLAGOS_ISA_FLAGS_common} ${FLAGOS_ISA_FLAGS_${isa}} -O3)
    target_include_directories(${lib} PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
    string(TOUPPER ${isa} ISA)
    target_compile_definitions(${target} PRIVATE FLAGOS_HAVE_ISA_${ISA}=1)
  endforeach()
endfunction()
