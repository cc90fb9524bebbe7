#!/usr/bin/env bash
# emulated_train.sh MPIFIT DATA WORK: 2 ranks over 2 emulated nodes
# (launch/emulate_nodes.sh: network namespaces, a bridge, 1 Gbit/s tbf links,
# Open MPI over TCP only) train the small CNN for 2 epochs and end with the
# same weights.h5 and history.csv, bit for bit, as the same 2 ranks over
# shared memory; `mpifit bench --comm` reports what the link gives MPI. Needs
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
echo "net.emulated_train: 2 emulated nodes = shared memory, bit for bit"
