#!/usr/bin/env bash
# beans_finetune_short.sh MPIFIT SHARED_DIR WORK_DIR: a shortened beans
# fine-tune on the real photos and ImageNet weights (128 px, a few hundred
# images per phase), asserting a validation accuracy that only a correct
# pipeline reaches in that budget: decoding, resizing and normalisation as
# Keras', the weights in the right layers, BatchNorm in inference mode where
# frozen, the switch to fine-tuning. Measured: 0.857 with ImageNet weights
# (0.79 without the warm-up); from random weights (model.weights=none) 0.331,
# chance. The bar, 0.75, sits between.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpifit=$1 shared=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
if [ ! -d "$shared/data/beans/train" ]; then
  fail "$shared/data/beans is missing (the test data beside the checkout, see ../shared/README.md)"
fi
ini=$work/job.ini
cat > "$ini" <<INI
[model]
arch = mobilenet_v2
alpha = 1.0
input_size = 128
dropout = 0.2
weights = $shared/data/weights/mobilenet_v2_1.0_no_top_converted_from_tfslim.h5
freeze_base = true
[data]
train = $shared/data/beans/train
validation = $shared/data/beans/validation
batch_size = 32
crop_scale_min = 0.8
[optimizer]
learning_rate = 0.002
[train]
epochs = 2
steps_per_epoch = 10
verbose = 2
[finetune]
epochs = 2
learning_rate = 0.0001
trainable_from = block_13_expand
# a fresh Adam moves every newly trainable weight by ~lr at its first steps:
# ramp up over the phase's first epoch
warmup_epochs = 1
[output]
dir = $work/run
INI
start=$(date +%s)
"$mpifit" train "$ini" > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "training failed"; }
cat "$work/train.log"
echo "took $(( $(date +%s) - start )) s"
expect_grep 'Epoch 3: fine-tuning from layer block_13_expand' "$work/train.log"
acc=$(sed -n 's/^trained 4 epochs on 1 rank:.* val_accuracy=\([0-9.]*\).*/\1/p' "$work/train.log")
[ -n "$acc" ] || fail "no final val_accuracy in the log"
echo "final val_accuracy $acc (must be >= 0.75)"
awk -v a="$acc" -v m="0.75" 'BEGIN { exit !(a >= m) }' || fail "val_accuracy $acc < 0.75"
