#!/usr/bin/env bash
# preempt_mpi.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: a 2-rank run is read
# while it writes (h5dump -H and h5py on metrics.h5), then preempted with SIGUSR1
# (mpiexec forwards it to every rank): every rank finishes its step, rank 0
# writes a checkpoint, every rank exits [train] preempted_exit_status (set to 42
# here: the key is honoured) and so does mpiexec; --resume auto then finishes the run.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
cat > "$work/job.ini" <<INI
[model]
arch = small_cnn
input_size = 48
[data]
train = $data/train
validation = $data/validation
batch_size = 4
threads = 1
[train]
epochs = 300
verbose = 2
[output]
dir = $work/run
checkpoint_every = epoch
metrics_flush_steps = 2
[dist]
threads = 1
check_identical = true
INI
# shellcheck disable=SC2086
"$mpiexec" -n 2 $preflags "$mpifit" train "$work/job.ini" --set train.preempted_exit_status=42 > "$work/run.log" 2>&1 &
pid=$!
# read the metrics file while the run writes it: the writer closes it between
# flushes, and HDF5's file lock makes a reader wait rather than see half a write
seen=0
for _ in $(seq 1 400); do
  if h5dump -H "$work/run/metrics.h5" > "$work/h5dump.txt" 2>/dev/null && grep -q 'DATASET "loss"' "$work/h5dump.txt" \
     && grep -q 'GROUP "epoch"' "$work/h5dump.txt"; then seen=1; break; fi
  sleep 0.05
done
test $seen -eq 1 || { echo "h5dump never saw the series during the run"; kill -9 $pid; exit 1; }
kill -0 $pid   # still running
echo "h5dump -H during the run:"; grep -E 'GROUP|DATASET' "$work/h5dump.txt"
if python3 -c 'import h5py' 2>/dev/null; then
  for _ in $(seq 1 40); do
    python3 - "$work/run/metrics.h5" > "$work/h5py.txt" 2>/dev/null <<'PY' && break
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    print("h5py during the run: %d steps, last loss %.4f, %d epochs" % (
        len(f["step/loss"]), f["step/loss"][-1], len(f["epoch/loss"])))
PY
    sleep 0.05
  done
  cat "$work/h5py.txt"; grep -q 'h5py during the run' "$work/h5py.txt"
fi
kill -USR1 $pid
set +e; wait $pid; rc=$?; set -e
cat "$work/run.log" | tail -5
expect_status 42 $rc "preempted with [train] preempted_exit_status = 42"
grep -q '^preempted: rank 0: stopped by signal 10\|^preempted: stopped by signal 10' "$work/run.log"
ck=$(sed -n 's/.*checkpoint \(.*\.h5\) written.*/\1/p' "$work/run.log")
"$mpifit" inspect "$ck" > "$work/inspect.txt"; head -4 "$work/inspect.txt"
expect_grep complete "$work/inspect.txt"
expect_grep 'world size: 2 ranks' "$work/inspect.txt"
epochs=$(sed -n 's/^position: \([0-9]*\) epochs done.*/\1/p' "$work/inspect.txt")
# another world size: it continues (data re-sharded, dropout restarted) and says it is not bit for bit
cp -r "$work/run" "$work/one"
"$mpifit" train "$work/job.ini" --set output.dir="$work/one" --set train.epochs=$((epochs + 2)) --resume auto \
  > "$work/one.log" 2>&1
grep -q 'written by 2 ranks, this run has 1: .* not bit for bit' "$work/one.log"
grep -q "trained $((epochs + 2)) epochs on 1 rank" "$work/one.log"
# shellcheck disable=SC2086
"$mpiexec" -n 2 $preflags "$mpifit" train "$work/job.ini" --set train.epochs=$((epochs + 2)) --resume auto \
  > "$work/resume.log" 2>&1
tail -3 "$work/resume.log"
grep -q "trained $((epochs + 2)) epochs on 2 ranks" "$work/resume.log"
echo "preempt_mpi: read during the run, preempted by SIGUSR1 on 2 ranks, resumed"
