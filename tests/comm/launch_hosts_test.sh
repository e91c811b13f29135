#!/usr/bin/env bash
# `flagos launch --hosts`: bad host lists give clear errors; local entries start locally (through
# mpirun, with the comm suite); remote entries start through ssh (a stand-in that runs the command
# here), get the rendezvous address of this host, report their failures by host, and stop when the
# launcher stops the job. Usage: launch_hosts_test.sh FLAGOS COMM_TEST
set -u
FLAGOS=$1
COMM_TEST=$2
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/flagos-hosts-test-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

expect_error() {  # needle, launch args...
  local needle=$1
  shift
  local out
  out=$("$FLAGOS" launch "$@" -- true 2>&1)
  local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$needle" <<< "$out"; then ok; else bad "launch $* -> rc $rc, '$out' lacks '$needle'"; fi
}
expect_error "has an empty entry" --hosts ,
expect_error "slots '' must be a number" --hosts node1:
expect_error "has no host name" --hosts :4
expect_error "slots '0' must be a number in 1..1024" --hosts node1:0
expect_error "is not a host name" --hosts "no de:2"
expect_error "names 'a' twice" --hosts a:1,a:2
expect_error "-n 5 exceeds the 4 slots" -n 5 --hosts localhost:2,127.0.0.1:2
expect_error "unknown option" --hostz a:1

# Local entries: the comm suite over mpirun (-n taken from the slots; this host's name goes to
# mpirun --host).
out=$(timeout 120 "$FLAGOS" launch --hosts "$(hostname):2" -- "$COMM_TEST" 2>&1)
if [ "$(grep -c ' 0 failed' <<< "$out")" = 2 ]; then ok; else bad "suite on --hosts $(hostname):2: $(tail -5 <<< "$out")"; fi

# Remote entries through the stand-in ssh (no mpirun: the runners start directly).
export FLAGOS_LAUNCH_SSH="$HERE/fake_ssh.sh"
export FAKE_SSH_LOG="$TMP/ssh.log"
out=$(timeout 60 "$FLAGOS" launch --no-mpi --hosts localhost:1,nodeA:2 -- \
      sh -c 'echo "hello $FLAGOS_RANK/$FLAGOS_WORLD_SIZE at $FLAGOS_COMM_ADDR"' 2>&1)
rc=$?
[ $rc -eq 0 ] && ok || bad "remote hello: rc $rc: $out"
for r in 0 1 2; do
  grep -q "^\[rank $r\] hello $r/3 at " <<< "$out" && ok || bad "remote hello: no line from rank $r in: $out"
done
if grep -q "at 127\.0\.0\.1:" <<< "$out"; then bad "remote ranks got a loopback rendezvous address: $out"; else ok; fi
[ "$(grep -c nodeA "$TMP/ssh.log")" = 2 ] && ok || bad "ssh log: $(cat "$TMP/ssh.log")"

# A remote rank fails: the launcher names it and its host, stops the local rank, exits with its code.
start=$(date +%s)
out=$(timeout 60 "$FLAGOS" launch --no-mpi --hosts localhost:1,nodeB:1 -- \
      sh -c 'if [ "$FLAGOS_RANK" = 1 ]; then exit 7; fi; exec sleep 41.25' 2>&1)
rc=$?
took=$(( $(date +%s) - start ))
[ $rc -eq 7 ] && ok || bad "remote failure: rc $rc (want 7): $out"
grep -q "rank 1 (on nodeB) exited with code 7" <<< "$out" && ok || bad "remote failure not named: $out"
[ $took -lt 20 ] && ok || bad "remote failure: took $took s"

# A local rank fails: the remote rank (whose ssh is killed) stops when its stdin closes.
out=$(timeout 60 "$FLAGOS" launch --no-mpi --hosts localhost:1,nodeC:1 -- \
      sh -c 'if [ "$FLAGOS_RANK" = 0 ]; then sleep 1; exit 5; fi; exec sleep 42.75' 2>&1)
rc=$?
[ $rc -eq 5 ] && ok || bad "local failure: rc $rc (want 5): $out"
sleep 4
if pgrep -f "sleep 42.75" > /dev/null || pgrep -f "sleep 41.25" > /dev/null; then
  bad "a remote rank outlived its job"
else
  ok
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
