#!/usr/bin/env bash
# checkpoint.sh MPIFIT DATA_DIR WORK_DIR: checkpoints, resume and faults, end to end.
#  1. a run killed while writing its 3rd checkpoint leaves only complete ones;
#     resumed, it ends bit-identical (weights, optimizer state, metrics history)
#     to a run that was never interrupted;
#  2. a corrupt newest checkpoint: --resume auto names it and falls back;
#  3. another architecture is refused, naming the layers;
#  4. a full disk (file-size limit) while checkpointing: error, earlier
#     checkpoints intact, no temporary left; an unwritable output directory:
#     a clean error at start;
#  5. SIGUSR1: finish the step, checkpoint, exit 75 ([train] preempted_exit_status,
#     also when set to another value); a second signal exits at once;
#  6. export -> a Keras weights file with the same numbers; inspect; plot.
set -euo pipefail
# shellcheck source=assert.sh
. "$(dirname "$0")/assert.sh"
mpifit=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
ini=$work/job.ini
cat > "$ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0.2
[data]
train = $data/train
validation = $data/validation
batch_size = 8
threads = 1
[optimizer]
name = adam
learning_rate = 0.003
schedule = cosine
warmup_epochs = 0.5
[train]
epochs = 4
verbose = 0
[output]
checkpoint_every = 4
keep = 0
metrics_flush_steps = 3
INI
complete() {  # complete FILE: mpifit inspect says it is a complete checkpoint
  # (into a file first: `inspect | grep -q` would SIGPIPE inspect and fail under pipefail)
  "$mpifit" inspect "$1" > "$work/inspect.out" || fail "mpifit inspect $1 failed"
  expect_grep complete "$work/inspect.out"
}

echo "== 1. uninterrupted vs killed in the 3rd checkpoint write, then resumed"
"$mpifit" train "$ini" --set output.dir="$work/full" > "$work/full.log"
set +e
MF_FAULT_INJECT=kill_in_checkpoint:3 "$mpifit" train "$ini" --set output.dir="$work/cut" > "$work/cut.log" 2>&1
rc=$?
set -e
test $rc -eq 137   # SIGKILL
ls "$work/cut/checkpoints"
test -f "$work/cut/checkpoints/ckpt-0002-0000012.h5.tmp"       # the write that died
complete "$work/cut/checkpoints/ckpt-0001-0000008.h5"
test "$(find "$work/cut/checkpoints" -maxdepth 1 -name '*.h5' | wc -l)" -eq 2
"$mpifit" train "$ini" --set output.dir="$work/cut" --resume auto > "$work/resume.log" 2>&1
cat "$work/resume.log"
grep -q 'removing .*ckpt-0002-0000012.h5.tmp' "$work/resume.log"
grep -q 'resumed from .*ckpt-0001-0000008.h5: epoch 2, step 2 of it, global step 8' "$work/resume.log"
ls "$work/cut/checkpoints" > "$work/ls.txt"
expect_no_grep tmp "$work/ls.txt"
expect_same_h5 "$work/full/weights.h5" "$work/cut/weights.h5" /
expect_same_h5 "$work/full/checkpoints/ckpt-0004-0000024.h5" "$work/cut/checkpoints/ckpt-0004-0000024.h5" \
     /optimizer/m /optimizer/v /model_weights /ranks/rng /history
expect_same_h5 "$work/full/metrics.h5" "$work/cut/metrics.h5" /epoch/epoch /epoch/loss /epoch/accuracy /epoch/val_loss \
     /epoch/val_accuracy /epoch/lr /step/global_step /step/loss /step/lr
echo "bit-identical after kill + resume"

