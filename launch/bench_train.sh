#!/usr/bin/env bash
# bench_train.sh: mpifit's training speed against the PyTorch reference figures
# of ../shared/bench/README.md (torchvision MobileNetV2 + GAP + dropout + dense,
# SGD, batch 32 per rank, channels-last; medians measured on a 2-core Zen 3).
# Every configuration trains on the synthetic beans-like data (decoded and
# augmented for real) for 2 epochs of STEPS steps; the second epoch's global
# images/s is measured; ratio = mpifit / PyTorch (> 1: mpifit is faster).
#   launch/bench_train.sh            all configurations (a few minutes)
#   STEPS=4 launch/bench_train.sh    shorter
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh
mpifit=./build/bin/mpifit
[ -x "$mpifit" ] || { echo "bench_train.sh: build first (cmake --build build)" >&2; exit 1; }
steps=${STEPS:-8}
data=${DATA:-data/synthetic-beans}
if [ ! -f "$data/.complete" ]; then
  "$mpifit" make-dataset synthetic-beans "$data" --train 300 --validation 60 >/dev/null
  touch "$data/.complete"
fi
# name, ranks, threads per rank, alpha, size, PyTorch img/s
configs=(
  "128px_1x2        1 2 1.0  128 78.5"
  "128px_2x1        2 1 1.0  128 78.4"
  "224px_1x2        1 2 1.0  224 25.8"
  "224px_2x1        2 1 1.0  224 28.9"
  "96px_1x2         1 2 1.0  96  138"
  "a0.35_128px_1x2  1 2 0.35 128 189"
  "a0.35_128px_2x1  2 1 0.35 128 224"
)
printf '%-18s %6s %8s %6s %12s %12s %7s\n' config ranks threads alpha mpifit_img/s torch_img/s ratio
for c in "${configs[@]}"; do
  read -r name np th alpha size torch <<<"$c"
  over=()
  [ "$np" -gt "$(nproc)" ] && over=(--oversubscribe)
  ips=$(mpirun -np "$np" "${over[@]}" --bind-to none -x OMP_NUM_THREADS="$th" "$mpifit" train configs/quickstart.ini \
          --set data.train="$data/train" --set data.validation=none --set model.alpha="$alpha" \
          --set model.input_size="$size" --set model.bn_momentum=0 --set data.batch_size=32 --set data.threads=1 \
          --set optimizer.name=sgd --set optimizer.learning_rate=0.01 --set train.epochs=2 \
          --set train.steps_per_epoch="$steps" --set train.verbose=2 --set dist.threads="$th" \
          --set output.dir=runs/bench-tmp 2>&1 \
        | awk '{ for (i = 1; i <= NF; i++) if ($i == "img/s") r = $(i - 1) } END { print r }')
  ratio=$(awk -v a="$ips" -v b="$torch" 'BEGIN { printf "%.2f", a / b }')
  printf '%-18s %6d %8d %6s %12.1f %12.1f %7s\n' "$name" "$np" "$th" "$alpha" "$ips" "$torch" "$ratio"
done
