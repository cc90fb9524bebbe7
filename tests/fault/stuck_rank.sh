#!/usr/bin/env bash
# stuck_rank.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: a rank that stops
# (SIGSTOP: what a rank hung on NFS looks like) must not hang the job. With
# [dist] timeout = 5, the other rank's watchdog names the collective it waited
# in, holds a roll call that names rank 1 as the one that did not arrive, and
# ends the job: non-zero, within the timeout plus a few seconds.
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
timeout=5
rm -rf "$work" && mkdir -p "$work"
small_job "$work/job.ini" "$data" "$work/run" 1000
echo "timeout = $timeout" >> "$work/job.ini"  # under [dist], the last section
# shellcheck disable=SC2086
"$mpiexec" -n 2 $preflags "$mpifit" train "$work/job.ini" > "$work/run.log" 2>&1 &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true; [ -n "${victim:-}" ] && kill -CONT "$victim" 2>/dev/null; true' EXIT
# rank 1: the child of mpiexec whose environment says so; wait until it trains
victim=
for _ in $(seq 1 600); do
  if grep -q '^Epoch 2/' "$work/run.log" 2>/dev/null; then
    for p in $(pgrep -P $pid); do
      if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1\|PMI_RANK=1'; then victim=$p; fi
    done
    [ -n "$victim" ] && break
  fi
  kill -0 $pid 2>/dev/null || fail "the run ended before it could be stopped: $(tail -5 "$work/run.log")"
  sleep 0.1
done
[ -n "$victim" ] || fail "did not find rank 1 among mpiexec's children"
kill -STOP "$victim"
t0=$(date +%s)
set +e
for _ in $(seq 1 $((10 * (timeout + 30)))); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then fail "the job still runs $((timeout + 30)) s after rank 1 stopped: a hang"; fi
wait $pid; rc=$?
set -e
t=$(( $(date +%s) - t0 ))
tail -n 20 "$work/run.log"
echo "stuck_rank: rank 1 stopped; the job ended after $t s with status $rc"
[ "$rc" -ne 0 ] || fail "the job exited 0 with a stopped rank"
[ $t -le $((timeout + 15)) ] || fail "the job took $t s to end, more than the timeout ($timeout s) + 15 s"
expect_grep "watchdog: .* has not completed after $timeout s" "$work/run.log"
expect_grep 'at epoch [0-9]*, step [0-9]*\|validation after epoch' "$work/run.log"
# the roll call: rank 0 asked who is there, and names the one that said nothing
expect_grep 'rank 0/2\] watchdog: .*did not arrive: rank 1 (no word in' "$work/run.log"
echo "stuck_rank: the watchdog ended the job and named what it waited for"
