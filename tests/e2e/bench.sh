#!/usr/bin/env bash
# bench.sh MPIFIT CONFIG WORK_DIR [LAUNCHER...]: `mpifit bench` on a tiny model
# prints its RESULT line with positive images/s, GFLOP/s and peak RSS; without
# a launcher `mpifit bench --gemm` prints its sgemm lines too. With a launcher
# (mpiexec -n 2 ...) the line must say ranks=2. No speed thresholds: the
# machine is shared.
set -euo pipefail
mpifit=$1 config=$2 work=$3
shift 3
launcher=("$@")
rm -rf "$work" && mkdir -p "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_grep REGEX FILE
expect_grep() { grep -Eq -- "$1" "$2" || fail "no line matching '$1' in $2"; }
# expect_positive KEY LINE: KEY=value in LINE is a number > 0
expect_positive() {
  local v
  v=$(tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p")
  awk -v v="$v" 'BEGIN { exit !(v ~ /^[0-9]+(\.[0-9]+)?$/ && v + 0 > 0) }' || fail "$1='$v' is not > 0 in: $2"
}

"${launcher[@]}" "$mpifit" bench "$config" --set model.arch=mobilenet_v2 --set model.alpha=0.35 \
  --set model.input_size=32 --set data.batch_size=4 --set model.weights=none --set optimizer.name=sgd \
  --set optimizer.learning_rate=0.01 --set dist.threads=1 --warmup 2 --steps 2 > "$work/train.out" 2>&1 \
  || { cat "$work/train.out"; fail "mpifit bench exited non-zero"; }
cat "$work/train.out"
ranks=1
[ ${#launcher[@]} -gt 0 ] && ranks=2
expect_grep "^RESULT impl=mpifit mode=train ranks=$ranks threads=1 size=32 width=0.35 batch=4 frozen=0 img_per_s=" \
  "$work/train.out"
test "$(grep -c '^RESULT ' "$work/train.out")" -eq 1 || fail "not exactly one RESULT line (rank 0 only)"
line=$(grep '^RESULT impl=mpifit' "$work/train.out")
for key in img_per_s step_ms fwd_ms bwd_ms gflops rss_mb; do
  expect_positive "$key" "$line"
done
expect_grep ' deterministic=0 grad_mb=[0-9.]+ wait_least_ms=[0-9.]+$' "$work/train.out"
# the least wait of any rank is at most rank 0's
awk -v l="$(tr ' ' '\n' <<<"$line" | sed -n 's/^wait_least_ms=//p')" \
  -v w="$(tr ' ' '\n' <<<"$line" | sed -n 's/^allreduce_ms=//p')" 'BEGIN { exit !(l != "" && l + 0 <= w + 0) }' \
  || fail "wait_least_ms is not <= allreduce_ms in: $line"
# [output] trace: every rank's timeline of the timed steps, each layer's
# backward in it (and with 2 ranks each bucket's exchange)
"${launcher[@]}" "$mpifit" bench "$config" --set model.arch=mobilenet_v2 --set model.alpha=0.35 \
  --set model.input_size=32 --set data.batch_size=4 --set model.weights=none --set dist.threads=1 \
  --set output.trace=true --set output.dir="$work/trace" --warmup 1 --steps 2 > "$work/trace.out" 2>&1 \
  || { cat "$work/trace.out"; fail "mpifit bench with a trace exited non-zero"; }
expect_grep "^timeline of the timed steps: $work/trace/trace-rank\\*\\.json" "$work/trace.out"
test "$(tail -n 1 "$work/trace.out" | cut -c1-7)" = "RESULT " || fail "RESULT is not the last line with a trace"
for ((r = 0; r < ranks; r++)); do
  t=$work/trace/trace-rank$r.json
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$t" || fail "$t is not JSON"
  # 2 timed steps: the first and the last layer's backward twice each
  test "$(grep -c '"name": "Conv1", "cat": "backward"' "$t")" -eq 2 || fail "$t: not 2 backward spans of Conv1"
  test "$(grep -c '"name": "dense", "cat": "backward"' "$t")" -eq 2 || fail "$t: not 2 backward spans of dense"
  [ "$ranks" = 1 ] || expect_grep '"cat": "allreduce"' "$t"
done
# launch/compare_traces.py reads them: the timeline against itself differs nowhere
"$(dirname "$0")/../../launch/compare_traces.py" "$work/trace" "$work/trace" 5 > "$work/compare.out" \
  || { cat "$work/compare.out"; fail "compare_traces.py failed"; }
cat "$work/compare.out"
expect_grep "^A: $work/trace \\($((2 * ranks)) rank-steps\\)" "$work/compare.out"
expect_grep '^backward +\(all layers\) +[0-9.]+ +[0-9.]+ +\+0\.00$' "$work/compare.out"
# deterministic mode: the step timed whole; with 2 ranks it exchanges int64 sums
"${launcher[@]}" "$mpifit" bench "$config" --set model.arch=mobilenet_v2 --set model.alpha=0.35 \
  --set model.input_size=32 --set data.batch_size=4 --set model.weights=none --set optimizer.name=sgd \
  --set optimizer.learning_rate=0.01 --set dist.threads=1 --set dist.deterministic=true --set dist.chunk=2 \
  --warmup 1 --steps 2 > "$work/det.out" 2>&1 || { cat "$work/det.out"; fail "deterministic bench exited non-zero"; }
cat "$work/det.out"
expect_grep ' deterministic=2 grad_mb=[0-9.]+ wait_least_ms=[0-9.]+$' "$work/det.out"
expect_positive img_per_s "$(grep '^RESULT impl=mpifit' "$work/det.out")"
if [ "$ranks" = 2 ]; then
  expect_positive grad_mb "$line"
  expect_positive grad_mb "$(grep '^RESULT impl=mpifit' "$work/det.out")"
  # --comm: the link as MPI sees it, then what the exchange costs the compute beside it
  "${launcher[@]}" "$mpifit" bench --comm --bytes 1048576 --steps 3 > "$work/comm.out" 2>&1 \
    || { cat "$work/comm.out"; fail "mpifit bench --comm exited non-zero"; }
  cat "$work/comm.out"
  expect_grep '^RESULT impl=mpifit mode=comm ranks=2 bytes=1048576 latency_us=' "$work/comm.out"
  expect_grep '^  overlap can hide about +[0-9]+ % of the allreduce' "$work/comm.out"
  ovl=$(grep '^RESULT impl=mpifit mode=comm_overlap ranks=2 bytes=1048576 ' "$work/comm.out") \
    || fail "no comm_overlap RESULT line"
  expect_positive exchange_ms "$ovl"
  est=$(tr ' ' '\n' <<<"$ovl" | sed -n 's/^hide_est=//p')
  awk -v b="$est" 'BEGIN { exit !(b ~ /^[0-9.]+$/ && b >= 0 && b <= 1) }' || fail "hide_est='$est' not in [0, 1]"
  test "$(grep -c '^RESULT ' "$work/comm.out")" -eq 2 || fail "not exactly two RESULT lines from --comm (rank 0 only)"
fi

if [ ${#launcher[@]} -eq 0 ]; then
  # a frozen base: still one line, frozen=1
  "$mpifit" bench "$config" --set model.arch=mobilenet_v2 --set model.alpha=0.35 --set model.input_size=32 \
    --set data.batch_size=4 --set model.weights=none --set model.freeze_base=true --set dist.threads=1 \
    --warmup 1 --steps 2 > "$work/frozen.out" 2>&1 || { cat "$work/frozen.out"; fail "frozen bench exited non-zero"; }
  expect_grep '^RESULT impl=mpifit mode=train ranks=1 threads=1 size=32 width=0.35 batch=4 frozen=1 ' "$work/frozen.out"
  # a bad option is an error naming it
  if "$mpifit" bench "$config" --steps 0 > "$work/bad.out" 2>&1; then fail "--steps 0 was accepted"; fi
  expect_grep '^mpifit bench: --steps must be an integer >= 1, got .0.$' "$work/bad.out"
  "$mpifit" bench --gemm > "$work/gemm.out" 2>&1 || { cat "$work/gemm.out"; fail "mpifit bench --gemm exited non-zero"; }
  cat "$work/gemm.out"
  for t in 1 2; do
    expect_grep "^RESULT impl=openblas mode=sgemm threads=$t n=1024 gflops=" "$work/gemm.out"
    expect_positive gflops "$(grep "^RESULT impl=openblas mode=sgemm threads=$t n=1024 " "$work/gemm.out")"
  done
fi
echo "OK"
