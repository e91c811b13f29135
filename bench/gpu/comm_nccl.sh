#!/usr/bin/env bash
# The communication library on a machine with 2+ NVIDIA GPUs, in one command:
#   bench/gpu/comm_nccl.sh            (logs and JSON under $OUT, default ./comm-gpu-out)
# 1. builds flagos with the NCCL adaptor (CUDA runtime + the toolkit's NCCL; the CUDA backend is not
#    needed: FLAGOS_CUDA=OFF unless set), CUDA architecture 90a;
# 2. runs the correctness suite on CUDA buffers: the NCCL adaptor (2 ranks), the heterogeneous mode
#    with two GPU ranks and one CPU rank, and a forced split of the two GPUs (host staging between
#    two NCCL clusters);
# 3. measures all-reduce (and all-gather, reduce-scatter) through `flagos bench comm -D cuda` next to
#    bench/gpu/nccl_direct.cpp (NCCL called directly, same sizes and timing), and the heterogeneous
#    all-reduce pipelined vs unpipelined;
# 4. prints a table last: busbw of both, the ratio, and the test results.
# Each step has its own time limit, so one hang cannot eat the whole run; later steps still run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/comm-gpu-out}
BUILD=${BUILD:-$ROOT/build/gpu-comm}
JOBS=${JOBS:-$(nproc)}
MAXB=${MAXB:-1G}
mkdir -p "$OUT"
log() { echo "[comm_nccl] $*" | tee -a "$OUT/summary.log"; }
: > "$OUT/summary.log"
nvidia-smi -L > "$OUT/gpus.txt" 2>&1 || true
log "GPUs: $(grep -c GPU "$OUT/gpus.txt" 2>/dev/null || echo 0); mpirun: $(command -v mpirun || echo none)"

log "configure + build (logs: $OUT/configure.log, $OUT/build.log)"
timeout 300 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLAGOS_CPU_ISAS="generic;avx2" \
  -DFLAGOS_CUDA="${FLAGOS_CUDA:-OFF}" -DFLAGOS_COMM_NCCL=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  > "$OUT/configure.log" 2>&1 || { log "configure FAILED"; tail -30 "$OUT/configure.log"; exit 1; }
grep -E "flagos_comm:" "$OUT/configure.log" | tee -a "$OUT/summary.log"
timeout 420 ninja -C "$BUILD" -j "$JOBS" flagos_cli flagos_comm_gpu_test flagos_nccl_direct \
  > "$OUT/build.log" 2>&1 || { log "build FAILED"; tail -40 "$OUT/build.log"; exit 1; }
F="$BUILD/bin/flagos"
T="$BUILD/tests/comm/flagos_comm_gpu_test"
D="$BUILD/src/comm/flagos_nccl_direct"

declare -A RESULT
run_test() {  # name, time limit, env..., -- , launch args...
  local name=$1 limit=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  log "test $name: $*"
  env "${envs[@]}" timeout "$limit" "$F" launch "$@" > "$OUT/test_$name.log" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E "passed, [0-9]+ failed" "$OUT/test_$name.log" | sed 's/^\[rank \([0-9]*\)\] /r\1: /' | tr '\n' ' ')
  if [ $rc -eq 0 ]; then RESULT[$name]="PASS ($summary)"; else RESULT[$name]="FAIL rc=$rc ($summary; see test_$name.log)"; fi
  grep -E "FAIL|FATAL" "$OUT/test_$name.log" | head -5 >> "$OUT/summary.log"
  log "  -> ${RESULT[$name]}"
}
run_test nccl 300 FLAGOS_COMM_TIMEOUT_MS=60000 -- -n 2 -- "$T"
if command -v mpirun > /dev/null; then
  run_test hetero_gpu_cpu 400 FLAGOS_COMM_TIMEOUT_MS=60000 -- -n 3 -- "$T" --devices cuda:0,cuda:1,cpu
  run_test split_gpus 400 FLAGOS_COMM_TIMEOUT_MS=60000 FLAGOS_COMM_SPLIT=2 FLAGOS_COMM_CHUNK_BYTES=65536 -- -n 2 -- "$T"
else
  RESULT[hetero_gpu_cpu]="SKIPPED (no mpirun: the host adaptor needs Open MPI)"
  RESULT[split_gpus]="SKIPPED (no mpirun)"
