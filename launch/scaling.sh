#!/usr/bin/env bash
# scaling.sh: the same training step at 1, 2, ... N ranks, weak and strong
# scaling, gradient allreduce overlapped with backward and not; then, at N
# ranks, the overlap report: overlap off and on (and 16-bit compression),
# alternated, with the share of the allreduce time that overlap takes out of
# the step, against an alpha-beta model of the allreduce and against an
# estimate of the most it can hide on these cores (`mpifit bench --comm`: how
# much the exchange slows the compute beside it). Prints the tables,
# writes them as CSV and plots them (PNG beside the CSV, with gnuplot).
#   launch/scaling.sh [MAX_RANKS] [CSV]        defaults: nproc, runs/scaling.csv
# Every point is `mpifit bench` (training steps on in-memory synthetic batches:
# no input pipeline in the way) and prints the median step's split: forward,
# backward, exposed allreduce wait, optimizer.
# Environment: MPIFIT (the binary; default build/bin/mpifit), CONFIG (default configs/quickstart.ini), BATCH (per rank, weak; 16),
# STEPS (timed steps per point; 8), WARMUP (2), THREADS (per rank; 1), EXTRA (more
# --set arguments), REPS (runs of each overlap-report setting, alternated; 3),
# COMPRESS (the [dist] compress modes in the overlap report; "none"),
# RATE (link Gbit/s for the model; default: the emulated links' rate, else the
# bandwidth a 2-rank allreduce reaches), EMULATED=1: run the ranks on the
# emulated nodes of launch/emulate_nodes.sh (up them first; one rank per node,
# Open MPI over the shaped TCP links).
# Weak scaling keeps the per-rank batch; strong scaling keeps the global batch
# (BATCH x MAX_RANKS) and divides it over the ranks. Efficiency is
# img/s(N) / (N x img/s(1)) for the same mode.
# The model: a ring allreduce of G bytes over p ranks takes
# T = 2 (p - 1) alpha + 2 (p - 1) / p x G / beta, alpha the ping-pong latency,
# beta the link bandwidth; model_step = compute + T without overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-$(nproc)}
csv=${2:-runs/scaling.csv}
config=$(realpath "${CONFIG:-configs/quickstart.ini}")
batch=${BATCH:-16}
steps=${STEPS:-8}
warmup=${WARMUP:-2}
threads=${THREADS:-1}
reps=${REPS:-3}
compress=${COMPRESS:-none}
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh
mpifit=${MPIFIT:-./build/bin/mpifit}
[ -x "$mpifit" ] || { echo "scaling.sh: build first (./launch/quickstart.sh or cmake --build build)" >&2; exit 1; }
mpifit=$(realpath "$mpifit")
mkdir -p "$(dirname "$csv")"
ocsv=${csv%.csv}-overlap.csv

launcher() {  # launcher NP: the command that starts NP ranks
  if [ "${EMULATED:-0}" = 1 ]; then
    echo "./launch/emulate_nodes.sh run $1"
  elif [ "$1" -gt "$(nproc)" ]; then
    echo "mpirun -np $1 --oversubscribe --bind-to none -x OMP_NUM_THREADS=$threads"
  else
    echo "mpirun -np $1 --bind-to none -x OMP_NUM_THREADS=$threads"
  fi
}

# bench NP BATCH OVERLAP COMPRESS -> "img_per_s step fwd bwd wait opt grad_mb wait_least"
# (wait: rank 0's; wait_least: each step's least wait of any rank, the exchange
# without waiting for a slower rank)
bench() {
  local line
  # shellcheck disable=SC2046,SC2086
  line=$(OMP_NUM_THREADS="$threads" $(launcher "$1") "$mpifit" bench "$config" \
    --set data.batch_size="$2" --set dist.threads="$threads" --set dist.overlap="$3" \
    --set dist.compress="$4" ${EXTRA:-} --steps "$steps" --warmup "$warmup" 2>&1 | grep '^RESULT' || true)
  [ -n "$line" ] || { echo "scaling.sh: mpifit bench at $1 ranks (overlap $3, compress $4) printed no RESULT" >&2; return 1; }
  echo "$line" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["img_per_s"], v["step_ms"], v["fwd_ms"], v["bwd_ms"], v["allreduce_ms"], v["opt_ms"], v["grad_mb"],
      v["wait_least_ms"] }'
}

# kv KEY LINE: the value of KEY=value in a RESULT line
kv() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# model_ms P BYTES: the alpha-beta allreduce time in ms (0 for one rank)
model_ms() {
  awk -v p="$1" -v g="$2" -v a="$alpha_us" -v b="$beta_gbit" \
    'BEGIN { if (p < 2 || b <= 0) { print 0; exit } printf "%.1f", (2 * (p - 1) * a * 1e-6 + 2 * (p - 1) / p * g * 8 / (b * 1e9)) * 1e3 }'
}

