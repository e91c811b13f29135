#!/usr/bin/env bash
# The main job: set up, build, and run the op benchmark on a small set of cases on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[main] building (release)..."
bash scripts/build.sh release flagos_cli
build/release/bin/flagos devices
build/release/bin/flagos bench ops --quick --json build/release/bench_ops_quick.json
