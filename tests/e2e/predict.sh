#!/usr/bin/env bash
# predict.sh MPIFIT STRIP_DESC DATA_DIR WORK_DIR [MPIEXEC PREFLAGS]: predict and
# evaluate with no config, from another directory: the model and the class
# names come from the weights file (or a checkpoint, also one written before
# checkpoints carried the description: STRIP_DESC makes one) that train wrote,
# and the results are those of the config form. A weights file without a model description (a
# Keras file from elsewhere) needs the config and says so; class lists that
# disagree are refused naming both.
# With MPIEXEC: under `mpiexec -n 2` evaluate ends with the one-rank line and
# predict prints the one-rank lines, in input order, an unreadable image once
# (with its rank), and every rank exits 1.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpifit=$1 strip=$2 data=$3 work=$4 mpiexec=${5:-} preflags=${6:-}
rm -rf "$work" && mkdir -p "$work/elsewhere"
cat > "$work/job.ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0.1
bn_momentum = 0.9
[data]
train = $data/train
validation = $data/validation
batch_size = 8
threads = 1
[optimizer]
learning_rate = 0.003
[train]
epochs = 2
seed = 5
verbose = 0
[output]
dir = $work/run
INI
"$mpifit" train "$work/job.ini" > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "train"; }
w=$work/run/weights.h5
expect_file "$w"
# six images of the three classes (uneven over 2 ranks with the bad one below)
imgs=()
for c in angular_leaf_spot bean_rust healthy; do
  imgs+=("$data/validation/$c/${c}_0000.jpg" "$data/validation/$c/${c}_0001.jpg")
done

# ---- one rank: no config, from a directory that has neither config nor data
cd "$work/elsewhere"
"$mpifit" predict "$work/job.ini" --weights "$w" "${imgs[@]}" > "$work/with_config.txt" 2> "$work/err.txt" \
  || { cat "$work/err.txt"; fail "predict with the config"; }
