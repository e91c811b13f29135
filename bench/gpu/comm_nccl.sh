#!/usr/bin/env bash
# The communication library on a machine with 2+ NVIDIA GPUs, in one command:
#   bench/gpu/comm_nccl.sh            (logs under $OUT, default ./comm-gpu-out; table printed last)
# 1. builds flagos with the NCCL adaptor (CUDA runtime + the toolkit's NCCL; the runtime's CUDA
#    backend is not needed: FLAGOS_CUDA=OFF unless set), CUDA architecture 90a;
# 2. runs the correctness suite on CUDA buffers through the NCCL adaptor (2 ranks);
# 3. measures all-reduce through `flagos bench comm -D cuda` next to bench/gpu/nccl_direct.cpp (NCCL
#    called directly, same sizes and timing);
# 4. measures the heterogeneous all-reduce pipelined vs unpipelined (two GPUs forced into two
#    clusters; needs mpirun) with FLAGOS_COMM_STAGE_TIMES=1 (where the time goes, per stage), and
#    the host adaptor's all-reduce alone (the leaders' exchange, the ceiling of that path);
# 5. runs the heterogeneous suites (two GPU ranks + one CPU rank; the two GPUs forced into two
#    clusters);
# 6. measures all-gather and reduce-scatter like 3;
# 7. prints tables: busbw of both and their ratio, small-message latency, the pipeline speedup and
#    its stage breakdown, the test results.
# PACK=1 packs the logs into $OUT/logs.tar.gz at the end (for tools that fetch only a few files).
# The whole run keeps within BUDGET seconds (default 570): each step gets at most what is left, in
# the order above, and steps that no longer fit are reported as skipped.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/comm-gpu-out}
BUILD=${BUILD:-$ROOT/build/gpu-comm}
JOBS=${JOBS:-$(nproc)}
MAXB=${MAXB:-1G}
BUDGET=${BUDGET:-570}
mkdir -p "$OUT"
: > "$OUT/summary.log"
log() { echo "[comm_nccl $(date +%T)] $*" | tee -a "$OUT/summary.log"; }
left() { echo $(( BUDGET - SECONDS - 15 )); }  # keep 15 s for the table
# limit CAP: the step's time limit, or 0 when fewer than MIN seconds are left.
limit() { local cap=$1 min=$2 l; l=$(left); if [ "$l" -lt "$min" ]; then echo 0; elif [ "$l" -lt "$cap" ]; then echo "$l"; else echo "$cap"; fi; }

nvidia-smi -L > "$OUT/gpus.txt" 2>&1 || true
HAVE_MPI=0
command -v mpirun > /dev/null && HAVE_MPI=1
log "GPUs: $(grep -c '^GPU' "$OUT/gpus.txt" 2>/dev/null); mpirun: $(command -v mpirun || echo none); budget ${BUDGET}s"

GEN=()
command -v ninja > /dev/null && GEN=(-G Ninja)
log "configure + build (logs: configure.log, build.log)"
if ! timeout "$(limit 120 30)" cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
     -DFLAGOS_CPU_ISAS=generic -DFLAGOS_BUILD_TESTS=OFF -DFLAGOS_CUDA="${FLAGOS_CUDA:-OFF}" -DFLAGOS_COMM_NCCL=ON \
     -DCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/configure.log" 2>&1; then
  log "configure FAILED"; tail -30 "$OUT/configure.log"; exit 1
fi
grep -E "flagos_comm:" "$OUT/configure.log" | tee -a "$OUT/summary.log"
if ! timeout "$(limit 360 60)" cmake --build "$BUILD" -j "$JOBS" --target flagos_cli flagos_comm_gpu_test \
     flagos_nccl_direct > "$OUT/build.log" 2>&1; then
  log "build FAILED"; tail -40 "$OUT/build.log"; exit 1
fi
log "built"
F="$BUILD/bin/flagos"
T="$BUILD/tests/comm/flagos_comm_gpu_test"
D="$BUILD/src/comm/flagos_nccl_direct"

