#!/usr/bin/env bash
# scripts/cuda_device_tests.sh BINDIR [GTEST_FILTER]: runs the CUDA backend's tests on a machine
# with an NVIDIA GPU from prebuilt binaries (flagos_conformance, flagos_unit, libflagos.so, and in
# BINDIR/lib any shared libraries the machine lacks), so the GPU machine needs no build toolchain
# or -dev packages. With BENCH_FILTER set and BINDIR/flagos present, also runs
# `flagos bench ops --device cuda --quick --filter "$BENCH_FILTER"`. Logs go to $OUT (default
# build/cuda-tests); a summary is printed last.
set -uo pipefail
bin=$(cd "${1:?usage: cuda_device_tests.sh BINDIR [GTEST_FILTER]}" && pwd)
filter=${2:-*}
out=${OUT:-build/cuda-tests}
mkdir -p "$out"
export LD_LIBRARY_PATH="$bin:$bin/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1
FLAGOS_TEST_BACKENDS=cuda timeout 420 "$bin/flagos_conformance" --gtest_brief=1 --gtest_filter="$filter" \
  > "$out/conformance.log" 2>&1
echo "conformance exit $?" >> "$out/conformance.log"
timeout 120 "$bin/flagos_unit" --gtest_brief=1 --gtest_filter='Cuda*' > "$out/unit.log" 2>&1
echo "unit exit $?" >> "$out/unit.log"
if [[ -n "${BENCH_FILTER:-}" && -x "$bin/flagos" ]]; then
  timeout 240 "$bin/flagos" bench ops --device cuda --quick --filter "$BENCH_FILTER" > "$out/bench.txt" 2>&1
fi
echo "== $(cat "$out/gpu.txt")"
for f in conformance unit; do
  echo "== $f: $(grep -E '^\[  PASSED  \]|tests? ran|exit' "$out/$f.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]' "$out/$f.log" | sed 's/, where GetParam.*//' | sort -u | head -60
done
[[ -f "$out/bench.txt" ]] && cat "$out/bench.txt"
