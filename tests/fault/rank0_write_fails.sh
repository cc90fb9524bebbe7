#!/usr/bin/env bash
# rank0_write_fails.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: rank 0 alone
# writes weights.h5; when that fails (here: a directory is in the way), every
# rank must stop with rank 0's message at the next agreement, not wait for
# rank 0 in a collective (the watchdog is set far off, so it cannot be what
# ends the job).
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work/run/weights.h5"
small_job "$work/job.ini" "$data" "$work/run" 3
echo "timeout = 300" >> "$work/job.ini"  # under [dist], the last section
t0=$(date +%s)
set +e
# shellcheck disable=SC2086
timeout 120 "$mpiexec" -n 2 $preflags "$mpifit" train "$work/job.ini" > "$work/run.log" 2>&1
rc=$?
set -e
t=$(( $(date +%s) - t0 ))
tail -n 8 "$work/run.log"
echo "rank0_write_fails: the job ended after $t s with status $rc"
[ "$rc" -ne 124 ] || fail "the job had to be killed after 120 s: a hang"
expect_status 1 $rc "a failed weights.h5 on rank 0 stops every rank"
[ $t -le 60 ] || fail "it took $t s"
expect_grep 'rank 0: .*weights.h5' "$work/run.log"
expect_no_grep 'watchdog' "$work/run.log"
echo "rank0_write_fails: every rank stopped with rank 0's message"
