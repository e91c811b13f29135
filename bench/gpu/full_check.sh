#!/usr/bin/env bash
# Everything that needs the GPU, in one job: build (CUDA sm_90a), the conformance suite and unit
# tests on the cuda backend, the engine's golden tests on CUDA, then the benchmarks side by side
# with PyTorch / HF transformers. Logs to $OUT; a summary table last.
#   BUDGET=seconds keeps the whole job within that time.
#   STAGES="tests tune ops engine profile" (default: "tests ops engine"); HF=1 runs HF transformers next to
#   the engine; PACK=1 packs the logs into $OUT/logs.tar.gz (for callers that fetch only a few files)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
B=${BUILD_DIR:-build/gpu}
STAGES=${STAGES:-"tests ops engine"}
summary=()
t0=$(date +%s)
# BUDGET (seconds, default unlimited): each step's timeout is cut to what is left, minus 25 s for packing.
cap() { local l=$(( ${BUDGET:-100000} - ($(date +%s) - t0) - 25 )); [ "$l" -lt 5 ] && l=5; [ "$1" -lt "$l" ] && l=$1; echo "$l"; }
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFLAGOS_CPU_ISAS=avx2 \
  -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON -DFLAGOS_BUILD_TESTS=ON >"$OUT/cmake.log" 2>&1 || { tail -20 "$OUT/cmake.log"; exit 1; }
ninja -C "$B" -j"$(nproc)" flagos_cli flagos_conformance flagos_unit flagos_engine_tests >"$OUT/build.log" 2>&1 \
  || { grep -m20 -B2 -A8 'error' "$OUT/build.log"; exit 1; }
summary+=("build: ok ($(( $(date +%s) - t0 )) s)")
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
if [[ " $STAGES " == *" tests "* ]]; then
  FLAGOS_TEST_BACKENDS=cuda timeout $(cap 300) "$B/tests/flagos_conformance" --gtest_brief=1 >"$OUT/conformance.log" 2>&1
  summary+=("conformance (cuda): rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+ test' "$OUT/conformance.log" | tr '\n' ' ')")
  grep -E '^\[  FAILED  \] [A-Z]' "$OUT/conformance.log" | head -20
  timeout $(cap 120) "$B/tests/flagos_unit" --gtest_brief=1 >"$OUT/unit.log" 2>&1
  summary+=("unit: rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+ test' "$OUT/unit.log" | tr '\n' ' ')")
  FLAGOS_ENGINE_TEST_DEVICE=cuda timeout $(cap 300) "$B/tests/engine/flagos_engine_tests" --gtest_brief=1 >"$OUT/engine_tests.log" 2>&1
  summary+=("engine tests (cuda): rc=$? $(grep -E '^\[  PASSED|^\[  FAILED  \] [0-9]+ test|SKIPPED' "$OUT/engine_tests.log" | tr '\n' ' ')")
  grep -E '^\[  FAILED  \] [A-Z]' "$OUT/engine_tests.log" | head -20
  "$B/bin/flagos" ops --coverage >"$OUT/coverage.txt" 2>&1; summary+=("coverage: $(tail -1 "$OUT/coverage.txt")")
fi
if [[ " $STAGES " == *" tune "* ]]; then
  timeout $(cap 120) "$B/bin/flagos" tune ops --device cuda --out "$OUT/sm_90.table" --json "$OUT/tune.json" >"$OUT/tune.log" 2>&1
  summary+=("tune: rc=$?"); tail -25 "$OUT/tune.log"
fi
if [[ " $STAGES " == *" ops "* ]]; then
  timeout $(cap 300) bench/gpu/side_by_side.sh "$B" "$OUT" >"$OUT/ops_bench.txt" 2>&1
  summary+=("ops side by side: rc=$?"); tail -50 "$OUT/ops_bench.txt"
fi
if [[ " $STAGES " == *" engine "* ]]; then
  # HF=1: next to HF transformers (bench/gpu/engine_side_by_side.sh); else flagos alone.
  if [ "${HF:-0}" = 1 ]; then
    REBUILD=0 BUILD_DIR="$B" timeout $(cap 400) bash bench/gpu/engine_side_by_side.sh ${ENGINE_ARGS:-} >"$OUT/engine_bench.txt" 2>&1
  else
    timeout $(cap 300) "$B/bin/flagos" bench model --random bench/gpu/qwen2.5-7b-shape.json --device cuda --dtype bf16 \
      ${ENGINE_ARGS:--p 512 -n 128 -b 1,16 -r 2} --json "$OUT/flagos_engine.json" >"$OUT/engine_bench.txt" 2>&1
  fi
  summary+=("engine bench: rc=$?"); grep -v '^\s*$' "$OUT/engine_bench.txt" | tail -20
fi
if [[ " $STAGES " == *" profile "* ]] && command -v nsys >/dev/null; then
  # Where a decode step's time goes: kernels by total GPU time over a short batch-1 decode.
  timeout $(cap 120) nsys profile -o "$OUT/decode" --force-overwrite true --stats=false "$B/bin/flagos" bench model \
    --random bench/gpu/qwen2.5-7b-shape.json --device cuda --dtype bf16 -p 16 -n 64 -b 1 -r 1 >"$OUT/nsys.log" 2>&1
  timeout $(cap 90) nsys stats --report cuda_gpu_kern_sum --format csv "$OUT/decode.nsys-rep" >"$OUT/kern_sum.csv" 2>>"$OUT/nsys.log"
  summary+=("profile: rc=$?"); head -25 "$OUT/kern_sum.csv" | cut -c1-220
  rm -f "$OUT/decode.sqlite"
fi
rm -f "$OUT"/*.nsys-rep
if [ "${PACK:-0}" = 1 ]; then
  (cd "$OUT" && tar -czf logs.tar.gz --exclude=logs.tar.gz --exclude=sm_90.table ./* ;
   find . -maxdepth 1 -type f ! -name logs.tar.gz ! -name sm_90.table ! -name side_by_side.txt ! -name flagos_engine.json -delete)
fi
echo; echo "== summary ($(( $(date +%s) - t0 )) s)"; printf '%s\n' "${summary[@]}"
