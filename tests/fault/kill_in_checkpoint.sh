#!/usr/bin/env bash
# kill_in_checkpoint.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: one training
# run, killed again and again while it writes checkpoints: 20 times half-way
# through the write of a randomly chosen checkpoint (rank 0, the writer, gets
# SIGKILL), then 5 times at a random moment (last: on an idle machine a run
# may finish the job before its random kill, which must not leave too few
# kills in checkpoint writes). After every kill `--resume auto`
# must start from a valid checkpoint (the killed write leaves only a .tmp), and
# the run that finally completes must end with the weights of a run that was
# never interrupted, bit for bit.
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
for run in full cut; do
  small_job "$work/$run.ini" "$data" "$work/$run" 80 none
  sed -i 's/^\[output\]$/[output]\ncheckpoint_every = 1\nkeep = 2/' "$work/$run.ini"
  echo "timeout = 120" >> "$work/$run.ini"
done
np2 "$work/full.log" 300 -- "$mpifit" train "$work/full.ini"
expect_status 0 $rc "the uninterrupted run"
RANDOM=11   # the same sequence on every run of the test
resumed=0
for i in $(seq 1 25); do
  if [ "$i" -le 20 ]; then
    n=$(( RANDOM % 3 + 1 ))
    np2 "$work/kill_$i.log" 120 MF_FAULT_INJECT=kill_in_checkpoint:$n:0 -- "$mpifit" train "$work/cut.ini" --resume auto
    how="half-way through its checkpoint #$n"
  else
    # a random moment: kill rank 0 (the writer) 0.3 to 1 s after it started
    ( p=""; for _ in $(seq 1 100); do
        p=$(rank_pid "mpifit train $work/cut.ini" 0 "MF_TEST_RUN=$i")
        [ -n "$p" ] && break; sleep 0.05; done
      sleep "0.$(( RANDOM % 7 + 3 ))"; [ -n "$p" ] && kill -KILL "$p" 2>/dev/null ) &
    # (MF_TEST_RUN marks this run's processes: the last run's may still be exiting)
    np2 "$work/kill_$i.log" 120 MF_TEST_RUN=$i -- "$mpifit" train "$work/cut.ini" --resume auto
    wait
    how="at a random moment"
  fi
  [ "$rc" -ne 124 ] || fail "run $i hung: $(tail -n 5 "$work/kill_$i.log")"
  grep -q 'resumed from' "$work/kill_$i.log" && resumed=$((resumed + 1))
  if grep -q 'skipping checkpoint' "$work/kill_$i.log"; then
    fail "run $i found a damaged checkpoint: $(grep 'skipping checkpoint' "$work/kill_$i.log")"
  fi
  if [ "$rc" -eq 0 ]; then echo "run $i completed before its kill"; break; fi
  echo "run $i: killed $how (status $rc); $(ls "$work/cut/checkpoints" | tr '\n' ' ')"
done
[ "$resumed" -ge 15 ] || fail "only $resumed of the runs resumed from a checkpoint (see $work/kill_*.log)"
np2 "$work/final.log" 300 -- "$mpifit" train "$work/cut.ini" --resume auto
expect_status 0 $rc "the final --resume auto"
expect_no_grep 'skipping checkpoint' "$work/final.log"
expect_same_h5 "$work/full/weights.h5" "$work/cut/weights.h5" /
echo "kill_in_checkpoint: $resumed resumes after kills in checkpoint writes, never a damaged checkpoint; final weights equal the uninterrupted run's"