# ---- the network as MPI sees it: alpha and beta for the model
alpha_us=0 beta_gbit=0 grad_bytes=0 est=-
if [ "$max" -ge 2 ]; then
  read -r _ _ _ _ _ _ gmb _ < <(bench 2 "$batch" true none)
  grad_bytes=$(awk -v m="$gmb" 'BEGIN { printf "%d", m * 1048576 }')
  [ "$grad_bytes" -gt 0 ] || grad_bytes=4
  # shellcheck disable=SC2046
  commout=$($(launcher 2) "$mpifit" bench --comm --bytes "$grad_bytes" --steps 10 2>&1 || true)
  comm=$(grep '^RESULT impl=mpifit mode=comm ' <<<"$commout" || true)
  ovl=$(grep '^RESULT impl=mpifit mode=comm_overlap ' <<<"$commout" || true)
  if [ -z "$comm" ] || [ -z "$ovl" ]; then
    echo "$commout" >&2
    echo "scaling.sh: mpifit bench --comm printed no RESULT" >&2
    exit 1
  fi
  # what the exchange costs the compute beside it: the most overlap can hide here
  est=$(awk -v b="$(kv hide_est "$ovl")" 'BEGIN { printf "%.0f%%", 100 * b }')
  alpha_us=$(kv latency_us "$comm")
  rate=${RATE:-}
  if [ -z "$rate" ] && [ "${EMULATED:-0}" = 1 ]; then
    # tc's notation: 1gbit, 500mbit, 100kbit
    rate=$(awk '{ r = $1; u = 1; if (r ~ /gbit$/) u = 1; else if (r ~ /mbit$/) u = 1e-3; else if (r ~ /kbit$/) u = 1e-6;
                 sub(/[a-z]+$/, "", r); print r * u }' "${MF_EMU_DIR:-/run/mpifit-emu}/rate" 2>/dev/null || true)
  fi
  [ -n "$rate" ] || rate=$(kv busbw_gbit "$comm")
  beta_gbit=$rate
  if [ -n "${RATE:-}" ]; then src=RATE; elif [ "${EMULATED:-0}" = 1 ]; then src="emulated links"; else src=measured; fi
  printf 'network: alpha %s us (ping-pong), beta %s Gbit/s (%s); gradients %s bytes per step; MPI allreduce of them: %s\n' \
    "$alpha_us" "$beta_gbit" "$src" \
    "$grad_bytes" "$(kv allreduce_ms "$comm") ms best, $(kv allreduce_med_ms "$comm") ms median"
  printf 'overlap cost (2 ranks): compute slowed %s ms (mean of the ranks), %s ms on the rank losing most, beside a %s ms allreduce: overlap can hide about %s at most here (estimate)\n' \
    "$(kv cost_ms "$ovl")" "$(kv lost_max_ms "$ovl")" "$(kv exchange_ms "$ovl")" "$est"
fi

# ---- the scaling table
echo "mode,overlap,ranks,batch_per_rank,global_batch,img_per_s,efficiency,step_ms,fwd_ms,bwd_ms,wait_ms,opt_ms,model_allreduce_ms,model_img_per_s" > "$csv"
printf '%-6s %-7s %5s %6s %6s %9s %5s | %7s %6s %6s %6s %5s | %9s %9s\n' mode overlap ranks b/rank global img/s eff \
  step fwd bwd wait opt model_ar model_img
for mode in weak strong; do
  for ov in true false; do
    base="" step1="" b1=""
    for ((np = 1; np <= max; np++)); do
      if [ "$mode" = weak ]; then b=$batch; else b=$(( batch * max / np )); fi
      [ "$b" -ge 1 ] || continue
      read -r ips step fwd bwd wait opt _ < <(bench "$np" "$b" "$ov" none)
      [ -n "$base" ] || { base=$ips step1=$step b1=$b; }
      eff=$(awk -v r="$ips" -v b="$base" -v n="$np" 'BEGIN { printf "%.2f", r / (n * b) }')
      mar=$(model_ms "$np" "$grad_bytes")
      # the model's step: one rank's step for this per-rank batch plus the whole allreduce
      mips=$(awk -v s="$step1" -v b="$b" -v b1="$b1" -v t="$mar" -v g=$((b * np)) \
        'BEGIN { printf "%.1f", g * 1000 / (s * b / b1 + t) }')
      printf '%-6s %-7s %5d %6d %6d %9.1f %5s | %7.1f %6.1f %6.1f %6.1f %5.1f | %9s %9s\n' "$mode" "$ov" "$np" "$b" \
        $((b * np)) "$ips" "$eff" "$step" "$fwd" "$bwd" "$wait" "$opt" "$mar" "$mips"
      echo "$mode,$ov,$np,$b,$((b * np)),$ips,$eff,$step,$fwd,$bwd,$wait,$opt,$mar,$mips" >> "$csv"
    done
  done