if [ -z "$mpiexec" ]; then
  "$mpifit" predict --weights "$w" "${imgs[@]}" > "$work/no_config.txt" 2> "$work/err.txt" \
    || { cat "$work/err.txt"; fail "predict without a config"; }
  cat "$work/no_config.txt"
  test "$(wc -l < "$work/no_config.txt")" -eq 6 || fail "predict printed $(wc -l < "$work/no_config.txt") lines for 6 images"
  awk -F'\t' 'NF != 5 || $2 !~ /^(angular_leaf_spot|bean_rust|healthy)$/ { exit 1 }
              { s = $3 + $4 + $5; if (s < 0.999 || s > 1.001) exit 1 }' "$work/no_config.txt" \
    || fail "a line is not path, class name, three probabilities"
  cmp "$work/with_config.txt" "$work/no_config.txt" || fail "predict without a config differs from the config form"
  # --set still has the last word over the file's description
  set +e
  "$mpifit" predict --weights "$w" --set model.arch=mobilenet_v2 "${imgs[0]}" > /dev/null 2> "$work/err.txt"
  rc=$?
  set -e
  expect_status 1 $rc "predict --set model.arch=mobilenet_v2 with small_cnn weights"
  expect_grep 'another architecture' "$work/err.txt"

  # a checkpoint works the same way (the same weights as weights.h5 after the last epoch)
  ck=$(ls "$work"/run/checkpoints/ckpt-*.h5 | tail -1)
  "$mpifit" predict --weights "$ck" "${imgs[@]}" > "$work/ckpt.txt" 2> "$work/err.txt" \
    || { cat "$work/err.txt"; fail "predict from a checkpoint"; }
  cmp "$work/no_config.txt" "$work/ckpt.txt" || fail "predict from $ck differs from weights.h5"
  # an older checkpoint without the description: the model from its config text
  "$strip" "$ck" "$work/old_ckpt.h5"
  "$mpifit" inspect "$work/old_ckpt.h5" > "$work/inspect_old.txt"
  expect_no_grep '^model:' "$work/inspect_old.txt"
  "$mpifit" predict --weights "$work/old_ckpt.h5" "${imgs[@]}" > "$work/old.txt" 2> "$work/err.txt" \
    || { cat "$work/err.txt"; fail "predict from a checkpoint without a model description"; }
  cmp "$work/no_config.txt" "$work/old.txt" || fail "predict from the older checkpoint differs"
  # inspect shows the description
  "$mpifit" inspect "$w" > "$work/inspect.txt"
  expect_grep '^model: small_cnn, 32 px, 3 classes: angular_leaf_spot bean_rust healthy; dropout 0.1, bn_momentum 0.9$' \
    "$work/inspect.txt"
  # its export carries the description too
  "$mpifit" export "$ck" "$work/exported.h5" > /dev/null
  "$mpifit" predict --weights "$work/exported.h5" "${imgs[@]}" > "$work/exported.txt"
  cmp "$work/no_config.txt" "$work/exported.txt" || fail "predict from the export of $ck differs"

  # evaluate with no config: a DATA directory; the same line as the config form
  "$mpifit" evaluate --weights "$w" "$data/validation" > "$work/eval.txt" 2>&1 \
    || { cat "$work/eval.txt"; fail "evaluate without a config"; }
  cat "$work/eval.txt"
  tail -n 1 "$work/eval.txt" | grep -Eq '^loss=[0-9.e+-]+ accuracy=[0-9.e+-]+$' || fail "evaluate's last line"
  "$mpifit" evaluate "$work/job.ini" --weights "$w" > "$work/eval_config.txt" 2>&1
  test "$(tail -n 1 "$work/eval.txt")" = "$(tail -n 1 "$work/eval_config.txt")" \
    || fail "evaluate without a config: '$(tail -n 1 "$work/eval.txt")', with: '$(tail -n 1 "$work/eval_config.txt")'"
  set +e
  "$mpifit" evaluate --weights "$w" > /dev/null 2> "$work/err.txt"
  rc=$?
  set -e
  expect_status 1 $rc "evaluate with neither config nor DATA"
  expect_grep 'give DATA' "$work/err.txt"

  # a Keras weights file without the description (the layer groups alone,
  # copied by h5copy): the config form works, the other says what is missing
  for g in $(h5ls "$w" | awk '{print $1}'); do h5copy -i "$w" -o "$work/keras.h5" -s "/$g" -d "/$g"; done
  "$mpifit" predict "$work/job.ini" --weights "$work/keras.h5" "${imgs[@]}" > "$work/keras.txt" 2> "$work/err.txt" \
    || { cat "$work/err.txt"; fail "predict CONFIG --weights keras.h5"; }
  cmp "$work/no_config.txt" "$work/keras.txt" || fail "the Keras file with the config predicts otherwise"
  for cmd in predict evaluate; do
    set +e
    "$mpifit" $cmd --weights "$work/keras.h5" "${imgs[0]}" > "$work/out.txt" 2> "$work/err.txt"
    rc=$?
    set -e
    cat "$work/err.txt"
    expect_status 1 $rc "$cmd of a file without a model description"
    expect_grep "keras.h5 has no model description: root attribute 'model_arch' is missing" "$work/err.txt"
    expect_grep "mpifit $cmd CONFIG --weights .*keras.h5" "$work/err.txt"
    test ! -s "$work/out.txt" || fail "$cmd printed results for a file it cannot use"
  done

  # class lists that disagree: [data] train with other folder names
  mkdir -p "$work/other/train"
  for c in a b c; do mkdir -p "$work/other/train/$c" && cp "${imgs[0]}" "$work/other/train/$c/"; done
  sed "s|^train = .*|train = $work/other/train|" "$work/job.ini" > "$work/other.ini"
  for cmd in "predict $work/other.ini --weights $w ${imgs[0]}" "evaluate --weights $w $work/other/train"; do
    set +e
    # shellcheck disable=SC2086
    "$mpifit" $cmd > /dev/null 2> "$work/err.txt"
    rc=$?
    set -e
    cat "$work/err.txt"
    expect_status 1 $rc "$cmd"
    expect_grep 'trained on the classes \[angular_leaf_spot, bean_rust, healthy\] but .*other/train has \[a, b, c\]' \
      "$work/err.txt"
  done
  # [data] train that cannot be read: the file's class names
  sed "s|^train = .*|train = $work/gone|" "$work/job.ini" > "$work/gone.ini"
  "$mpifit" predict "$work/gone.ini" --weights "$w" "${imgs[@]}" > "$work/gone.txt"
  cmp "$work/no_config.txt" "$work/gone.txt" || fail "predict with an unreadable [data] train"
  echo "predict: without a config from another directory, from a checkpoint and its export, as the config form"
  exit 0
