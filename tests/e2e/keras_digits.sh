#!/usr/bin/env bash
# keras_digits.sh MPIFIT WORK_DIR KERAS_DIR MPIEXEC [MPIEXEC_FLAGS...]: the
# digits-style Keras CNN (tests/data/keras/digits_cnn_k2.json with Dense(10))
# named by [model] keras learns 2,000 rendered digits (launch/make_digits.py)
# under mpiexec -n 2: validation accuracy >= 0.85 after 8 epochs (0.916 when
# this test was written; the same network in PyTorch on 6,000 of them:
# launch/digits.sh). Then predict, from weights.h5 alone, names the right
# digit for most validation images of one class.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpifit=$1 work=$2 keras=$3 mpiexec=$4
shift 4
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$work" && mkdir -p "$work"
/usr/bin/python3 "$root/launch/make_digits.py" "$work/data" --train 200 --validation 50 --seed 3
sed 's/"units": 3,/"units": 10,/' "$keras/digits_cnn_k2.json" > "$work/digits10.json"
expect_grep '"units": 10,' "$work/digits10.json"
cat > "$work/job.ini" <<INI
[model]
keras = $work/digits10.json
[data]
train = $work/data/train
validation = $work/data/validation
batch_size = 16
augment = false
threads = 1
[optimizer]
name = adam
learning_rate = 0.001
[train]
epochs = 8
seed = 1
verbose = 2
[output]
dir = $work/run
INI
"$mpiexec" "$@" "$mpifit" train "$work/job.ini" --set dist.threads=1 | tee "$work/train.log"
expect_grep 'trained 8 epochs on 2 ranks' "$work/train.log"
acc=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_accuracy") c = i; next } { v = $c } END { print v }' \
  "$work/run/history.csv")
echo "val_accuracy after 8 epochs: $acc"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.85) }' || fail "the digits CNN reached val_accuracy $acc < 0.85"
# predict from weights.h5 alone: the class names are the digit folders
"$mpifit" predict --weights "$work/run/weights.h5" "$work"/data/validation/7/*.jpg > "$work/pred7.txt"
right=$(awk -F'\t' '$2 == "7"' "$work/pred7.txt" | wc -l)
echo "predict: $right of 50 validation sevens named 7"
[ "$right" -ge 35 ] || fail "predict named only $right of 50 sevens 7"
echo "keras_digits: OK"
