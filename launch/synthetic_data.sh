# shellcheck shell=bash
# synthetic_data.sh: source me. `synthetic_beans DIR MPIFIT` makes DIR hold the
# quickstart's synthetic beans-like dataset (600 training and 150 validation
# photos of 500 px, three classes) unless it already does. What a finished
# tree holds is written last, to DIR/.complete: the make-dataset arguments and a
# digest of a few tiny pictures drawn by this mpifit, so a tree that an
# interrupted run, other arguments or an older generator (src/synth/render.c)
# wrote is written again.
MF_SYNTH_ARGS=(--train 600 --validation 150)

# The generator's fingerprint: the digest of 6 pictures of 32 px, ~0.05 s.
synthetic_fingerprint() {
  local mpifit=$1 tmp
  tmp=$(mktemp -d)
  "$mpifit" make-dataset synthetic-beans "$tmp" --train 3 --validation 3 --size 32 --threads 1 >/dev/null
  (cd "$tmp" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
  rm -rf "$tmp"
}

synthetic_beans() {
  local dir=$1 mpifit=$2 recipe
  recipe="make-dataset synthetic-beans ${MF_SYNTH_ARGS[*]}; generator $(synthetic_fingerprint "$mpifit")"
  if [ -f "$dir/.complete" ]; then
    if [ "$(cat "$dir/.complete")" = "$recipe" ]; then
      echo "dataset: $dir (written before: ${MF_SYNTH_ARGS[*]})"
      return 0
    fi
    # a tree we wrote with other arguments or another generator: make-dataset
    # would leave the files it does not write again, so start afresh
    echo "dataset: $dir was written by another generator or with other arguments; writing it again"
    rm -rf "$dir/train" "$dir/validation" "$dir/test" "$dir/.complete"
  fi
  "$mpifit" make-dataset synthetic-beans "$dir" "${MF_SYNTH_ARGS[@]}"
  echo "$recipe" >"$dir/.complete"
}
