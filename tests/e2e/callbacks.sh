#!/usr/bin/env bash
# callbacks.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: `mpifit train` with a
# [callbacks] section and [train] class_weight on small_cnn.
#  1. one rank: ReduceLROnPlateau reduces (message, "lr" column of
#     history.csv), EarlyStopping stops at the epoch its trace dictates, and
#     restore_best_weights leaves weights.h5 equal to the best epoch's
#     checkpoint;
#  2. two ranks with the same global batch (2 x 4 = 1 x 8, sync BatchNorm, no
#     dropout or augmentation): the same learning rate every epoch and the same
#     stop, every rank identical after every step (dist.check_identical). The
#     validation set has 3 images, so rank 1's shard is only padding: it must
#     still see the global val_loss that ReduceLROnPlateau watches;
#  3. stopped after 2 epochs and resumed: the same rates, stop epoch and
#     final weights as the uninterrupted run;
#  4. config errors name FILE:LINE.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
# 3 validation images, one per class
for c in angular_leaf_spot bean_rust healthy; do
  mkdir -p "$work/val/$c"
  cp "$(find "$data/validation/$c" -name '*.jpg' | sort | head -1)" "$work/val/$c/"
done
cat > "$work/job.ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0
[data]
train = $data/train
validation = $work/val
batch_size = 8
augment = false
threads = 1
[optimizer]
learning_rate = 0.01
[train]
epochs = 8
verbose = 2
class_weight = bean_rust: 2
[callbacks]
reduce_lr_on_plateau = true
reduce_lr_monitor = val_loss
reduce_lr_patience = 1
reduce_lr_factor = 0.5
# the training loss never improves by 100: the stop is at epoch 5, the best is epoch 1
early_stopping = true
early_stopping_monitor = loss
early_stopping_min_delta = 100
early_stopping_patience = 4
early_stopping_restore_best_weights = true
[output]
keep = 0
[dist]
threads = 1
sync_batchnorm = true
check_identical = true
INI
lr_column() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "lr") c = i; next } { print $c }' "$1"; }

# 1. one rank
"$mpifit" train "$work/job.ini" --set output.dir="$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "1-rank run"; }
cat "$work/one.log"
expect_grep 'ReduceLROnPlateau reducing learning rate to' "$work/one.log"
expect_grep '^Epoch 5: early stopping (loss did not improve for 4 epochs; best [0-9.]* at epoch 1)$' "$work/one.log"
expect_grep '^Restoring model weights from the end of the best epoch: 1$' "$work/one.log"
expect_grep '^trained 5 epochs on 1 rank' "$work/one.log"
expect_no_grep 'not available' "$work/one.log"
lr_column "$work/one/history.csv" > "$work/one.lr"
[ "$(wc -l < "$work/one.lr")" -eq 5 ] || fail "history.csv has $(wc -l < "$work/one.lr") lr rows, expected 5"
[ "$(sort -u "$work/one.lr" | wc -l)" -gt 1 ] || fail "the learning rate never changed: $(tr '\n' ' ' < "$work/one.lr")"
# restore_best_weights: weights.h5 holds the weights of epoch 1's checkpoint
ck1=$(find "$work/one/checkpoints" -name 'ckpt-0001-*.h5')
"$mpifit" export "$ck1" "$work/epoch1.h5" > /dev/null
h5diff "$work/epoch1.h5" "$work/one/weights.h5" > "$work/h5diff.txt" || { cat "$work/h5diff.txt"; fail "weights.h5 is not epoch 1's weights"; }
ck5=$(find "$work/one/checkpoints" -name 'ckpt-0005-*.h5')
"$mpifit" export "$ck5" "$work/epoch5.h5" > /dev/null
if h5diff -q "$work/epoch5.h5" "$work/one/weights.h5" > /dev/null; then fail "epoch 5 ends with epoch 1's weights: nothing was restored"; fi

