#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine to a trained model, with nothing
# to download: installs missing packages, builds Release into build/, writes the
# synthetic beans-like dataset (data/synthetic-beans: 600 training and 150
# validation photos, once), trains MobileNetV2 (alpha 0.35, 96 px) from scratch
# on it with configs/quickstart.ini (20 epochs: validation accuracy ~0.95; the
# dataset and the training take ~45 s on 2 idle cores), plots the curves and
# prints what to try next.
#   ./launch/quickstart.sh             1 rank
#   NP=2 ./launch/quickstart.sh        2 ranks under mpirun
#   ./launch/quickstart.sh --set train.epochs=2    extra arguments go to `mpifit train`
# Environment: MPIFIT=path/to/mpifit uses that binary and skips the packages and
# the build (the tests do); DATA (default data/synthetic-beans) and RUN (default
# runs/quickstart) move the dataset and the run's output.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${MPIFIT:-}" ]; then
  ./launch/install_deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
  MPIFIT=./build/bin/mpifit
fi
# shellcheck source=launch/mpi_env.sh
. ./launch/mpi_env.sh
# shellcheck source=launch/synthetic_data.sh
. ./launch/synthetic_data.sh
"$MPIFIT" selfcheck

data=${DATA:-data/synthetic-beans}
run=${RUN:-runs/quickstart}
config=configs/quickstart.ini
start=$SECONDS
synthetic_beans "$data" "$MPIFIT"
data_s=$((SECONDS - start))

np=${NP:-1}
where=(--set data.train="$data/train" --set data.validation="$data/validation" --set output.dir="$run")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
if [ "$np" -gt 1 ]; then
  over=()
  [ "$np" -gt "$(nproc)" ] && over=(--oversubscribe)
  mpirun -np "$np" "${over[@]}" "$MPIFIT" train "$config" "${where[@]}" "$@" | tee "$log"
else
  "$MPIFIT" train "$config" "${where[@]}" "$@" | tee "$log"
fi
train_s=$((SECONDS - start))

# "trained 20 epochs on 1 rank: loss=... val_accuracy=0.9533"
summary=$(grep '^trained [0-9]* epochs' "$log" | tail -n 1)
epochs=$(sed -n 's/^trained \([0-9]*\) epochs.*/\1/p' <<<"$summary")
val_acc=$(sed -n 's/.*val_accuracy=\([0-9.]*\).*/\1/p' <<<"$summary")

curves="$run/curves.png"
rm -f "$curves"
if command -v gnuplot >/dev/null 2>&1 && "$MPIFIT" plot "$run/metrics.h5" -o "$curves" >/dev/null 2>&1; then
  curves_line="$curves"
else
  curves_line="not drawn: needs gnuplot with PNG output (apt-get install gnuplot-nox), then: $MPIFIT plot $run/metrics.h5 -o $curves"
fi

# the extra arguments of this run for the commands below: all of them for
# train, the --set ones (the model may have changed) for predict
extra="" sets=""
if [ $# -gt 0 ]; then
  extra=" $(printf '%q ' "$@")"
  extra=${extra% }
fi
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  if [ "${args[i]}" = --set ]; then sets+=" --set $(printf '%q' "${args[i + 1]}")"; fi
done
# where this run's data and output are, when not where the config says
data_at="" run_at=""
if [ "$data" != data/synthetic-beans ]; then
  data_at=" --set data.train=$data/train --set data.validation=$data/validation"
fi
if [ "$run" != runs/quickstart ]; then run_at=" --set output.dir=$run"; fi
image=$data/validation/bean_rust/bean_rust_0000.jpg

cat <<EOF

quickstart: validation accuracy ${val_acc:-?} after ${epochs:-?} epochs on $np rank(s); training ${train_s} s, dataset ${data_s} s (load average now: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?))
  weights      $run/weights.h5   (Keras HDF5 layout)
  metrics      $run/metrics.h5   (per step and per epoch; $MPIFIT inspect $run/metrics.h5), $run/history.csv
  curves       $curves_line
  checkpoints  $run/checkpoints/
next (from $(pwd)):
  # classify one photo: path, predicted class, then the probability of each class
  $MPIFIT predict $config$data_at$sets --weights $run/weights.h5 $image
  # 10 more epochs, continuing from the newest checkpoint
  $MPIFIT train $config$data_at$run_at$extra --resume auto --set train.epochs=$((${epochs:-20} + 10))
  # the same training on 2 ranks (data parallel, 1 thread each; or NP=2 $0)
  launch/mpirun.sh 2 $config$data_at$extra --set output.dir=$run-np2
EOF
