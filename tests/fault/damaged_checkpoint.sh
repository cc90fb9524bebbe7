#!/usr/bin/env bash
# damaged_checkpoint.sh MPIEXEC PREFLAGS MPIFIT DATA_DIR WORK_DIR: the newest
# checkpoint is damaged in ways disks, copies and hostile hands damage files:
# single flipped bits anywhere after the checksum line, zeroed ranges, a cut
# tail; and, with the whole-file checksum line erased so that the structural
# checks are what must catch it, a deleted dataset, a multi-element attribute
# where one value belongs, an absurd world size. Each time `--resume auto` must
# name the file and why, fall back to the previous checkpoint and finish; no
# crash (the ASan tree runs this too).
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=job.sh
. "$(dirname "$0")/job.sh"
mpiexec=$1 preflags=$2 mpifit=$3 data=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
small_job "$work/job.ini" "$data" "$work/run" 2 none
sed -i 's/^\[output\]$/[output]\nkeep = 0/' "$work/job.ini"
echo "timeout = 120" >> "$work/job.ini"
np2 "$work/run.log" 300 -- "$mpifit" train "$work/job.ini"
expect_status 0 $rc "the first run"
newest=ckpt-0002-0000012.h5 previous=ckpt-0001-0000006.h5
[ -f "$work/run/checkpoints/$newest" ] && [ -f "$work/run/checkpoints/$previous" ] || fail "missing $newest or $previous"

damage() {  # damage KIND SEED FILE
  /usr/bin/python3 - "$@" <<'PY'
import os, random, sys
import h5py, numpy as np
kind, seed, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
size = os.path.getsize(path)
def erase_sum():   # as a file written before checkpoints had the line: no user block
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[512:])
if kind == "flip":           # one bit, anywhere after the checksum line
    off = rng.randrange(512, size)
    with open(path, "r+b") as f:
        f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
    print(f"bit flipped at byte {off} of {size}")
elif kind == "line":         # one byte of the checksum line itself changed
    off = rng.randrange(0, 13)    # inside "mpifit-crc32 "
    with open(path, "r+b") as f:
        f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x20]))
    print(f"byte {off} of the checksum line changed")
elif kind == "zero":         # a zeroed range (of bytes not all zero already)
    data = open(path, "rb").read()
    while True:
        off, n = rng.randrange(512, size), rng.randrange(64, 4096)
        if any(data[off:off + n]):
            break
    with open(path, "r+b") as f:
        f.seek(off); f.write(b"\0" * min(n, size - off))
    print(f"bytes {off}..{off + n} zeroed")
elif kind == "cut":
    os.truncate(path, rng.randrange(512, size))
elif kind == "deleted":
    with h5py.File(path, "r+") as h:
        del h["optimizer/m"]
    erase_sum()
elif kind == "multi_attr":   # one value where the reader wants one: three
    with h5py.File(path, "r+") as h:
        del h.attrs["epoch"]; h.attrs["epoch"] = np.array([2, 2, 2], dtype=np.int64)
    erase_sum()
elif kind == "world":
    with h5py.File(path, "r+") as h:
        h.attrs["world_size"] = np.int64(10**12)
    erase_sum()
PY
}

case_n=0
check() {  # check KIND SEED WHY_PATTERN
  case_n=$((case_n + 1))
  local dir=$work/case_$case_n
  rm -rf "$dir" && cp -r "$work/run" "$dir"
  local what; what=$(damage "$1" "$2" "$dir/checkpoints/$newest")
  sed "s#^dir = .*#dir = $dir#" "$work/job.ini" > "$dir.ini"
  np2 "$dir.log" 120 -- "$mpifit" train "$dir.ini" --resume auto
  expect_status 0 $rc "resume after damage '$1' ($what)"
  expect_grep "skipping checkpoint: .*$newest.*$3" "$dir.log"
  expect_grep "resumed from .*$previous" "$dir.log"
  echo "case $case_n: $1 $what -> $(grep -o "skipping checkpoint: .*" "$dir.log" | sed "s#$work/##g" | cut -c1-150)"
}
for seed in $(seq 1 12); do check flip "$seed" 'whole-file CRC-32'; done
for seed in 1 2 3; do check zero "$seed" 'whole-file CRC-32'; done
# the line damaged: not taken for a file written before checksums (whose rest
# would reach libhdf5 unchecked)
check line 1 "neither HDF5's signature nor mpifit's checksum line"
check cut 1 'truncated'
check deleted 1 "optimizer state 'm' missing"
check multi_attr 1 'a position attribute .* is missing or not one integer'
check world 1 'position out of range'
echo "damaged_checkpoint: $case_n damaged newest checkpoints named and skipped; each run resumed from the previous one"