# 2. two ranks, the same global batch
# shellcheck disable=SC2086
"$mpiexec" -n 2 $preflags "$mpifit" train "$work/job.ini" --set output.dir="$work/two" --set data.batch_size=4 \
  > "$work/two.log" 2>&1 || { cat "$work/two.log"; fail "2-rank run"; }
cat "$work/two.log"
expect_grep '6 steps/epoch of 4 x 2 images' "$work/two.log"
expect_grep 'Epoch 5: early stopping' "$work/two.log"
expect_grep '^trained 5 epochs on 2 ranks' "$work/two.log"
expect_no_grep 'not available' "$work/two.log"
lr_column "$work/two/history.csv" > "$work/two.lr"
diff "$work/one.lr" "$work/two.lr" || fail "2 ranks took other learning-rate decisions than 1 rank"
# (under MPI rank 0's messages carry a "[mpifit rank 0/2] " prefix)
grep 'ReduceLROnPlateau' "$work/one.log" > "$work/one.msg"
grep 'ReduceLROnPlateau' "$work/two.log" | sed 's/^\[mpifit rank 0\/2\] //' > "$work/two.msg"
diff "$work/one.msg" "$work/two.msg" || fail "2 ranks reduced at other epochs than 1 rank"

# 3. interrupted after 2 epochs, resumed: as if never interrupted
"$mpifit" train "$work/job.ini" --set output.dir="$work/res" --set train.epochs=2 > "$work/res1.log" 2>&1 \
  || { cat "$work/res1.log"; fail "first part"; }
"$mpifit" train "$work/job.ini" --set output.dir="$work/res" --resume auto > "$work/res2.log" 2>&1 \
  || { cat "$work/res2.log"; fail "resumed part"; }
cat "$work/res2.log"
expect_grep '^resumed from .*ckpt-0002-' "$work/res2.log"
expect_grep '^Epoch 5: early stopping' "$work/res2.log"
lr_column "$work/res/history.csv" > "$work/res.lr"
diff "$work/one.lr" "$work/res.lr" || fail "the resumed run took other learning-rate decisions"
h5diff "$work/one/weights.h5" "$work/res/weights.h5" > "$work/h5diff.txt" \
  || { cat "$work/h5diff.txt"; fail "the resumed run ends with other weights"; }
# resumed once more from the stop epoch's checkpoint: nothing more to train
"$mpifit" train "$work/job.ini" --set output.dir="$work/res" --resume auto > "$work/res3.log" 2>&1 \
  || { cat "$work/res3.log"; fail "resume after the stop"; }
expect_grep 'stopped by a callback at the end of epoch 5' "$work/res3.log"
h5diff "$work/one/weights.h5" "$work/res/weights.h5" > /dev/null || fail "resuming a stopped run changed weights.h5"

# 4. config errors name FILE:LINE
set +e
printf '[callbacks]\nreduce_lr_on_plateau = true\nreduce_lr_factor = 1\n' > "$work/bad1.ini"
"$mpifit" train "$work/bad1.ini" --set data.train="$data/train" > "$work/bad1.log" 2>&1; rc=$?
set -e
cat "$work/bad1.log"
expect_status 1 $rc "reduce_lr_factor = 1"
expect_grep 'bad1.ini:3: \[callbacks\] reduce_lr_factor must be < 1' "$work/bad1.log"
set +e
"$mpifit" train "$work/job.ini" --set output.dir="$work/bad2" --set 'train.class_weight=bean_rusty: 2' \
  > "$work/bad2.log" 2>&1; rc=$?
set -e
cat "$work/bad2.log"
expect_status 1 $rc "class_weight naming a class the data does not have"
expect_grep "names class 'bean_rusty', which the data does not have; classes: angular_leaf_spot, bean_rust, healthy" \
  "$work/bad2.log"
echo "callbacks: ReduceLROnPlateau and EarlyStopping decide alike on 1 and 2 ranks and across a resume"
