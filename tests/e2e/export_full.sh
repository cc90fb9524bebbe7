#!/usr/bin/env bash
# export_full.sh MPIFIT CHECK DATA WORK: `mpifit export CKPT OUT.h5 --full`
# writes a Keras 2 full-model .h5:
#  1. of a small_cnn checkpoint: mf_model_from_keras rebuilds the model from
#     OUT.h5 and its weights are the checkpoint's (CHECK, keras_full_check.c),
#     /model_weights equals the weights-only export (h5diff, bit for bit);
#  2. the layout as Keras reads it, checked with h5py (no Keras here): root
#     attributes model_config (JSON, class_name Functional), keras_version,
#     backend; /model_weights layer_names and weight_names; Keras' shapes;
#  3. a checkpoint from before model descriptions (config text only) exports
#     too; a file with no model at all is refused, saying what --full needs;
#  4. the default stays the weights-only file;
#  5. a [model] keras run's checkpoint exports the model its config names;
#  6. layers are written trainable as the run had them at the checkpoint
#     (freeze_base; the [finetune] phase before and after its switch).
set -euo pipefail
. "$(dirname "$0")/assert.sh"
mpifit=$1 check=$2 data=$3 work=$4 strip=$5
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
threads = 1
[train]
epochs = 1
seed = 5
verbose = 0
[output]
dir = $work/run
checkpoint_every = epoch
INI
"$mpifit" train "$work/job.ini" > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "train"; }
ck=$(ls "$work"/run/checkpoints/ckpt-*.h5 | tail -1)
expect_file "$ck"

echo "== 1. export --full; rebuild and compare"
"$mpifit" export "$ck" "$work/full.h5" --full | tee "$work/export.txt"
expect_grep 'exported the model' "$work/export.txt"
"$check" "$work/full.h5" "$ck" | tee "$work/check.txt"
expect_grep 'softmax folded from dense' "$work/check.txt"
"$mpifit" export "$ck" "$work/weights.h5" > /dev/null
for g in conv2d conv2d_1 conv2d_2 batch_normalization batch_normalization_2 dense; do
  expect_same_h5 "$ck" "$work/full.h5" "/model_weights/$g"
  h5diff "$work/weights.h5" "$work/full.h5" "/$g" "/model_weights/$g" > /dev/null || fail "/$g differs from the weights-only export"
done

echo "== 2. the layout Keras reads (h5py)"
/usr/bin/python3 - "$work/full.h5" <<'PY'
import json, sys
import h5py
f = h5py.File(sys.argv[1], "r")
for k in ("model_config", "keras_version", "backend"):
    assert k in f.attrs, "root attribute %s missing" % k
def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)
assert s(f.attrs["backend"]) == "tensorflow"
assert s(f.attrs["keras_version"]).startswith("2."), f.attrs["keras_version"]
cfg = json.loads(s(f.attrs["model_config"]))
assert cfg["class_name"] == "Functional", cfg["class_name"]
layers = cfg["config"]["layers"]
assert layers[0]["class_name"] == "InputLayer"
assert layers[0]["config"]["batch_input_shape"] == [None, 32, 32, 3]
assert cfg["config"]["output_layers"] == [["dense", 0, 0]]
assert layers[-1]["config"]["activation"] == "softmax"
mw = f["model_weights"]
names = [s(n) for n in mw.attrs["layer_names"]]
assert names == [l["name"] for l in layers[1:]], (names, [l["name"] for l in layers[1:]])
assert mw["conv2d/conv2d/kernel:0"].shape == (3, 3, 3, 16), mw["conv2d/conv2d/kernel:0"].shape
assert [s(n) for n in mw["conv2d"].attrs["weight_names"]] == ["conv2d/kernel:0"]  # no bias before BN
assert layers[1]["config"]["use_bias"] is False
assert [s(n) for n in mw["dense"].attrs["weight_names"]] == ["dense/kernel:0", "dense/bias:0"]
assert mw["batch_normalization/batch_normalization/moving_variance:0"].shape == (16,)
assert mw["dense/dense/kernel:0"].shape == (64, 3), mw["dense/dense/kernel:0"].shape
for l in layers[1:]:
    assert l["name"] in mw, l["name"]
print("h5py: layout ok,", len(names), "layers")
PY