done
echo "written: $csv (model columns: alpha-beta allreduce, ms, and the images/s it predicts without overlap)"

# ---- the overlap report at max ranks: every setting REPS times, alternated
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
if [ "$max" -ge 2 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for ((r = 1; r <= reps; r++)); do
    for c in $compress; do
      for ov in false true; do
        bench "$max" "$batch" "$ov" "$c" >> "$tmp/$c-$ov"
      done
    done
  done
  mar=$(model_ms "$max" "$grad_bytes")
  echo
  echo "overlap at $max ranks, batch $batch per rank: medians of $reps alternated runs (ms)"
  echo "compress,overlap,runs,step_ms,fwd_ms,bwd_ms,wait_ms,wait_least_ms,opt_ms,model_allreduce_ms,hidden_share,wait_gone_share,bwd_growth_ms,hide_estimate" > "$ocsv"
  printf '%-8s %-7s %8s %7s %7s %8s %7s %6s %9s %7s %9s %8s %6s\n' compress overlap step fwd bwd wait least opt model_ar hidden \
    wait_gone bwd_grow est
  for c in $compress; do
    # 16-bit compression halves the bytes the model sends
    mc=$(awk -v t="$mar" -v c="$c" 'BEGIN { printf "%.1f", c == "none" ? t : t / 2 }')
    declare -A med=()
    for ov in false true; do
      for k in 2 3 4 5 6 8; do
        med[$ov$k]=$(awk -v k="$k" '{ print $k }' "$tmp/$c-$ov" | median)
      done
    done
    # hidden: the part of the allreduce time (the least wait of any rank
    # without overlap: rank 0's wait also holds its waiting for a slower rank)
    # that overlap takes out of the step; wait_gone: the part of that wait no
    # longer after backward; bwd_grow: what backward gains with overlap (the
    # exchange's own CPU work on the cores that compute): hidden is about
    # wait_gone - bwd_grow / wait
    hidden=$(awk -v off="${med[false2]}" -v on="${med[true2]}" -v w="${med[false8]}" \
      'BEGIN { if (w > 0) printf "%.0f%%", 100 * (off - on) / w; else print "-" }')
    gone=$(awk -v off="${med[false8]}" -v on="${med[true8]}" \
      'BEGIN { if (off > 0) printf "%.0f%%", 100 * (off - on) / off; else print "-" }')
    grow=$(awk -v off="${med[false4]}" -v on="${med[true4]}" 'BEGIN { printf "%.1f", on - off }')
    for ov in false true; do
      h="" g="" b="" hb=""
      [ "$ov" = true ] && h=$hidden g=$gone b=$grow
      # the estimate is measured on an uncompressed exchange
      [ "$ov" = true ] && [ "$c" = none ] && hb=$est
      printf '%-8s %-7s %8s %7s %7s %8s %7s %6s %9s %7s %9s %8s %6s\n' "$c" "$ov" "${med[${ov}2]}" "${med[${ov}3]}" \
        "${med[${ov}4]}" "${med[${ov}5]}" "${med[${ov}8]}" "${med[${ov}6]}" "$mc" "$h" "$g" "$b" "$hb"
      echo "$c,$ov,$reps,${med[${ov}2]},${med[${ov}3]},${med[${ov}4]},${med[${ov}5]},${med[${ov}8]},${med[${ov}6]},$mc,$h,$g,$b,$hb" >> "$ocsv"
    done
    unset med
  done
  echo "wait = rank 0's allreduce wait after backward; least = each step's least wait of any rank (the exchange alone);"
  echo "hidden = (step without overlap - step with) / least without overlap; wait_gone = the share of"
  echo "that wait gone from after backward; bwd_grow = backward's growth with overlap, ms; model_ar = the alpha-beta time;"
  echo "est = 1 - what the exchange costs the compute beside it / its time (bench --comm, 2 ranks): an estimate of the most"
  echo "overlap can hide on these cores"
  echo "written: $ocsv"
fi

# the plot: images/s and parallel efficiency against ranks, one line per
# mode and overlap setting, and the model's images/s without overlap
# (gnuplot-nox, which `mpifit plot` uses too)
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
     with linespoints title m." overlap ".o, \
     for [m in "weak strong"] "$csv" using (strcol(1) eq m && strcol(2) eq "false" ? \$3 : NaN):14 \
     with lines dashtype 2 title m." alpha-beta model, no overlap"
set ylabel "parallel efficiency"; set yrange [0:1.1]; set key left bottom
plot for [m in "weak strong"] for [o in "true false"] "$csv" using (strcol(1) eq m && strcol(2) eq o ? \$3 : NaN):7 \
     with linespoints title m." overlap ".o
unset multiplot
GP
  echo "plotted: $png"
else
  echo "scaling.sh: gnuplot not found: no plot (apt-get install gnuplot-nox)" >&2
fi
