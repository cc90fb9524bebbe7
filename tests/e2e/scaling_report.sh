#!/usr/bin/env bash
# scaling_report.sh MPIFIT SRC_DIR: launch/scaling.sh end to end at 1 and 2
# ranks on shared memory, tiny and short (the figures mean nothing here): the
# scaling table for both modes and overlap settings, the overlap report with
# its hidden share and the estimate from the exchange's cost, the CSVs and the plot. A changed `mpifit bench` RESULT line
# or a broken column would fail here, not in a user's scaling run.
set -euo pipefail
mpifit=$1 src=$2
# shellcheck source=assert.sh
. "$src/tests/e2e/assert.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log=$out/scaling.log
status=0
MPIFIT=$mpifit STEPS=2 WARMUP=1 REPS=1 BATCH=4 "$src/launch/scaling.sh" 2 "$out/s.csv" > "$log" 2>&1 || status=$?
cat "$log"
expect_status 0 "$status" "launch/scaling.sh"
expect_grep '^mode,overlap,ranks,batch_per_rank,global_batch,img_per_s,efficiency,step_ms' "$out/s.csv"
# one row per mode, overlap setting and rank count, each with positive images/s
rows=$(awk -F, 'NR > 1 && $6 > 0 && $8 > 0' "$out/s.csv" | wc -l)
[ "$rows" -eq 8 ] || fail "s.csv has $rows rows with positive img/s and step time, expected 8 (weak/strong x overlap x 1, 2 ranks)"
for m in weak strong; do
  for o in true false; do
    for r in 1 2; do
      awk -F, -v m=$m -v o=$o -v r=$r '$1 == m && $2 == o && $3 == r { f = 1 } END { exit !f }' "$out/s.csv" ||
        fail "s.csv has no row for $m, overlap $o, $r ranks"
    done
  done
done
expect_grep '^compress,overlap,runs,step_ms,fwd_ms,bwd_ms,wait_ms,wait_least_ms,opt_ms,model_allreduce_ms,hidden_share,wait_gone_share,bwd_growth_ms,hide_estimate$' \
  "$out/s-overlap.csv"
expect_grep '^none,false,1,[0-9.]*,' "$out/s-overlap.csv"
expect_grep '^none,true,1,[0-9.]*,.*,-\?[0-9]*%,-\?[0-9]*%,-\?[0-9.]*,[0-9][0-9]*%$' "$out/s-overlap.csv"
# the exchange's cost to the compute beside it (bench --comm), and its estimate
expect_grep '^overlap cost (2 ranks): compute slowed -\?[0-9.]* ms (mean of the ranks), .* overlap can hide about [0-9]*% at most' "$log"
expect_grep '^overlap at 2 ranks, batch 4 per rank: medians of 1 alternated runs' "$log"
if command -v gnuplot > /dev/null; then
  expect_file "$out/s.png"
else
  echo "scaling_report: no gnuplot, the PNG is not checked"
fi
echo "scaling_report: OK"