declare -A RESULT
run_test() {  # name cap env... -- launch-args...
  local name=$1 cap=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local t; t=$(limit "$cap" $(( cap < 40 ? cap : 40 )))
  if [ "$t" = 0 ]; then RESULT[$name]="SKIPPED (out of time)"; log "test $name skipped (out of time)"; return; fi
  log "test $name (limit ${t}s): flagos launch $*"
  env FLAGOS_COMM_TIMEOUT_MS=60000 "${envs[@]}" timeout "$t" "$F" launch "$@" > "$OUT/test_$name.log" 2>&1
  local rc=$? summary
  summary=$(grep -E "passed, [0-9]+ failed" "$OUT/test_$name.log" | sed 's/^\[rank \([0-9]*\)\] /r\1: /' | tr '\n' ' ')
  if [ $rc -eq 0 ]; then RESULT[$name]="PASS ($summary)"; else RESULT[$name]="FAIL rc=$rc ($summary; test_$name.log)"; fi
  grep -E "FAIL|FATAL" "$OUT/test_$name.log" | head -5 >> "$OUT/summary.log"
  log "  -> ${RESULT[$name]}"
}
bench_pair() {  # op cap
  local op=$1 cap=$2 t
  t=$(limit "$cap" 30)
  if [ "$t" = 0 ]; then log "bench $op skipped (out of time)"; return; fi
  log "bench $op: flagos bench comm -D cuda vs nccl_direct, 8 B .. $MAXB (limit ${t}s each)"
  timeout "$t" "$F" bench comm -o "$op" -b 8 -e "$MAXB" -f 2 -D cuda -n 2 --json "$OUT/flagos_$op.json" \
    > "$OUT/bench_flagos_$op.log" 2>&1 || log "  flagos bench $op: rc $?"
  t=$(limit "$cap" 30)
  [ "$t" = 0 ] && { log "  nccl_direct $op skipped (out of time)"; return; }
  timeout "$t" "$F" launch -n 2 -- "$D" -o "$op" -b 8 -e "$MAXB" -f 2 --id-file "$OUT/nccl_id_$op" \
    > "$OUT/bench_direct_$op.log" 2>&1 || log "  nccl_direct $op: rc $?"
}

run_test nccl 60 -- -n 2 -- "$T"
bench_pair allreduce 45
# The polled non-blocking NCCL communicator (FLAGOS_COMM_NCCL_BLOCKING=0; the default splits a
# blocking one off for the calls): suite and all-reduce sweep.
run_test nccl_polled 60 FLAGOS_COMM_NCCL_BLOCKING=0 -- -n 2 -- "$T"
t=$(limit 45 30)
if [ "$t" != 0 ]; then
  log "bench allreduce with FLAGOS_COMM_NCCL_BLOCKING=0 (limit ${t}s)"
  FLAGOS_COMM_NCCL_BLOCKING=0 timeout "$t" "$F" bench comm -o allreduce -b 8 -e "$MAXB" -f 2 -D cuda -n 2 \
    > "$OUT/bench_flagos_allreduce_polled.log" 2>&1 || log "  flagos bench allreduce (polled): rc $?"
