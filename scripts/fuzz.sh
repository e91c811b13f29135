#!/usr/bin/env bash
# Builds the "fuzz" preset (clang, libFuzzer + ASan + UBSan) and runs each fuzz target for
# FLAGOS_FUZZ_SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/<target>/.
# Fails when a target crashes, leaks, hangs (> 10 s on one input) or trips a sanitizer; the
# input that did it is left in build/fuzz/artifacts/. Usage: scripts/fuzz.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FLAGOS_FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_gguf fuzz_safetensors fuzz_tokenizer_json)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake --preset fuzz "${launcher[@]}" >/dev/null
ninja -C build/fuzz -j"$(nproc)" "${targets[@]}"

mkdir -p build/fuzz/artifacts
for t in "${targets[@]}"; do
  work="build/fuzz/corpus/$t"  # new inputs go here; the committed seeds stay as they are
  mkdir -p "$work"
  log="build/fuzz/$t.log"
  echo "[fuzz] $t for ${seconds}s (log: $log)"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "build/fuzz/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="build/fuzz/artifacts/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "[fuzz] $t FAILED; reproducer in build/fuzz/artifacts/" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^Done" "$log" || true
done
echo "[fuzz] all targets ran ${seconds}s without a failure"