echo "== 3. an old checkpoint (config text only); a file without a model"
"$strip" "$ck" "$work/old_ckpt.h5"
"$mpifit" export "$work/old_ckpt.h5" "$work/full_old.h5" --full > /dev/null
"$check" "$work/full_old.h5" "$ck" > /dev/null
h5diff "$work/full.h5" "$work/full_old.h5" /model_weights > /dev/null || fail "the old checkpoint exports other weights"
"$strip" "$work/weights.h5" "$work/bare.h5"
set +e
"$mpifit" export "$work/bare.h5" "$work/no.h5" --full > /dev/null 2> "$work/err.txt"
rc=$?
set -e
expect_status 1 $rc "export --full of a weights file without a model description"
expect_grep 'full needs the model' "$work/err.txt"
test ! -e "$work/no.h5" || fail "a refused export left $work/no.h5"

echo "== 4. the default: weights only"
h5ls "$work/weights.h5" | grep -q '^model_weights' && fail "the default export has /model_weights"
h5dump -A -a /model_config "$work/weights.h5" > /dev/null 2>&1 && fail "the default export has model_config"
echo "== 5. a [model] keras run: the model is the file its config names"
keras_json=$(cd "$(dirname "$0")/../data/keras" && pwd)/digits_cnn_k2.json
sed -e "s|^arch = small_cnn|keras = $keras_json|" -e '/^input_size/d' -e '/^dropout/d' \
    -e "s|^dir = .*|dir = $work/krun|" "$work/job.ini" > "$work/keras.ini"
"$mpifit" train "$work/keras.ini" > "$work/ktrain.log" 2>&1 || { cat "$work/ktrain.log"; fail "train [model] keras"; }
kck=$(ls "$work"/krun/checkpoints/ckpt-*.h5 | tail -1)
"$mpifit" export "$kck" "$work/kfull.h5" --full > /dev/null
"$check" "$work/kfull.h5" "$kck" | tee "$work/kcheck.txt"
expect_grep '^7 layers, 6 weights, softmax folded from dense' "$work/kcheck.txt"
echo "== 6. trainable flags as the run had them at the checkpoint"
trainable() {  # trainable FULL_H5: "layer:0|1 ..." of model_config
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
import h5py
f = h5py.File(sys.argv[1], "r")
v = f.attrs["model_config"]
cfg = json.loads(v.decode() if isinstance(v, bytes) else v)
print(" ".join("%s:%d" % (l["name"], int(l["config"]["trainable"])) for l in cfg["config"]["layers"][1:]))
PY
}
sed -e "s|^dir = .*|dir = $work/frozen|" -e 's|^\[model\]|[model]\nfreeze_base = true|' "$work/job.ini" > "$work/frozen.ini"
"$mpifit" train "$work/frozen.ini" > "$work/frozen.log" 2>&1 || { cat "$work/frozen.log"; fail "train freeze_base"; }
fck=$(ls "$work"/frozen/checkpoints/ckpt-*.h5 | tail -1)
"$mpifit" export "$fck" "$work/frozen_full.h5" --full > /dev/null
got=$(trainable "$work/frozen_full.h5"); echo "freeze_base: $got"
[[ "$got" == "conv2d:0 "*"re_lu_2:0 "*"dense:1" ]] || fail "freeze_base: the base should be frozen, the head not: $got"
# [finetune]: phase two (from conv2d_2 on) has begun at the last checkpoint
cat "$work/frozen.ini" - > "$work/ft.ini" <<'INI'
[finetune]
epochs = 1
trainable_from = conv2d_2
learning_rate = 0.0001
INI
sed -i -e "s|^dir = .*|dir = $work/ft|" "$work/ft.ini"
"$mpifit" train "$work/ft.ini" > "$work/ft.log" 2>&1 || { cat "$work/ft.log"; fail "train [finetune]"; }
tck=$(ls "$work"/ft/checkpoints/ckpt-0002-*.h5 | tail -1)
"$mpifit" export "$tck" "$work/ft_full.h5" --full > /dev/null
got=$(trainable "$work/ft_full.h5"); echo "finetune: $got"
[[ "$got" == "conv2d:0 "*"re_lu_1:0 conv2d_2:1 "*"dense:1" ]] || fail "[finetune]: conv2d_2 on should be trainable: $got"
# the first phase's checkpoint: still frozen
tck1=$(ls "$work"/ft/checkpoints/ckpt-0001-*.h5 | tail -1)
"$mpifit" export "$tck1" "$work/ft1_full.h5" --full > /dev/null
got=$(trainable "$work/ft1_full.h5"); echo "finetune, phase one: $got"
[[ "$got" == *"conv2d_2:0 "*"dense:1" ]] || fail "[finetune] phase one: conv2d_2 should be frozen: $got"
echo "export_full.sh: all checks passed"
