#!/usr/bin/env bash
# The engine on one GPU next to HF transformers, same run, same card: a Qwen2.5-7B-shaped model
# with random bf16 weights (bench/gpu/qwen2.5-7b-shape.json), prefill 512 and decode 128 at batch
# 1 and 16. Builds flagos (CUDA, sm_90a), runs `flagos bench model --random` and
# bench/gpu/hf_engine.py, prints both and the ratio. Logs and JSON go to $OUT (default /tmp/out).
#   bash bench/gpu/engine_side_by_side.sh [-p 512] [-n 128] [-b 1,16] [-r 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
args=(-p 512 -n 128 -b 1,16 -r 3)
[ $# -gt 0 ] && args=("$@")
cfg=bench/gpu/qwen2.5-7b-shape.json
build=${BUILD_DIR:-build/gpu}
if [ ! -x "$build/bin/flagos" ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DFLAGOS_CPU_ISAS=avx2 >"$OUT/engine_cmake.log" 2>&1
  ninja -C "$build" -j"$(nproc)" flagos_cli >"$OUT/engine_build.log" 2>&1 || { tail -30 "$OUT/engine_build.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"
"$build/bin/flagos" bench model --random "$cfg" --device cuda --dtype bf16 "${args[@]}" \
  --json "$OUT/flagos_engine.json" 2>&1 | tee "$OUT/flagos_engine.log"
python3 bench/gpu/hf_engine.py "$cfg" "${args[@]}" --json "$OUT/hf_engine.json" 2>&1 | tee "$OUT/hf_engine.log"
python3 - "$OUT/flagos_engine.json" "$OUT/hf_engine.json" <<'PY'
import json, sys
ours = {(r["test"], r["batch"]): r["avg_ts"] for r in json.load(open(sys.argv[1]))}
hf = {(r["test"], r["batch"]): r["avg_ts"] for r in json.load(open(sys.argv[2]))}
# Decode floor at batch 1: all weights read once per token.
print("\n| test | batch | flagos t/s | HF t/s | flagos / HF |")
print("| ---- | ----- | ---------- | ------ | ----------- |")
for k in sorted(ours):
    h = hf.get(k, float("nan"))
    print(f"| {k[0]} | {k[1]} | {ours[k]:.1f} | {h:.1f} | {ours[k] / h:.2f}x |")
PY