fi
if [ $HAVE_MPI = 1 ]; then
  for p in on off; do
    t=$(limit 40 20)
    if [ "$t" = 0 ]; then log "bench hetero --pipeline $p skipped (out of time)"; continue; fi
    log "bench hetero allreduce --split 2 --pipeline $p, 64M .. $MAXB, stage times (limit ${t}s)"
    FLAGOS_COMM_STAGE_TIMES=1 timeout "$t" "$F" bench comm -o allreduce -b 64M -e "$MAXB" -f 2 -D cuda -n 2 --split 2 \
      --pipeline $p --json "$OUT/hetero_pipeline_$p.json" > "$OUT/bench_hetero_$p.log" 2>&1 || log "  hetero $p: rc $?"
  done
  t=$(limit 30 15)
  if [ "$t" != 0 ]; then
    log "bench host all-reduce (the leaders' exchange alone), 2 ranks, 1M .. $MAXB (limit ${t}s)"
    timeout "$t" "$F" bench comm -o allreduce -b 1M -e "$MAXB" -f 4 -D cpu -n 2 > "$OUT/bench_host.log" 2>&1 ||
      log "  host bench: rc $?"
  fi
  # A rank that stays away: the other must get flagosTimeout (1.5 s), not hang (watchdog / destroy).
  # The rank that stays away is stopped by the launcher once the other one has exited (rc 1 by
  # design): the test passes when the waiting rank reported FAULT-OK (its timeout) and nothing failed.
  for f in first queued; do
    run_test fault_$f 20 -- -n 2 -- "$T" --fault $f
    if grep -q "FAULT-OK" "$OUT/test_fault_$f.log" && ! grep -q "FAIL fault" "$OUT/test_fault_$f.log"; then
      RESULT[fault_$f]="PASS ($(grep -o 'returned timeout.*after [0-9]* ms' "$OUT/test_fault_$f.log" | head -1))"
    fi
  done
  run_test hetero_gpu_cpu 50 -- -n 3 -- "$T" --devices cuda:0,cuda:1,cpu
  run_test split_gpus 50 FLAGOS_COMM_SPLIT=2 FLAGOS_COMM_CHUNK_BYTES=65536 -- -n 2 -- "$T"
else
  RESULT[hetero_gpu_cpu]="SKIPPED (no mpirun: CPU ranks need Open MPI)"
  RESULT[split_gpus]="SKIPPED (no mpirun: the leaders talk over Open MPI)"
fi
bench_pair allgather 30
bench_pair reducescatter 30

