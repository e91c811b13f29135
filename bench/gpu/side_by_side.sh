#!/usr/bin/env bash
# GPU side-by-side: flagos's CUDA kernels and the equivalent PyTorch calls on the same LLM shapes,
# on the same device in the same job. Prints op x shape: ours, torch, speedup, achieved TB/s or
# TFLOP/s and the fraction of the measured floor (copy bandwidth / bf16 matmul rate).
#
# usage: bench/gpu/side_by_side.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR  a CUDA build of flagos (configured and built when BUILD_DIR/bin/flagos is missing)
#   OUT_DIR    where flagos_cuda.json / torch.json / side_by_side.txt go (default: $OUT or bench_out)
#   FILTER     environment: the case regex (default: the LLM fast paths below)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/gpu}
OUTDIR=${2:-${OUT:-bench_out}}
mkdir -p "$OUTDIR"
if [ ! -x "$BUILD/bin/flagos" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLAGOS_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}" -DFLAGOS_CPU_ISAS=avx2 -DFLAGOS_BUILD_TESTS=OFF
  ninja -C "$BUILD" -j"$(nproc)" flagos_cli
fi
DEFAULT_FILTER='^(copy \[16384|linear \[(1|16|4096)x3584\]x\[18944x3584\]\^T (bf16 x bf16|f32|q8_0|q4_k|q6_k)( x bf16)?$|matmul \[4096x3584x18944\]|rms_norm \[(1|16|4096),3584\]|add_rms_norm|layer_norm|silu_and_mul|softmax \[(4096,32000|64,152064)\] f32|rope |attention |sample |embedding )'
FILTER=${FILTER:-$DEFAULT_FILTER}
"$BUILD/bin/flagos" bench ops --device cuda --filter "$FILTER" --json "$OUTDIR/flagos_cuda.json" | tee "$OUTDIR/flagos_cuda.txt"
python3 bench/gpu/torch_ops.py --json "$OUTDIR/torch.json" --filter "$FILTER" | tee "$OUTDIR/torch.txt"
python3 bench/gpu/torch_ops.py --merge "$OUTDIR/flagos_cuda.json" "$OUTDIR/torch.json" | tee "$OUTDIR/side_by_side.txt"
