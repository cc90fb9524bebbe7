#!/usr/bin/env bash
# cli_train.sh MPIFIT DATA_DIR WORK_DIR: train, evaluate and predict through the
# CLI on a small synthetic dataset and check every documented output format.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpifit=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cat > "$work/job.ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0.1
[data]
train = $data/train
validation = $data/validation
batch_size = 8
threads = 2
[optimizer]
name = adam
learning_rate = 0.003
schedule = cosine
warmup_epochs = 0.5
[train]
epochs = 2
seed = 4
verbose = 1
[output]
dir = $work/run
INI
out=$("$mpifit" train "$work/job.ini")
echo "$out"
grep -q '^classes (3): 0=angular_leaf_spot 1=bean_rust 2=healthy$' <<<"$out"
grep -q '^Epoch 2/2$' <<<"$out"
grep -Eq '^6/6 - .* img/s - loss: [0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - val_accuracy: [0-9.]+$' <<<"$out"
# not a terminal: no carriage returns or escape sequences in the log
printf '%s\n' "$out" > "$work/train.log"
expect_no_grep $'[\r\033]' "$work/train.log"
expect_file "$work/run/weights.h5"
expect_file "$work/run/history.csv"
test "$(wc -l < "$work/run/history.csv")" -eq 3
h5dump -H "$work/run/weights.h5" > "$work/weights.txt"   # (no pipe: grep -q would SIGPIPE h5dump)
grep -q 'DATASET "kernel:0"' "$work/weights.txt"

ev=$("$mpifit" evaluate "$work/job.ini" --weights "$work/run/weights.h5")
echo "$ev"
tail -n 1 <<<"$ev" | grep -Eq '^loss=[0-9.e+-]+ accuracy=[0-9.e+-]+$'

pred=$("$mpifit" predict "$work/job.ini" --weights "$work/run/weights.h5" \
       "$data/validation/healthy/healthy_0000.jpg" "$data/validation/bean_rust/bean_rust_0000.jpg")
echo "$pred"
test "$(wc -l <<<"$pred")" -eq 2
awk -F'\t' 'NF != 5 || $2 !~ /^(angular_leaf_spot|bean_rust|healthy)$/ { exit 1 }
            { s = $3 + $4 + $5; if (s < 0.999 || s > 1.001) exit 1 }' <<<"$pred"

# a missing image: reported with its path, exit status 1, other images still printed
set +e
bad=$("$mpifit" predict "$work/job.ini" --weights "$work/run/weights.h5" "$work/nope.jpg" \
      "$data/validation/healthy/healthy_0000.jpg" 2>"$work/err.txt")
rc=$?
set -e
expect_status 1 $rc "predict with a missing image"
expect_grep 'nope.jpg' "$work/err.txt"
test "$(wc -l <<<"$bad")" -eq 1
echo "cli_train: train, evaluate and predict outputs as documented"
