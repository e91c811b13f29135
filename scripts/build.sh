#!/usr/bin/env bash
# scripts/build.sh PRESET [targets...]: configure + build one CMake preset with Ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
shift || true
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake --preset "$preset" "${launcher[@]}" >/dev/null
jobs=$(nproc)
ninja -C "build/$preset" -j"$jobs" "$@"
