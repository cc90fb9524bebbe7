#!/usr/bin/env bash
# emulated_train.sh MPIFIT DATA WORK: 2 ranks over 2 emulated nodes
# (launch/emulate_nodes.sh: network namespaces, a bridge, 1 Gbit/s tbf links,
# Open MPI over TCP only) train the small CNN for 2 epochs and end with the
# same weights.h5 and history.csv, bit for bit, as the same 2 ranks over
# shared memory, with float gradients and with [dist] compress = fp16 (which
# halves the bytes per step); `mpifit bench --comm` reports what the link gives MPI and what
# the exchange costs the compute beside it. Needs
# root and network namespaces: otherwise it says why and exits 77 (CTest:
# skipped).
set -euo pipefail
. "$(dirname "$0")/../e2e/assert.sh"
mpifit=$1 data=$2 work=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
emu=$root/launch/emulate_nodes.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "net.emulated_train: skipped: needs root (network namespaces and tc); run ctest as root"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
export MF_EMU_DIR=$work/emu MF_EMU_PREFIX=mftst MF_EMU_SUBNET=10.78.0
trap '"$emu" down > /dev/null 2>&1 || true' EXIT
rc=0
"$emu" up 2 --rate 1gbit > "$work/up.log" 2>&1 || rc=$?
cat "$work/up.log"
if [ $rc -eq 3 ]; then # the machine lacks namespaces, veth, a bridge or tbf
  echo "net.emulated_train: skipped: $(grep -o 'this machine cannot: .*' "$work/up.log")"
  exit 77
fi
expect_status 0 $rc "launch/emulate_nodes.sh up 2"
cat "$work/up.log"
timeout 120 "$emu" check 4194304 "$mpifit" | tee "$work/check.txt"
expect_grep '^RESULT impl=mpifit mode=comm ranks=2 ' "$work/check.txt"
expect_grep '^RESULT impl=mpifit mode=comm_overlap ranks=2 bytes=4194304 exchange_ms=[0-9][0-9.]* ' "$work/check.txt"
cat > "$work/job.ini" <<INI
[model]
arch = small_cnn
input_size = 32
dropout = 0.2
[data]
train = $data/train
validation = $data/validation
batch_size = 8
augment = true
threads = 1
[train]
epochs = 2
seed = 4
verbose = 0
[dist]
threads = 1
[output]
dir = $work/net
INI
timeout 300 "$emu" run 2 "$mpifit" train "$work/job.ini" > "$work/net.log" 2>&1 || { cat "$work/net.log"; fail "train over emulated nodes"; }
expect_grep 'trained 2 epochs on 2 ranks' "$work/net.log"
# the same ranks over shared memory (the default transports)
mpiexec -n 2 --oversubscribe --allow-run-as-root "$mpifit" train "$work/job.ini" --set output.dir="$work/shm" \
  > "$work/shm.log" 2>&1 || { cat "$work/shm.log"; fail "train over shared memory"; }
expect_same_h5 "$work/net/weights.h5" "$work/shm/weights.h5" /
cmp -s "$work/net/history.csv" "$work/shm/history.csv" || fail "history.csv differs between the emulated nodes and shared memory"
# 16-bit compression: its sums are formed in rank order on the chunk's owner,
# so the links cannot change them either; and it sends half the bytes
timeout 300 "$emu" run 2 "$mpifit" train "$work/job.ini" --set dist.compress=fp16 --set output.dir="$work/net16" \
  > "$work/net16.log" 2>&1 || { cat "$work/net16.log"; fail "fp16 training over emulated nodes"; }
mpiexec -n 2 --oversubscribe --allow-run-as-root "$mpifit" train "$work/job.ini" --set dist.compress=fp16 \
  --set output.dir="$work/shm16" > "$work/shm16.log" 2>&1 || { cat "$work/shm16.log"; fail "fp16 over shared memory"; }
expect_same_h5 "$work/net16/weights.h5" "$work/shm16/weights.h5" /
h5diff -q "$work/net16/weights.h5" "$work/net/weights.h5" / && fail "compress = fp16 changed nothing"
timeout 120 "$emu" run 2 "$mpifit" bench "$work/job.ini" --steps 3 --warmup 1 > "$work/b32.txt" 2>&1
timeout 120 "$emu" run 2 "$mpifit" bench "$work/job.ini" --steps 3 --warmup 1 --set dist.compress=fp16 > "$work/b16.txt" 2>&1
g32=$(sed -n 's/^RESULT.* grad_mb=\([0-9.]*\).*/\1/p' "$work/b32.txt")
g16=$(sed -n 's/^RESULT.* grad_mb=\([0-9.]*\).*/\1/p' "$work/b16.txt")
echo "gradient MB per step: float $g32, fp16 $g16"
awk -v a="$g32" -v b="$g16" 'BEGIN { exit !(a > 0 && b > 0.45 * a && b < 0.55 * a) }' || fail "fp16 did not halve the bytes ($g32 -> $g16 MB)"
echo "net.emulated_train: 2 emulated nodes = shared memory, bit for bit (float and fp16)"
