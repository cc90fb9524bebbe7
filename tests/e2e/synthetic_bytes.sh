#!/usr/bin/env bash
# synthetic_bytes.sh MPIFIT LIBMPIFIT WORK: the synthetic generator, a tool
# outside the library, writes the same bytes as the last time its pictures
# were changed on purpose, for any thread count; and libmpifit holds none of it.
set -euo pipefail
mpifit=$1 lib=$2 work=$3
# sha256 over "sha256sum" of every file, sorted by path, of
#   make-dataset synthetic-beans --train 9 --validation 3 --test 3 --size 48 --seed 11
# with Debian 12's libjpeg-turbo 2.1.5 (another JPEG encoder version may change
# it). Pinned again whenever render.c draws differently on purpose: last when
# angular leaf spot lesions became larger, more numerous and grey-brown for the
# quickstart (issue #12); before that a50229165cff747b..., written by
# src/data/synthetic.c inside libmpifit (commit 49e369a).
expected=3889c3472736b14d2f25b16aa416d184541c2bc10f41d02b63bb678a1c41ce8c
digest() { (cd "$1" && find . -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1); }
for t in 1 2; do
  rm -rf "$work/t$t"
  "$mpifit" make-dataset synthetic-beans "$work/t$t" --train 9 --validation 3 --test 3 --size 48 --seed 11 \
    --threads $t >/dev/null
done
d1=$(digest "$work/t1") d2=$(digest "$work/t2")
echo "1 thread: $d1"
echo "2 threads: $d2"
if [ "$d1" != "$d2" ]; then echo "synthetic_bytes: 1 and 2 threads wrote different files" >&2; exit 1; fi
if [ "$d1" != "$expected" ]; then
  echo "synthetic_bytes: the files differ from what the generator wrote before ($expected)" >&2
  exit 1
fi
if nm "$lib" 2>/dev/null | grep -q 'mf_synth'; then
  echo "synthetic_bytes: $lib contains the synthetic generator" >&2
  exit 1
fi
echo "synthetic_bytes: same bytes as pinned, for 1 and 2 threads; not in $(basename "$lib")"
