#!/usr/bin/env bash
# One GPU job for the CUDA LLM kernels: the conformance suites of their ops on the cuda backend
# (one process per suite, so a crash stays in its suite), then the side-by-side benchmark.
# usage: bench/gpu/cuda_llm_check.sh BUILD_DIR OUT_DIR [SUITES]
#   BUILD_DIR  holds bin/flagos and bin/flagos_conformance (a CUDA build)
#   SUITES     gtest filters separated by spaces (default: every LLM-kernel suite); "none" skips
#   BENCH=0    environment: skip the benchmark
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=$1
OUTDIR=$2
SUITES=${3:-"*Matmul* *Linear* *Embedding* *Quant* *Norm* *Rope* *ActAndMul* *Attention* *Multinomial* *Sample* *AlongDim*oftmax*"}
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUTDIR/gpu.txt"
if [ "$SUITES" != none ]; then
  for s in $SUITES; do
    FLAGOS_TEST_BACKENDS=cuda timeout 120 "$BUILD/bin/flagos_conformance" --gtest_filter="$s" --gtest_brief=1 \
      >"$OUTDIR/conf.log" 2>&1
    rc=$?
    cat "$OUTDIR/conf.log" >>"$OUTDIR/conformance.txt"
    echo "suite $s: rc=$rc $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+ test' "$OUTDIR/conf.log" | tr '\n' ' ')"
    grep -E '^\[  FAILED  \] All|^\[  FAILED  \] [A-Z]' "$OUTDIR/conf.log" | head -12
    grep -m3 -E 'error|Failure|what\(\)|rel L2|got' "$OUTDIR/conf.log"
  done
fi
if [ "${BENCH:-1}" != 0 ]; then
  timeout 420 bench/gpu/side_by_side.sh "$BUILD" "$OUTDIR" >"$OUTDIR/bench.txt" 2>&1
  echo "bench rc=$?"
  tail -45 "$OUTDIR/bench.txt"
fi
