#!/usr/bin/env bash
# deterministic.sh MPIFIT DATA WORK MPIEXEC NUMPROC_FLAG [PREFLAGS...]: [dist]
# deterministic = true gives bit-identical training at any rank and thread
# count (docs/deterministic.md):
#  1. small_cnn (BatchNorm, dropout 0.3, augmentation on), global batch 24 in
#     chunks of 2, 2 epochs: 1 rank, 2 ranks, 3 ranks, 4 ranks (oversubscribed)
#     and 1 rank with 2 threads end with the same weights.h5, the same last
#     checkpoint (weights, BatchNorm statistics, optimizer state) and the same
#     history.csv (losses and accuracies, validation too), bit for bit;
#  2. resume across rank counts: 2 ranks for one epoch, resumed at 3 ranks for
#     the second, ends identical to the uninterrupted runs;
#  3. the default mode is not this mode: 1 and 2 ranks differ there (ghost
#     BatchNorm and fixed-point sums are not the default's); its 2-rank run's
#     metrics.h5 has every rank's step split (compute, allreduce wait, data
#     wait, optimizer per step), and [output] trace writes each rank's
#     timeline.
set -euo pipefail
. "$(dirname "$0")/assert.sh"
mpifit=$1 data=$2 work=$3 mpiexec=$4 npflag=$5
shift 5
pre=("$@")
rm -rf "$work" && mkdir -p "$work"
cat > "$work/job.ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0.3
[data]
train = $data/train
validation = $data/validation
batch_size = 24
augment = true
threads = 1
[optimizer]
name = adam
learning_rate = 0.01
[train]
epochs = 2
seed = 11
verbose = 0
[dist]
deterministic = true
chunk = 2
threads = 1
[output]
dir = $work/r1
INI
G=24
run() {  # run NAME RANKS THREADS [--set ...]: train NAME on RANKS ranks, global batch G
  local name=$1 np=$2 th=$3
  shift 3
  local sets=(--set "data.batch_size=$((G / np))" --set "dist.threads=$th" --set "output.dir=$work/$name" "$@")
  OMP_NUM_THREADS=$th "$mpiexec" "$npflag" "$np" "${pre[@]}" -x OMP_NUM_THREADS="$th" \
    "$mpifit" train "$work/job.ini" "${sets[@]}" > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; fail "train $name"; }
}
last_ckpt() { ls "$work/$1"/checkpoints/ckpt-*.h5 | tail -n 1; }
same_run() {  # same_run A B: weights.h5, the last checkpoint's state and history.csv bit for bit
  expect_same_h5 "$work/$1/weights.h5" "$work/$2/weights.h5" /
  expect_same_h5 "$(last_ckpt "$1")" "$(last_ckpt "$2")" /model_weights /optimizer
  cmp -s "$work/$1/history.csv" "$work/$2/history.csv" ||
    { diff "$work/$1/history.csv" "$work/$2/history.csv" || true; fail "history.csv of $1 and $2 differ"; }
  echo "  $2 = $1"
}

echo "== 1. 1, 2, 3, 4 ranks; 2 threads"
run r1 1 1
cat "$work/r1/history.csv"
expect_grep 'deterministic' "$work/r1.log"
for np in 2 3 4; do
  run "r$np" "$np" 1
  same_run r1 "r$np"
done
run r1t2 1 2
same_run r1 r1t2

echo "== 2. resume at another rank count: 2 ranks for epoch 1, 3 for epoch 2"
run part 2 1 --set train.epochs=1
mv "$work/part" "$work/resumed"
run resumed 3 1 --resume auto
expect_grep 'resum' "$work/resumed.log"
same_run r1 resumed

echo "== 3. the default mode: ranks change the result there"
run d1 1 1 --set dist.deterministic=false
run d2 2 1 --set dist.deterministic=false --set output.trace=true
if h5diff -q "$work/d1/weights.h5" "$work/d2/weights.h5" > /dev/null 2>&1; then
  fail "default mode: 1 and 2 ranks gave identical weights (is deterministic mode on by default?)"
fi
# (the default-mode 2-rank run also shows metrics.h5's per-rank step split)
/usr/bin/python3 - "$work/d2/metrics.h5" <<'PY' || fail "metrics.h5 lacks the per-rank step split"
import math, sys
import h5py
s = h5py.File(sys.argv[1], "r")["step"]
n = len(s["global_step"])
assert n > 0
for r in (0, 1):
    for k in ("compute", "comm_wait", "data_wait", "optimizer"):
        d = s["%s_r%d" % (k, r)]
        assert len(d) == n, (d.name, len(d), n)
        assert d.attrs["units"] in (b"s", "s"), d.attrs["units"]
        assert all(math.isfinite(v) and v >= 0 for v in d[:]), d.name
# rank 0's parts add up to its step time (compute is the rest)
for i in range(n):
    parts = s["compute_r0"][i] + s["comm_wait_r0"][i] + s["optimizer_r0"][i]
    assert abs(parts - s["step_time"][i]) <= 1e-9 + 1e-6 * s["step_time"][i], (i, parts, s["step_time"][i])
print("metrics.h5: per-rank step split of", n, "steps")
PY
# ... and its timeline: one Chrome trace per rank that parses, with every kind of span
/usr/bin/python3 - "$work/d2" <<'PY' || fail "the [output] trace timelines are wrong"
import json, sys
for r in (0, 1):
    t = json.load(open("%s/trace-rank%d.json" % (sys.argv[1], r)))
    spans = [e for e in t["traceEvents"] if e["ph"] == "X"]
    assert all(e["pid"] == r and e["ts"] >= 0 and e["dur"] >= 0 for e in spans), r
    cats = {e["cat"] for e in spans}
    assert {"forward", "backward", "allreduce", "data", "step", "checkpoint"} <= cats, (r, cats)
    assert any(e["cat"] == "forward" and e["name"] == "conv2d" for e in spans), r
    assert any(e["cat"] == "allreduce" and e["tid"] == 1 for e in spans), r
    assert t["otherData"]["spans_dropped"] == 0
    print("trace-rank%d.json: %d spans" % (r, len(spans)))
PY
echo "deterministic.sh: all checks passed"
