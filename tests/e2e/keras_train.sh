#!/usr/bin/env bash
# keras_train.sh MPIFIT DATA_DIR WORK_DIR KERAS_DIR MPIEXEC [MPIEXEC_FLAGS...]:
# `mpifit summary` and `mpifit train` of Keras model descriptions named by
# [model] keras: the Keras parameter counts, a refusal naming file/layer/class/
# value, and training Keras-described CNNs (tests/data/keras/seq_k2.json, and
# the digits-style digits_cnn_k2/k3.json with Conv2D(relu), MaxPooling2D and
# Flatten; their output softmax folded into the loss) that lowers the loss,
# with 1 and 2 ranks.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpifit=$1 data=$2 work=$3 keras=$4 mpiexec=$5
shift 5
rm -rf "$work" && mkdir -p "$work"

job() {  # job NAME MODEL_FILE: a config training MODEL_FILE on the synthetic beans
  cat > "$work/$1.ini" <<INI
[model]
keras = $2
[data]
train = $data/train
validation = $data/validation
batch_size = 8
augment = false
threads = 1
[optimizer]
name = adam
learning_rate = 0.01
[train]
epochs = 6
seed = 2
verbose = 2
[output]
dir = $work/$1
INI
}

# summary: Keras' counts (hand-computed in tests/unit/test_keras_model.c)
job summary "$keras/func_residual_k3.json"
"$mpifit" summary "$work/summary.ini" > "$work/summary.txt"
cat "$work/summary.txt"
expect_grep '^Total params: 963$' "$work/summary.txt"
expect_grep '^Trainable params: 931$' "$work/summary.txt"
expect_grep '^Non-trainable params: 32$' "$work/summary.txt"
expect_grep "softmax of 'activation' is folded into the loss" "$work/summary.txt"
expect_grep ' add (Add) .* re_lu, batch_normalization_1$' "$work/summary.txt"

# a refusal, before anything is trained: file, layer, class, argument, value
job refused "$keras/bad_channels_first.json"
rc=0; "$mpifit" train "$work/refused.ini" 2> "$work/refused.err" || rc=$?
expect_status 1 $rc "train of a refused model"
cat "$work/refused.err"
expect_grep "bad_channels_first.json: layer 'conv2d' (Conv2D): unsupported data_format = \"channels_first\"" \
  "$work/refused.err"
[ ! -e "$work/refused/history.csv" ] || fail "a refused model was trained"

# arch together with keras is an error naming where arch was set
rc=0; "$mpifit" summary "$work/summary.ini" --set model.arch=small_cnn 2> "$work/arch.err" || rc=$?
expect_status 1 $rc "arch with keras"
expect_grep 'set model.arch: \[model\] arch is set, but \[model\] keras' "$work/arch.err"

# training lowers the loss: last epoch's loss well under the first's
lowers() {  # lowers HISTORY_CSV
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "loss") c = i; next }
           NR == 2 { first = $c } { last = $c }
           END { printf "loss %s -> %s\n", first, last; exit !(c && last < 0.8 * first) }' "$1"
}
job one "$keras/seq_k2.json"
"$mpifit" train "$work/one.ini" | tee "$work/one.log"
expect_grep "model: 'small_cnn_k2' from .*seq_k2.json, 9 layers, input 32x32x3; the softmax of 'dense'" "$work/one.log"
lowers "$work/one/history.csv"

job two "$keras/seq_k2.json"
"$mpiexec" "$@" "$mpifit" train "$work/two.ini" | tee "$work/two.log"
expect_grep 'Epoch 6/6' "$work/two.log"
lowers "$work/two/history.csv"

# the digits-style CNN (Conv2D relu, MaxPooling2D, Flatten, Dropout, Dense softmax):
# Keras' counts, then training lowers the loss with the Keras 2 form on 1 rank
# and the Keras 3 form on 2
job digits "$keras/digits_cnn_k2.json"
"$mpifit" summary "$work/digits.ini" > "$work/digits_summary.txt"
cat "$work/digits_summary.txt"
expect_grep '^Total params: 26,\?307$' "$work/digits_summary.txt"
expect_grep '^Trainable params: 26,\?307$' "$work/digits_summary.txt"
expect_grep ' max_pooling2d_1 (MaxPooling2D) ' "$work/digits_summary.txt"
expect_grep ' flatten (Flatten) ' "$work/digits_summary.txt"
# 48 images, Dropout(0.5): a smaller step and more epochs than the small CNN's
sed -i -e 's/^learning_rate = .*/learning_rate = 0.001/' -e 's/^epochs = .*/epochs = 25/' "$work/digits.ini"
"$mpifit" train "$work/digits.ini" | tee "$work/digits.log"
lowers "$work/digits/history.csv"

job digits3 "$keras/digits_cnn_k3.json"
sed -i -e 's/^learning_rate = .*/learning_rate = 0.001/' -e 's/^epochs = .*/epochs = 25/' "$work/digits3.ini"
"$mpiexec" "$@" "$mpifit" train "$work/digits3.ini" | tee "$work/digits3.log"
expect_grep "model: 'digits_cnn_k3' from .*digits_cnn_k3.json" "$work/digits3.log"
expect_grep 'Epoch 25/25' "$work/digits3.log"
lowers "$work/digits3/history.csv"

# the weights.h5 of a [model] keras run is a Keras full model with mpifit's
# description (arch keras, classes, class names): predict, evaluate and
# export --full take the model from it, no config needed
"$mpifit" inspect "$work/digits3/weights.h5" > "$work/inspect.txt"
expect_grep '^model: keras, 32 px, 3 classes: angular_leaf_spot bean_rust healthy; the Keras model_config' \
  "$work/inspect.txt"
pred=$("$mpifit" predict --weights "$work/one/weights.h5" "$data/validation/healthy/healthy_0000.jpg")
echo "$pred"
awk -F'\t' 'NF != 5 { exit 1 } { s = $3 + $4 + $5; if (s < 0.999 || s > 1.001) exit 1 }' <<<"$pred" ||
  fail "predict from weights.h5 alone: not one line of 3 probabilities: $pred"
# with the config too: the same line
pred2=$("$mpifit" predict "$work/one.ini" --weights "$work/one/weights.h5" "$data/validation/healthy/healthy_0000.jpg")
[ "$pred" = "$pred2" ] || fail "predict with and without the config differ: $pred / $pred2"
# evaluate from the file alone, on 2 ranks, gives the last epoch's val_accuracy
"$mpiexec" "$@" "$mpifit" evaluate --weights "$work/digits3/weights.h5" "$data/validation" > "$work/eval.txt"
cat "$work/eval.txt"
val=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_accuracy") c = i; next } { v = $c } END { print v }' \
  "$work/digits3/history.csv")
got=$(sed -n 's/.*accuracy=\([0-9.]*\).*/\1/p' "$work/eval.txt" | tail -n 1)
awk -v a="$val" -v b="$got" 'BEGIN { d = a - b; exit !(b != "" && d < 1e-6 && d > -1e-6) }' ||
  fail "evaluate of weights.h5 gives accuracy $got, the run's last val_accuracy was $val"
"$mpifit" export "$work/digits3/weights.h5" "$work/digits3_full.h5" --full > "$work/export.txt"
expect_grep 'exported the model digits_cnn_k3 (7 layers)' "$work/export.txt"
echo "keras_train: OK"
