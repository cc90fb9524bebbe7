#!/usr/bin/env bash
# quickstart.sh MPIFIT WORK [MIN_VAL_ACCURACY]: launch/quickstart.sh without its
# package and build steps (MPIFIT=...), its dataset and run under WORK: it must
# end with validation accuracy >= MIN_VAL_ACCURACY (default 0.9) on its
# synthetic data, say so in its summary and in history.csv alike, leave the
# files it names, and the predict command it prints must work. About a minute
# on 2 idle cores (writing the dataset included).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/assert.sh
. "$here/assert.sh"
mpifit=$1 work=$2 min=${3:-0.9}
root=$(cd "$here/../.." && pwd)
mkdir -p "$work"
rm -rf "$work/run" "$work/run-np2"
log=$work/quickstart.log
set +e
MPIFIT=$mpifit DATA=$work/data RUN=$work/run "$root/launch/quickstart.sh" --set train.verbose=2 >"$log" 2>&1
rc=$?
set -e
cat "$log"
expect_status 0 "$rc" "launch/quickstart.sh"

# "quickstart: validation accuracy 0.9600 after 20 epochs on 1 rank(s); ..."
expect_grep '^quickstart: validation accuracy [0-9.]* after 20 epochs on 1 rank' "$log"
acc=$(sed -n 's/^quickstart: validation accuracy \([0-9.]*\) after.*/\1/p' "$log")
awk -v a="$acc" -v m="$min" 'BEGIN { exit !(a + 0 >= m + 0) }' ||
  fail "validation accuracy $acc after the quickstart's 20 epochs, expected >= $min"
# the last row of history.csv: epoch,loss,accuracy,val_loss,val_accuracy
expect_file "$work/run/history.csv"
last=$(tail -n 1 "$work/run/history.csv" | cut -d, -f5)
awk -v a="$acc" -v b="$last" 'BEGIN { d = a - b; exit !(d < 0.00006 && d > -0.00006) }' ||
  fail "the summary says $acc, history.csv's last val_accuracy is $last"
echo "quickstart: validation accuracy $acc (>= $min), history.csv $last"

expect_file "$work/run/weights.h5"
expect_file "$work/run/metrics.h5"
expect_grep "^  weights      $work/run/weights.h5" "$log"
if command -v gnuplot >/dev/null 2>&1; then
  expect_file "$work/run/curves.png"
  expect_grep "^  curves       $work/run/curves.png\$" "$log"
else
  expect_grep '^  curves       not drawn: needs gnuplot' "$log"
fi

# the printed predict command, run as printed from the repository root: one
# line, the image's path, a class name and three probabilities
cmd=$(grep -A1 '^  # classify one photo' "$log" | tail -n 1)
case $cmd in "  $mpifit predict "*) ;; *) fail "no predict command after '# classify one photo': $cmd" ;; esac
out=$(cd "$root" && eval "$cmd")
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "predict printed $(wc -l <<<"$out") lines: $out"
grep -Eq "^$work/data/validation/bean_rust/bean_rust_0000\\.jpg	(angular_leaf_spot|bean_rust|healthy)(	[0-9.]+){3}\$" <<<"$out" ||
  fail "predict printed: $out"
expect_grep "^  $mpifit train configs/quickstart.ini .*--resume auto --set train.epochs=30\$" "$log"
expect_grep '^  launch/mpirun.sh 2 configs/quickstart.ini ' "$log"
echo "quickstart: summary, files and predict command as printed"
