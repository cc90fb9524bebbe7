#!/usr/bin/env bash
# nan_loss.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: rank 1's loss turns NaN
# in the middle of training (a diverged step). Its gradient poisons the
# allreduce, every rank finds the average non-finite before the optimizer
# touches a weight, and all stop with that message (non-zero: a diverged run
# failed). No checkpoint is written after it; the last good one stays, and
# `--resume auto` from it (with the fault gone) ends with the weights of a run
# that never diverged, bit for bit.
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
jobs 3 'checkpoint_every = 2\nkeep = 0' full nan
np2 "$work/full.log" 300 -- "$mpifit" train "$work/full.ini"
expect_status 0 $rc "the uninterrupted run"
# rank 1's 9th train step: global step 8 -> 9, in epoch 2
np2 "$work/nan.log" 120 MF_FAULT_INJECT=nan_loss:9:1 -- "$mpifit" train "$work/nan.ini"
tail -n 3 "$work/nan.log"
echo "nan_loss: the job ended after $took s with status $rc"
expect_status 1 $rc "a NaN loss on rank 1"
[ "$took" -le 60 ] || fail "took $took s"
expect_grep 'step 8: a gradient is NaN or infinite' "$work/nan.log"
expect_no_grep watchdog "$work/nan.log"
ls "$work/nan/checkpoints" > "$work/ls.txt"
cat "$work/ls.txt"
expect_no_grep tmp "$work/ls.txt"
newest=$(tail -n 1 "$work/ls.txt")
[ "$newest" = ckpt-0001-0000008.h5 ] || fail "the newest checkpoint is $newest, expected the one of step 8"
"$mpifit" inspect "$work/nan/checkpoints/$newest" > "$work/inspect.txt"
expect_grep complete "$work/inspect.txt"
np2 "$work/resume.log" 300 -- "$mpifit" train "$work/nan.ini" --resume auto
expect_status 0 $rc "--resume auto after the NaN"
expect_grep "resumed from .*$newest" "$work/resume.log"
expect_same_h5 "$work/full/weights.h5" "$work/nan/weights.h5" /
echo "nan_loss: every rank stopped at the NaN, the last good checkpoint stayed, and resuming from it ends like a run that never diverged"
