#!/usr/bin/env bash
# scaling.sh: the same short training job at 1, 2, ... N ranks, weak and strong
# scaling, gradient allreduce overlapped with backward and not; prints a table of
# global images/s and parallel efficiency, writes it as CSV and plots it (PNG
# beside the CSV, with gnuplot).
#   launch/scaling.sh [MAX_RANKS] [CSV]        defaults: nproc, runs/scaling.csv
# Environment: CONFIG (default configs/quickstart.ini), BATCH (per rank, weak; 16),
# STEPS (steps per epoch; 12), THREADS (per rank; 1), EXTRA (more --set arguments),
# EMULATED=1: run the ranks on the emulated nodes of launch/emulate_nodes.sh
# (up them first; one rank per node, Open MPI over the shaped TCP links).
# Weak scaling keeps the per-rank batch; strong scaling keeps the global batch
# (BATCH x MAX_RANKS) and divides it over the ranks. Efficiency is
# img/s(N) / (N x img/s(1)) for the same mode. The first epoch warms up; the
# second is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-$(nproc)}
csv=${2:-runs/scaling.csv}
config=${CONFIG:-configs/quickstart.ini}
batch=${BATCH:-16}
steps=${STEPS:-12}
threads=${THREADS:-1}
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh
mpifit=./build/bin/mpifit
[ -x "$mpifit" ] || { echo "scaling.sh: build first (./launch/quickstart.sh or cmake --build build)" >&2; exit 1; }
data=${DATA:-data/synthetic-beans}
if [ ! -f "$data/.complete" ]; then
  # shellcheck source=launch/synthetic_data.sh
  . ./launch/synthetic_data.sh
  synthetic_beans "$data" "$mpifit" >/dev/null
fi
mkdir -p "$(dirname "$csv")"
echo "mode,overlap,ranks,batch_per_rank,global_batch,img_per_s,efficiency" > "$csv"

launcher() {  # launcher NP: the command that starts NP ranks
  if [ "${EMULATED:-0}" = 1 ]; then
    echo "./launch/emulate_nodes.sh run $1"
  elif [ "$1" -gt "$(nproc)" ]; then
    echo "mpirun -np $1 --oversubscribe --bind-to none -x OMP_NUM_THREADS=$threads"
  else
    echo "mpirun -np $1 --bind-to none -x OMP_NUM_THREADS=$threads"
  fi
}

run() {  # run NP BATCH OVERLAP -> img/s of the second epoch
  local np=$1 b=$2 ov=$3
  # shellcheck disable=SC2046
  OMP_NUM_THREADS="$threads" $(launcher "$np") "$(pwd)/$mpifit" train "$config" \
    --set data.train="$data/train" --set data.validation=none --set data.batch_size="$b" \
    --set train.epochs=2 --set train.steps_per_epoch="$steps" --set train.verbose=2 \
    --set dist.threads="$threads" --set data.threads=1 --set dist.overlap="$ov" \
    --set output.dir="runs/scaling-tmp" ${EXTRA:-} 2>&1 \
  | awk '{ for (i = 1; i <= NF; i++) if ($i == "img/s") r = $(i - 1) } END { print r }'
}

printf '%-7s %-7s %5s %10s %12s %10s %10s\n' mode overlap ranks batch/rank global_batch img/s efficiency
for mode in weak strong; do
  for ov in true false; do
    base=""
    for ((np = 1; np <= max; np++)); do
      if [ "$mode" = weak ]; then b=$batch; else b=$(( batch * max / np )); fi
      [ "$b" -ge 1 ] || continue
      ips=$(run "$np" "$b" "$ov")
      [ -n "$ips" ] || { echo "scaling.sh: the run at $np ranks printed no img/s" >&2; exit 1; }
      [ -n "$base" ] || base=$ips
      eff=$(awk -v r="$ips" -v b="$base" -v n="$np" 'BEGIN { printf "%.2f", r / (n * b) }')
      printf '%-7s %-7s %5d %10d %12d %10.1f %10s\n' "$mode" "$ov" "$np" "$b" $((b * np)) "$ips" "$eff"
      echo "$mode,$ov,$np,$b,$((b * np)),$ips,$eff" >> "$csv"
    done
  done
done
echo "written: $csv"
# the plot: images/s and parallel efficiency against ranks, one line per
# mode and overlap setting (gnuplot-nox, which `mpifit plot` uses too)
png=${csv%.csv}.png
if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1100,450 noenhanced
set output "$png"
set multiplot layout 1,2 title "mpifit scaling$([ "${EMULATED:-0}" = 1 ] && echo " (emulated nodes: $(cat "${MF_EMU_DIR:-/run/mpifit-emu}/rate" 2>/dev/null || echo '?') links)")"
set xlabel "ranks"; set xtics 1; set key left top; set grid
set ylabel "images/s (all ranks)"
plot for [m in "weak strong"] for [o in "true false"] "$csv" using (strcol(1) eq m && strcol(2) eq o ? \$3 : NaN):6 \
     with linespoints title m." overlap ".o
set ylabel "parallel efficiency"; set yrange [0:1.1]; set key left bottom
plot for [m in "weak strong"] for [o in "true false"] "$csv" using (strcol(1) eq m && strcol(2) eq o ? \$3 : NaN):7 \
     with linespoints title m." overlap ".o
unset multiplot
GP
  echo "plotted: $png"
else
  echo "scaling.sh: gnuplot not found: no plot (apt-get install gnuplot-nox)" >&2
fi
