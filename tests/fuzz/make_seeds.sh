#!/usr/bin/env bash
# make_seeds.sh [BUILD_DIR]: write the seed corpora of tests/fuzz/corpus/ again.
# BUILD_DIR (default build-fuzz) is a tree configured with -DMF_FUZZ=ON; its
# fuzz_make_seeds (make_seeds.c) writes the JPEG and HDF5 seeds with mpifit's
# own writers, the config seeds are the shipped INI files plus a few made here.
# Only the file format mpifit (and h5py, Keras) write is seeded: files in
# HDF5's newest format (h5repack -L) mostly find libhdf5's own bugs in dense
# link storage. Review `git status` after.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
out=tests/fuzz/corpus
cmake --build "$build" --target fuzz_make_seeds -j2 >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
  "$build/tests/fuzz/fuzz_make_seeds" "$tmp"

mkdir -p "$tmp/config"
cp configs/quickstart.ini configs/beans_mobilenetv2.ini "$tmp/config/"
# every section; then after a NUL byte, --set overrides (fuzz_config.c's input)
printf '[model]\narch = small_cnn\ninput_size = 32\n[data]\ntrain = d/train\nvalidation = none\nvalidation_split = 0.2\nbatch_size = 4\nthreads = 1\non_bad_image = fail\n[optimizer]\nname = sgd\nmomentum = 0.9\nnesterov = yes\nschedule = step\n[train]\nepochs = 2\nseed = 12345678901\n[output]\ndir = runs/x\ncheckpoint_every = 100\nsave_best = val_accuracy\n[dist]\nthreads = 1\ntimeout = 5.5\n\0data.batch_size=8\noptimizer.schedule=cosine\nmodel.alpha=0.35\n' \
  > "$tmp/config/all_sections_and_sets.ini"
# errors: an unknown key, a value out of range, a line that is not key = value
printf '; comment\n# comment\n[model]\nalpha = 0.5\nbogus = 1\n' > "$tmp/config/unknown_key.ini"
printf '[data]\nbatch_size = 0\n' > "$tmp/config/out_of_range.ini"
printf '[train]\nepochs 3\n' > "$tmp/config/not_key_value.ini"

# over the files of the same names; seeds kept by hand stay (the *_no_crc32.h5
# checkpoints: written before checkpoints carried a CRC-32 user block, which
# the writer cannot make any more and the readers still accept; and
# packed/one_split_chunked_blob.h5, one_split.h5 with its blob rewritten in
# 1024-byte chunks by h5py: another writer's layout, which the reader reads
# through HDF5 instead of pread)
mkdir -p "$out"
# keras_model: the hand-written Keras descriptions of tests/data/keras
mkdir -p "$tmp/keras_model"
cp tests/data/keras/*.json "$tmp/keras_model/"
for t in jpeg config keras_weights keras_model checkpoint packed inspect; do
  mkdir -p "$out/$t"
  cp "$tmp/$t"/* "$out/$t/"
done
du -sh "$out"/*