# Rows of a bench table (rank 0's lines without '#'): size busbw_out_of_place busbw_in_place.
rows() { sed 's/^\[rank 0\] //' "$1" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && NF >= 13 {print $1, $8, $12}'; }
table() {  # op
  local op=$1
  [ -s "$OUT/bench_flagos_$op.log" ] || return 0
  echo
  echo "== $op: busbw (GB/s), 2 ranks, flagos (NCCL adaptor) vs NCCL direct; ratio = flagos / direct"
  printf "%14s %12s %12s %12s %12s %9s %9s\n" bytes flagos_oop direct_oop flagos_ip direct_ip ratio_oop ratio_ip
  join <(rows "$OUT/bench_flagos_$op.log" | sort -k1,1) <(rows "$OUT/bench_direct_$op.log" | sort -k1,1) | sort -n |
    awk '{fo = $2; fi = $3; do_ = $4; di = $5;  # join: size, flagos oop, flagos ip, direct oop, direct ip
          ro = (do_ > 0) ? fo / do_ : 0; ri = (di > 0) ? fi / di : 0;
          printf "%14d %12.2f %12.2f %12.2f %12.2f %9.3f %9.3f\n", $1, fo, do_, fi, di, ro, ri;
          if ($1 >= 67108864) {so += fo; sd += do_; si += fi; sj += di; k++}}
          END {if (k) printf "%14s %12.2f %12.2f %12.2f %12.2f %9.3f %9.3f   (mean over sizes >= 64 MiB)\n",
                             ">=64MiB", so/k, sd/k, si/k, sj/k, (sd ? so/sd : 0), (sj ? si/sj : 0)}'
}
{
  echo
  echo "================ flagos comm on GPUs: results ($(date), ${SECONDS}s) ================"
  grep -m1 "NCCL adaptor with" "$OUT/configure.log"
  sed -n 's/^\[rank 0\] rank 0: //p' "$OUT/test_nccl.log" 2>/dev/null | head -1
  for op in allreduce allgather reducescatter; do table $op; done
  trows() { sed 's/^\[rank 0\] //' "$1" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && NF >= 13 && $1 <= 65536 {print $1, $6, $10}'; }
  for v in "" _polled; do
    [ -s "$OUT/bench_flagos_allreduce$v.log" ] || continue
    echo
    echo "== all-reduce latency (us), sizes <= 64 KiB: flagos${v:+ (FLAGOS_COMM_NCCL_BLOCKING=0)} vs NCCL direct, out of place / in place"
    printf "%10s %12s %12s %12s %12s %10s %10s\n" bytes flagos_oop direct_oop flagos_ip direct_ip extra_oop extra_ip
    join <(trows "$OUT/bench_flagos_allreduce$v.log" | sort -k1,1) <(trows "$OUT/bench_direct_allreduce.log" | sort -k1,1) |
      sort -n | awk '{printf "%10d %12.2f %12.2f %12.2f %12.2f %10.2f %10.2f\n", $1, $2, $4, $3, $5, $2 - $4, $3 - $5}'
  done
  if [ -s "$OUT/bench_flagos_allreduce_polled.log" ]; then
    echo
    echo "== all-reduce busbw >= 1 MiB with FLAGOS_COMM_NCCL_BLOCKING=0 vs NCCL direct"
    join <(rows "$OUT/bench_flagos_allreduce_polled.log" | sort -k1,1) <(rows "$OUT/bench_direct_allreduce.log" | sort -k1,1) |
      sort -n | awk '$1 >= 1048576 {printf "%14d %10.2f %10.2f %10.2f %10.2f %8.3f %8.3f\n", $1, $2, $4, $3, $5, ($4 ? $2/$4 : 0), ($5 ? $3/$5 : 0)}'
  fi
  if [ -s "$OUT/bench_hetero_on.log" ]; then
    echo
    echo "== heterogeneous all-reduce (2 GPUs forced into 2 clusters, host staging): in-place busbw GB/s"
    printf "%14s %14s %14s %8s\n" bytes pipelined unpipelined speedup
    join <(rows "$OUT/bench_hetero_on.log" | sort -k1,1) <(rows "$OUT/bench_hetero_off.log" | sort -k1,1) | sort -n |
      awk '{printf "%14d %14.2f %14.2f %8.2f\n", $1, $3, $5, ($5 > 0 ? $3 / $5 : 0)}'
    echo "== where the time goes (FLAGOS_COMM_STAGE_TIMES, rank 0 = leader of cluster 0, per call; busy = time the"
    echo "   stage had work running; intra = the NCCL steps inside the cluster, to_host/to_device = copies, inter ="
    echo "   the leaders' host all-reduce over Open MPI)"
    for p in on off; do
      grep -h "stage times (rank 0" "$OUT/bench_hetero_$p.log" 2>/dev/null | grep -E "AllReduce [0-9]{8,}" |
        sed "s/^.*flagosAllReduce/  $p: /; s/ B\/rank//"
    done
  fi
  if [ -s "$OUT/bench_host.log" ]; then
    echo
    echo "== host adaptor all-reduce alone (2 CPU ranks, Open MPI): time us / busbw GB/s, out of place | in place"
    sed 's/^\[rank 0\] //' "$OUT/bench_host.log" | awk '$1 ~ /^[0-9]+$/ && NF >= 13 {printf "%14d %12.1f %8.2f | %12.1f %8.2f\n", $1, $6, $8, $10, $12}'
  fi
  echo
  echo "== tests"
  for k in nccl nccl_polled hetero_gpu_cpu split_gpus fault_first fault_queued; do printf "%-16s %s\n" "$k" "${RESULT[$k]:-not run}"; done
  grep -h "FAULT-OK\|FAIL fault" "$OUT"/test_fault_*.log 2>/dev/null | sed 's/^/  /'
  echo "(logs: $OUT)"
} | tee "$OUT/table.txt"
if [ "${PACK:-0}" = 1 ]; then
  (cd "$OUT" && tar -czf logs.tar.gz --exclude=logs.tar.gz --exclude=table.txt ./* && find . -maxdepth 1 -type f \
     ! -name logs.tar.gz ! -name table.txt -delete)
fi
