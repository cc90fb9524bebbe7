#!/usr/bin/env bash
# preempt_anywhere.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: SIGUSR1 (what
# Slurm sends before preempting) reaches rank 0 at awkward moments: during a
# validation batch, and half-way through writing the epoch-end checkpoint.
# Each time the job must write a checkpoint and exit 75 ([train] preempted_exit_status) within a bounded time,
# and `--resume auto` must finish the run with the weights of an uninterrupted
# run, bit for bit. Last, one preemption delivered twice at once (by mpiexec,
# which forwards SIGUSR1 to every rank, and directly to rank 0, as a scheduler
# signalling the whole step does): still one checkpoint and exit 75, not the
# immediate exit a second, different signal asks for.
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
jobs 3 'keep = 0' full
np2 "$work/full.log" 300 -- "$mpifit" train "$work/full.ini"
expect_status 0 $rc "the uninterrupted run"

for point in usr1_in_validation:1:0 usr1_in_checkpoint:1:0; do
  name=${point%%:*}
  jobs 3 'keep = 0' "$name"
  np2 "$work/$name.log" 60 MF_FAULT_INJECT=$point -- "$mpifit" train "$work/$name.ini"
  tail -n 2 "$work/$name.log"
  echo "preempt_anywhere: $name: exit $rc after $took s"
  expect_status 75 $rc "SIGUSR1 ($name): the preemption status"
  expect_grep '^preempted: .*signal 10.*checkpoint .*\.h5 written' "$work/$name.log"
  expect_no_grep 'Epoch 3/3' "$work/$name.log"
  [ "$took" -le 30 ] || fail "$name: the preempted job took $took s to end"
  np2 "$work/${name}_resume.log" 300 -- "$mpifit" train "$work/$name.ini" --resume auto
  expect_status 0 $rc "--resume auto after $name"
  expect_grep 'resumed from' "$work/${name}_resume.log"
  expect_same_h5 "$work/full/weights.h5" "$work/$name/weights.h5" /
  echo "preempt_anywhere: $name: checkpointed, resumed, the same weights as the uninterrupted run"
done

echo "== one preemption, delivered by mpiexec and directly to rank 0"
jobs 1000 'keep = 0' twice
np2_bg() { timeout -k 5 120 "$mpiexec" -n 2 $preflags "$mpifit" train "$work/twice.ini" > "$work/twice.log" 2>&1; }
np2_bg &
pid=$!
rank0=
for _ in $(seq 1 600); do
  if grep -q '^Epoch 2/' "$work/twice.log" 2>/dev/null; then
    rank0=$(rank_pid "mpifit train $work/twice.ini" 0)
    [ -n "$rank0" ] && break
  fi
  sleep 0.05
done
[ -n "$rank0" ] || fail "did not find rank 0 of the run"
launcher=$(pgrep -f "^$mpiexec -n 2 .*twice.ini" | head -1) || true
[ -n "$launcher" ] || launcher=$(pgrep -x -f ".*mpiexec -n 2 .*twice.ini" | head -1)
kill -USR1 "$launcher"; kill -USR1 "$rank0"
set +e; wait $pid; rc=$?; set -e
tail -n 3 "$work/twice.log"
expect_status 75 $rc "one preemption signalled twice"
expect_grep '^preempted: .*signal 10.*checkpoint .*\.h5 written' "$work/twice.log"
echo "preempt_anywhere: every preemption ended in a checkpoint and exit 75"
