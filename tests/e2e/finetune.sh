#!/usr/bin/env bash
# finetune.sh MPIEXEC "MPIEXEC_PREFLAGS" MPIFIT DATA_DIR WORK_DIR: the two-phase
# transfer-learning run ([finetune]) end to end.
#  1. one run: the head over a frozen base, then fine-tuning from conv2d_1
#     (BatchNorm frozen): the switch happens at epoch 3 with the right
#     trainable count, and history / metrics run on across both phases;
#  2. killed in a checkpoint right after the switch, and in one mid-phase-2:
#     each resumed run ends bit-identical to the uninterrupted one;
#  3. two ranks: the switch re-plans the gradient buckets on both, the
#     parameters stay identical every step (check_identical);
#  4. a misspelt layer stops the run before its first step.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
ini=$work/job.ini
cat > "$ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0.2
freeze_base = true
[data]
train = $data/train
validation = $data/validation
batch_size = 8
threads = 1
[optimizer]
name = adam
learning_rate = 0.003
[train]
epochs = 2
verbose = 2
[finetune]
epochs = 2
learning_rate = 0.001
trainable_from = conv2d_1
schedule = cosine
[output]
checkpoint_every = 4
keep = 0
metrics_flush_steps = 3
INI

echo "== 1. frozen base, then fine-tuning, in one run"
"$mpifit" train "$ini" --set output.dir="$work/full" > "$work/full.log" 2>&1
cat "$work/full.log"
expect_grep '^then fine-tuning: 2 epochs from layer conv2d_1, learning rate 0.001 (cosine)' "$work/full.log"
expect_grep '^Epoch 4/4$' "$work/full.log"
# conv2d_1 + conv2d_2 + dense, their BatchNorm layers left frozen: 4608 + 18432 + 195
expect_grep 'Epoch 3: fine-tuning from layer conv2d_1: 23235 trainable parameters, learning rate 0.001$' "$work/full.log"
test "$(grep -c 'fine-tuning from layer' "$work/full.log")" -eq 1 || fail "the switch was logged more than once"
test "$(wc -l < "$work/full/history.csv")" -eq 5 || fail "history.csv should have a header and 4 epochs"
h5dump -d /epoch/epoch "$work/full/metrics.h5" > "$work/epochs.txt"
expect_grep '(0): 0, 1, 2, 3$' "$work/epochs.txt"
# the head alone trained in phase one, everything but BatchNorm in phase two:
# conv2d (before conv2d_1) is as initialised; conv2d_1 moved
"$mpifit" train "$ini" --set output.dir="$work/zero" --set train.epochs=1 --set finetune.epochs=0 \
  --set train.steps_per_epoch=1 > "$work/zero.log" 2>&1
expect_same_h5 "$work/full/weights.h5" "$work/zero/weights.h5" /conv2d /batch_normalization_1
if h5diff -q "$work/full/weights.h5" "$work/zero/weights.h5" /conv2d_1 >/dev/null; then
  fail "conv2d_1 did not train in the fine-tuning phase"
fi

echo "== 2. resumed right after the switch and mid-phase-2: bit-identical"
# 6 steps an epoch, a checkpoint every 4 steps: #3 at step 12 (the switch, epoch 3
# step 0), #4 at step 16 (epoch 3 step 4, in phase two)
for k in 4 5; do
  set +e
  MF_FAULT_INJECT=kill_in_checkpoint:$k "$mpifit" train "$ini" --set output.dir="$work/cut$k" > "$work/cut$k.log" 2>&1
  rc=$?
  set -e
  expect_status 137 $rc "killed in checkpoint $k"
  "$mpifit" train "$ini" --set output.dir="$work/cut$k" --resume auto > "$work/resume$k.log" 2>&1
  cat "$work/resume$k.log"
  expect_same_h5 "$work/full/weights.h5" "$work/cut$k/weights.h5" /
  expect_same_h5 "$work/full/checkpoints/ckpt-0004-0000024.h5" "$work/cut$k/checkpoints/ckpt-0004-0000024.h5" \
    /optimizer/m /optimizer/v /model_weights /history
done
expect_grep 'resumed from .*ckpt-0002-0000012.h5: epoch 3, step 0 of it' "$work/resume4.log"
expect_grep 'Epoch 3: fine-tuning from layer conv2d_1: 23235 trainable parameters, learning rate 0.001$' "$work/resume4.log"
expect_grep 'resumed from .*ckpt-0002-0000016.h5: epoch 3, step 4 of it' "$work/resume5.log"
expect_grep 'fine-tuning from layer conv2d_1: 23235 trainable parameters, .* (resumed)' "$work/resume5.log"
echo "bit-identical after resuming in either phase"

echo "== 3. two ranks"
# shellcheck disable=SC2086
"$mpiexec" -n 2 $preflags "$mpifit" train "$ini" --set output.dir="$work/np2" --set dist.check_identical=true \
  --set data.batch_size=4 > "$work/np2.log" 2>&1 || { cat "$work/np2.log"; fail "the 2-rank run failed"; }
cat "$work/np2.log"
expect_grep 'trainable layers changed at global step 12: 23235 trainable parameters' "$work/np2.log"
expect_grep 'trained 4 epochs on 2 ranks' "$work/np2.log"

echo "== 4. a layer that does not exist"
set +e
"$mpifit" train "$ini" --set output.dir="$work/typo" --set finetune.trainable_from=conv2d_9 > "$work/typo.log" 2>&1
rc=$?
set -e
cat "$work/typo.log"
expect_status 1 $rc "a misspelt [finetune] trainable_from"
expect_grep "trainable_from = conv2d_9: model 'small_cnn' has no such layer" "$work/typo.log"
expect_no_grep '^Epoch 1/4' "$work/typo.log"
set +e
"$mpifit" train "$ini" --set output.dir="$work/both" --set model.trainable_from=conv2d_1 > "$work/both.log" 2>&1
rc=$?
set -e
expect_status 1 $rc "freeze_base and trainable_from together"
expect_grep 'freeze_base = true and trainable_from = conv2d_1 say different things' "$work/both.log"
echo "finetune: all checks passed"