echo "== 2. a corrupt newest checkpoint"
cp -r "$work/cut" "$work/corrupt"
f=$work/corrupt/checkpoints/ckpt-0004-0000024.h5
head -c $(( $(stat -c %s "$f") / 2 )) "$f" > "$f.half" && mv "$f.half" "$f"
set +e
"$mpifit" inspect "$f" >/dev/null 2>&1; test $? -ne 0 || { echo "inspect accepted a truncated file"; exit 1; }
set -e
set +e
"$mpifit" train "$ini" --set output.dir="$work/x" --resume "$f" > "$work/explicit.log" 2>&1; rc=$?
set -e
expect_status 1 $rc "--resume of a truncated file"
expect_grep "ckpt-0004-0000024.h5 is damaged: it holds [0-9]* bytes after its header, its checksum line says [0-9]* (truncated)" "$work/explicit.log"
"$mpifit" train "$ini" --set output.dir="$work/corrupt" --set train.epochs=5 --resume auto > "$work/corrupt.log" 2>&1
expect_grep "skipping checkpoint: $f" "$work/corrupt.log"
expect_grep 'resumed from .*ckpt-0003-0000020.h5' "$work/corrupt.log"
# the resumed run reports what its config changed, key by key
expect_grep 'config changed since .*ckpt-0003-0000020.h5 (2 keys)' "$work/corrupt.log"
expect_grep '\[train\] epochs: 4 -> 5' "$work/corrupt.log"
expect_grep 'schedule follows this run.s config.*total_steps 24 -> 30' "$work/corrupt.log"