fi

# ---- 2 ranks: evaluate's last line and predict's lines are the one-rank ones
# shellcheck disable=SC2086
run2() { "$mpiexec" -n 2 $preflags "$@"; }
for d in "$data/validation" "$data/train"; do
  "$mpifit" evaluate --weights "$w" --set data.batch_size=5 "$d" > "$work/eval1.txt" 2>&1
  run2 "$mpifit" evaluate --weights "$w" --set data.batch_size=5 "$d" > "$work/eval2.txt" 2>&1 \
    || { cat "$work/eval2.txt"; fail "evaluate on 2 ranks"; }
  tail -n 2 "$work/eval1.txt" "$work/eval2.txt"
  l1=$(tail -n 1 "$work/eval1.txt") l2=$(tail -n 1 "$work/eval2.txt")
  echo "$l1" | grep -Eq '^loss=[0-9.e+-]+ accuracy=[0-9.e+-]+$' || fail "evaluate's last line: $l1"
  test "$l1" = "$l2" || fail "evaluate of $d: 1 rank '$l1', 2 ranks '$l2'"
  test "$(grep -c '^evaluated ' "$work/eval2.txt")" -eq 1 || fail "evaluate on 2 ranks: not one result from rank 0"
done
# seven images, the fifth unreadable: rank 0 reads four, rank 1 three (the bad one among them)
list=("${imgs[@]:0:4}" "$work/nope.jpg" "${imgs[@]:4}")
for np in 1 2; do
  rm -f "$work"/rc.*
  # each rank's own exit status, through a shell that records it
  # shellcheck disable=SC2016,SC2086
  "$mpiexec" -n $np $preflags sh -c '"$@"; echo $? > "'"$work"'/rc.$OMPI_COMM_WORLD_RANK"' sh \
    "$mpifit" predict --weights "$w" "${list[@]}" > "$work/pred$np.txt" 2> "$work/pred$np.err" || true
  cat "$work/pred$np.txt" "$work/pred$np.err"
  for r in $(seq 0 $((np - 1))); do
    test "$(cat "$work/rc.$r" 2>/dev/null)" = 1 || fail "predict on $np ranks: rank $r exited $(cat "$work/rc.$r" 2>/dev/null)"
  done
  test "$(grep -c 'nope.jpg' "$work/pred$np.err")" -eq 1 || fail "predict on $np ranks: the bad image not reported once"
done
expect_grep '^mpifit predict: rank 1: .*nope.jpg' "$work/pred2.err"
cmp "$work/pred1.txt" "$work/pred2.txt" || fail "predict on 2 ranks differs from 1 rank"
cut -f1 "$work/pred2.txt" > "$work/order.txt"
printf '%s\n' "${list[@]}" | grep -v nope.jpg | cmp - "$work/order.txt" || fail "predict on 2 ranks: not in input order"
# the config form on 2 ranks prints the one-rank lines too
run2 "$mpifit" predict "$work/job.ini" --weights "$w" "${imgs[@]}" > "$work/pred2c.txt" 2> /dev/null
cmp "$work/with_config.txt" "$work/pred2c.txt" || fail "predict CONFIG on 2 ranks differs from 1 rank"
echo "predict/evaluate on 2 ranks: the one-rank results, in input order, a bad image once"
