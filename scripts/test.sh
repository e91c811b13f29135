#!/usr/bin/env bash
# The whole test suite: release build + tests, then the same tests under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
echo "[test] release build"
bash scripts/build.sh release
echo "[test] release tests ($(date +%s | awk -v s=$start '{print $1-s}')s elapsed)"
ctest --preset release --output-on-failure
echo "[test] ASan+UBSan build"
bash scripts/build.sh asan
echo "[test] ASan+UBSan tests ($(date +%s | awk -v s=$start '{print $1-s}')s elapsed)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan --output-on-failure
echo "[test] done in $(date +%s | awk -v s=$start '{print $1-s}')s"
