#!/usr/bin/env bash
# kill_allreduce.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: rank 1 is killed
# (SIGKILL) in the middle of a gradient allreduce. The job must end non-zero
# within 30 s; `--resume auto` must then finish the run, and its final weights
# must equal those of a 2-rank run that was never interrupted, bit for bit.
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
jobs 3 'checkpoint_every = 4\nkeep = 0' full cut
np2 "$work/full.log" 300 -- "$mpifit" train "$work/full.ini"
expect_status 0 $rc "the uninterrupted run"
# rank 1 dies in its 10th gradient allreduce (epoch 2 of 3; 6 steps per epoch)
np2 "$work/cut.log" 120 MF_FAULT_INJECT=kill_in_allreduce:10:1 -- "$mpifit" train "$work/cut.ini"
tail -n 5 "$work/cut.log"
echo "kill_allreduce: rank 1 killed; the job ended after $took s with status $rc"
[ "$rc" -ne 0 ] || fail "the job exited 0 after rank 1 was killed"
[ "$rc" -ne 124 ] || fail "the job had to be killed by the test: a hang"
[ "$took" -le 30 ] || fail "the job took $took s to end after rank 1 died (limit 30 s)"
expect_no_grep 'Epoch 3/3' "$work/cut.log"
np2 "$work/resume.log" 300 -- "$mpifit" train "$work/cut.ini" --resume auto
cat "$work/resume.log" | grep -v '^Epoch\|step' | head -20
expect_status 0 $rc "--resume auto after the kill"
expect_grep 'resumed from .*ckpt-0001-0000008.h5' "$work/resume.log"
expect_same_h5 "$work/full/weights.h5" "$work/cut/weights.h5" /
echo "kill_allreduce: the resumed run's weights equal the uninterrupted run's, bit for bit"