echo "== 2a. a newest checkpoint written for other classes: named and skipped"
mkdir -p "$work/other_classes"
for d in "$data"/train/*/; do cp -r "$d" "$work/other_classes/x_$(basename "$d")"; done
"$mpifit" train "$ini" --set data.train="$work/other_classes" --set data.validation=none \
   --set train.epochs=1 --set train.steps_per_epoch=1 --set output.checkpoint_every=1 --set output.dir="$work/oc_run" > "$work/oc_run.log" 2>&1
cp -r "$work/cut" "$work/classes"
cp "$(ls "$work"/oc_run/checkpoints/ckpt-*.h5 | tail -1)" "$work/classes/checkpoints/ckpt-0009-0000099.h5"
"$mpifit" train "$ini" --set output.dir="$work/classes" --resume auto > "$work/classes.log" 2>&1
expect_grep "skipping checkpoint: .*ckpt-0009-0000099.h5 was written for the classes \[x_" "$work/classes.log"
expect_grep 'resumed from .*ckpt-0004-0000024.h5' "$work/classes.log"
expect_grep 'config changed since .*ckpt-0004-0000024.h5 (1 key)' "$work/classes.log"

echo "== 2b. flipped bytes inside the newest checkpoint's weights: its checksum names it"
cp -r "$work/cut" "$work/flipped"
f=$work/flipped/checkpoints/ckpt-0004-0000024.h5
# the first byte of a weight tensor's data, found by h5py, inverted
/usr/bin/python3 - "$f" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as h:
    # HDF5 addresses count from the end of the user block (the checksum line)
    off = h["model_weights/conv2d/conv2d/kernel:0"].id.get_chunk_info(0).byte_offset + h.userblock_size
with open(sys.argv[1], "r+b") as raw:
    raw.seek(off + 8)
    b = raw.read(1)
    raw.seek(off + 8)
    raw.write(bytes([b[0] ^ 0xFF]))
PY
set +e
"$mpifit" train "$ini" --set output.dir="$work/y" --resume "$f" > "$work/flipped_explicit.log" 2>&1; rc=$?
set -e
cat "$work/flipped_explicit.log"
expect_status 1 $rc "--resume of a checkpoint with a flipped byte"
expect_grep "is damaged: its whole-file CRC-32 is [0-9a-f]*, written as [0-9a-f]* (damaged bytes)" "$work/flipped_explicit.log"
cp "$f" "$work/flipped_nosum.h5"   # (the resumed run below writes a good file under $f's name)
"$mpifit" train "$ini" --set output.dir="$work/flipped" --set train.epochs=5 --resume auto > "$work/flipped.log" 2>&1
cat "$work/flipped.log" | head -5
expect_grep "skipping checkpoint: $f is damaged: its whole-file CRC-32" "$work/flipped.log"
expect_grep 'resumed from .*ckpt-0003-0000020.h5' "$work/flipped.log"
# without its whole-file checksum line (its user block removed, as in a file
# written before it had one), the datasets' own Fletcher-32 checksums still
# name the damaged one
f=$work/flipped_nosum.h5
mv "$f" "$work/flipped_nosum_block.h5"
tail -c +513 "$work/flipped_nosum_block.h5" > "$f"
set +e
"$mpifit" train "$ini" --set output.dir="$work/y2" --resume "$f" > "$work/flipped_nosum.log" 2>&1; rc=$?
set -e
expect_status 1 $rc "--resume of a checkpoint with a flipped byte and no whole-file checksum"
expect_grep "$f: dataset .*kernel:0 fails its checksum" "$work/flipped_nosum.log"
# a zeroed checksum line is a damaged header, not a file without one: a
# byte flipped there must not let the rest past the checksum into HDF5
printf '%512s' '' | tr ' ' '\0' | dd of="$work/flipped_nosum_block.h5" bs=512 count=1 conv=notrunc status=none
set +e
"$mpifit" train "$ini" --set output.dir="$work/y3" --resume "$work/flipped_nosum_block.h5" > "$work/zeroed_line.log" 2>&1
rc=$?
set -e
expect_status 1 $rc "--resume of a checkpoint whose checksum line is zeroed"
expect_grep "is damaged: its first bytes are neither HDF5's signature nor mpifit's checksum line" "$work/zeroed_line.log"

# resuming a finished run: nothing to do, and it says so
"$mpifit" train "$ini" --set output.dir="$work/full" --resume auto | tee "$work/done.log"
grep -q 'nothing to do' "$work/done.log"

echo "== 3. another architecture"
set +e
"$mpifit" train "$ini" --set output.dir="$work/arch" --set model.arch=mobilenet_v2 --set model.alpha=0.35 \
   --resume "$work/full/checkpoints/ckpt-0004-0000024.h5" > "$work/arch.log" 2>&1; rc=$?
set -e
cat "$work/arch.log"
expect_status 1 $rc "resume into another architecture"
expect_grep "layer 'dense' weight 'kernel' is (64, 3) in the file but (1280, 3) in the model" "$work/arch.log"

echo "== 4. a full disk while checkpointing; an unwritable output directory"
# a small tmpfs holding a finished run and room for less than one more checkpoint
mnt=$work/small_disk
mkdir -p "$mnt"
used=$(du -sk "$work/full" | cut -f1)
ck=$(( $(stat -c %s "$work/full/checkpoints/ckpt-0004-0000024.h5") / 1024 ))
if mount -t tmpfs -o size=$(( used + ck / 2 + 64 ))k tmpfs "$mnt" 2>/dev/null; then
  trap 'umount "$mnt" 2>/dev/null || true' EXIT
  cp -r "$work/full" "$mnt/run"
  set +e
  "$mpifit" train "$ini" --set output.dir="$mnt/run" --set train.epochs=6 --resume auto > "$work/full_disk.log" 2>&1; rc=$?
  set -e
  cat "$work/full_disk.log"
  expect_status 1 $rc "a full disk while checkpointing"
  expect_grep 'No space left on device\|disk full' "$work/full_disk.log"
  grep -q 'no checkpoint written, the earlier ones are untouched' "$work/full_disk.log"
  ls "$mnt/run/checkpoints" > "$work/ls.txt"; expect_no_grep tmp "$work/ls.txt"
  for c in "$mnt"/run/checkpoints/ckpt-*.h5; do complete "$c"; done
  expect_same_h5 "$work/full/checkpoints/ckpt-0004-0000024.h5" "$mnt/run/checkpoints/ckpt-0004-0000024.h5" /
  umount "$mnt"
  trap - EXIT
else
  echo "NOT RUN: the full-disk check needs permission to mount a tmpfs (root, as in CI)"
fi
mkdir -p "$work/ro" && touch "$work/ro/checkpoints"
set +e
"$mpifit" train "$ini" --set output.dir="$work/ro" > "$work/ro.log" 2>&1; rc=$?
set -e
expect_status 1 $rc "an unwritable output directory"
expect_grep "cannot create directory $work/ro/checkpoints" "$work/ro.log"

echo "== 5. SIGUSR1 (even delivered twice): checkpoint and exit 75; a different second signal: exit at once"
"$mpifit" train "$ini" --set output.dir="$work/sig" --set train.epochs=400 --set output.checkpoint_every=epoch \
   > "$work/sig.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -s "$work/sig/metrics.h5" ] && break; sleep 0.05; done
sleep 0.3
# one event delivered twice (the scheduler and the launcher both signal): the
# second USR1, taken after the first was handled, is a duplicate, not "now"
kill -USR1 $pid
for _ in $(seq 1 400); do
  pend=$(sed -n 's/^ShdPnd:[[:space:]]*//p' /proc/$pid/status 2>/dev/null || echo 0)
  [ $(( (0x${pend:-0} >> 9) & 1 )) -eq 0 ] && break
  sleep 0.01
