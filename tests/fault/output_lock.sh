#!/usr/bin/env bash
# output_lock.sh MPIFIT DATA_DIR WORK_DIR: a second run on an output directory
# in use fails at its start, naming the lock, and leaves the first run alone.
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpifit=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
small_job "$work/job.ini" "$data" "$work/run" 400 none
"$mpifit" train "$work/job.ini" > "$work/first.log" 2>&1 &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 400); do grep -q '^Epoch 2/' "$work/first.log" 2>/dev/null && break; sleep 0.05; done
expect_grep '^Epoch 2/' "$work/first.log"
set +e
"$mpifit" train "$work/job.ini" --set train.epochs=1 > "$work/second.log" 2>&1
rc=$?
set -e
cat "$work/second.log"
expect_status 1 $rc "a second run on the same output directory"
expect_grep "is in use by another run" "$work/second.log"
kill -0 $pid || fail "the first run died"
kill -TERM $pid; kill -CONT $pid 2>/dev/null || true
set +e; wait $pid; set -e
# the lock goes with the process: the directory can be used again
"$mpifit" train "$work/job.ini" --set train.epochs=1 > "$work/third.log" 2>&1 || fail "after the first run ended: $(tail -3 "$work/third.log")"
echo "output_lock: a second run was refused while the first ran, and accepted after"