fi

# Bench: flagos through the NCCL adaptor, then NCCL directly, same sweep.
bench_pair() {  # op
  local op=$1
  log "bench $op: flagos bench comm -D cuda vs nccl_direct, 8 B .. $MAXB"
  timeout 300 "$F" bench comm -o "$op" -b 8 -e "$MAXB" -f 2 -D cuda -n 2 --json "$OUT/flagos_$op.json" \
    > "$OUT/bench_flagos_$op.log" 2>&1 || log "  flagos bench $op failed (rc $?)"
  timeout 300 "$F" launch -n 2 -- "$D" -o "$op" -b 8 -e "$MAXB" -f 2 --id-file "$OUT/nccl_id_$op" \
    > "$OUT/bench_direct_$op.log" 2>&1 || log "  nccl_direct $op failed (rc $?)"
}
for op in allreduce allgather reducescatter; do bench_pair $op; done

# Heterogeneous all-reduce over the two GPUs forced into two clusters: pipelined vs unpipelined.
if command -v mpirun > /dev/null; then
  for p in on off; do
    log "bench hetero allreduce --split 2 --pipeline $p (64M .. $MAXB)"
    timeout 300 "$F" bench comm -o allreduce -b 64M -e "$MAXB" -f 2 -D cuda -n 2 --split 2 --pipeline $p \
      --json "$OUT/hetero_pipeline_$p.json" > "$OUT/bench_hetero_$p.log" 2>&1 || log "  hetero $p failed (rc $?)"
  done
fi

# Rows of a bench table (rank 0's lines without '#'): size busbw_out busbw_in.
rows() { sed 's/^\[rank 0\] //' "$1" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && NF >= 13 {print $1, $8, $12}'; }
table() {  # op
  local op=$1
  echo
  echo "== $op: busbw (GB/s), 2 ranks, flagos (NCCL adaptor) vs NCCL direct; ratio = flagos / direct"
  printf "%14s %12s %12s %12s %12s %8s %8s\n" size flagos_oop direct_oop flagos_ip direct_ip ratio_oop ratio_ip
  join <(rows "$OUT/bench_flagos_$op.log" | sort -k1,1) <(rows "$OUT/bench_direct_$op.log" | sort -k1,1) | sort -n |
    awk '{fo = $2; fi = $3; do_ = $4; di = $5;  # join: size, flagos oop, flagos ip, direct oop, direct ip
          ro = (do_ > 0) ? fo / do_ : 0; ri = (di > 0) ? fi / di : 0;
          printf "%14d %12.2f %12.2f %12.2f %12.2f %8.3f %8.3f\n", $1, fo, do_, fi, di, ro, ri;
          if ($1 >= 67108864) {so += fo; sd += do_; si += fi; sj += di; k++}}
          END {if (k) printf "%14s %12.2f %12.2f %12.2f %12.2f %8.3f %8.3f   (sizes >= 64 MiB: mean busbw)\n",
                             ">=64MiB", so/k, sd/k, si/k, sj/k, (sd ? so/sd : 0), (sj ? si/sj : 0)}'
}
{
  echo
  echo "================ flagos comm on GPUs: results ================"
  grep -m1 -i "NCCL adaptor with" "$OUT/configure.log"
  sed -n 's/^\[rank 0\] rank 0: //p' "$OUT/test_nccl.log" | head -1
  for op in allreduce allgather reducescatter; do table $op; done
  if [ -f "$OUT/bench_hetero_on.log" ]; then
    echo
    echo "== heterogeneous all-reduce (2 GPUs forced into 2 clusters, host staging): in-place busbw GB/s"
    printf "%14s %14s %14s %8s\n" size pipelined unpipelined speedup
    join <(rows "$OUT/bench_hetero_on.log" | sort -k1,1) <(rows "$OUT/bench_hetero_off.log" | sort -k1,1) | sort -n |
      awk '{printf "%14d %14.2f %14.2f %8.2f\n", $1, $3, $5, ($5 > 0 ? $3 / $5 : 0)}'
  fi
  echo
  echo "== tests"
  for k in nccl hetero_gpu_cpu split_gpus; do printf "%-16s %s\n" "$k" "${RESULT[$k]:-not run}"; done
  echo "(logs: $OUT)"
} | tee "$OUT/table.txt"