done
kill -USR1 $pid 2>/dev/null || true
set +e; wait $pid; rc=$?; set -e
cat "$work/sig.log"
expect_status 75 $rc "SIGUSR1 twice (one event): checkpoint and exit [train] preempted_exit_status (75)"
expect_grep '^preempted: stopped by signal 10' "$work/sig.log"
ck=$(sed -n 's/.*checkpoint \(.*\.h5\) written.*/\1/p' "$work/sig.log")
complete "$ck"
"$mpifit" train "$ini" --set output.dir="$work/sig" --set train.epochs=400 --set model.input_size=128 \
   --set output.checkpoint_every=epoch > "$work/sig2.log" 2>&1 &
pid=$!
for _ in $(seq 1 400); do grep -q '^model:' "$work/sig2.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.2
# Two different signals (two of the same may merge into one): the second ends it
# at once. When both are pending, Linux delivers the lower-numbered SIGUSR1
# first, so TERM must have been taken before USR1 is sent: wait until it is no
# longer pending (bit 15 of the process's ShdPnd mask) before sending USR1.
caught=$(sed -n 's/^SigCgt:[[:space:]]*//p' /proc/$pid/status)
test $(( (0x$caught >> 14) & 1 )) -eq 1   # a handler for SIGTERM is installed
test $(( (0x$caught >> 9) & 1 )) -eq 1    # and for SIGUSR1
kill -TERM $pid
for _ in $(seq 1 400); do
  pend=$(sed -n 's/^ShdPnd:[[:space:]]*//p' /proc/$pid/status)
  [ $(( (0x$pend >> 14) & 1 )) -eq 0 ] && break
  sleep 0.01
done
test $(( (0x$pend >> 14) & 1 )) -eq 0
kill -USR1 $pid
set +e; wait $pid; rc=$?; set -e
cat "$work/sig2.log"
expect_status 138 $rc "TERM then USR1: the second signal exits at once (128 + SIGUSR1)"
for c in "$work"/sig/checkpoints/ckpt-*.h5; do complete "$c"; done

echo "== 6. save_best, keep, export, inspect, plot"
"$mpifit" train "$ini" --set output.dir="$work/best" --set output.checkpoint_every=epoch --set output.keep=2 \
   --set output.save_best=val_loss > "$work/best.log" 2>&1
ls "$work/best/checkpoints"
test "$(find "$work/best/checkpoints" -maxdepth 1 -name 'ckpt-*.h5' | wc -l)" -eq 2
complete "$work/best/checkpoints/best.h5"
"$mpifit" export "$work/full/checkpoints/ckpt-0004-0000024.h5" "$work/keras.h5"
expect_same_h5 "$work/full/weights.h5" "$work/keras.h5" /conv2d /dense /batch_normalization
"$mpifit" inspect "$work/full/metrics.h5" | tee "$work/inspect.txt"
expect_grep '^epochs: 4' "$work/inspect.txt"
expect_grep '^steps: 24' "$work/inspect.txt"
if command -v gnuplot >/dev/null; then
  "$mpifit" plot "$work/full/metrics.h5" -o "$work/curves.png"
  test "$(head -c 4 "$work/curves.png" | od -An -c | tr -d ' ')" = "211PNG"
fi
echo "checkpoint.sh: all checks passed"
