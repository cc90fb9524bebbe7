#!/usr/bin/env bash
# campaign.sh BUILD_DIR TARGET SECONDS OUT_DIR: a long fuzzing run of one
# target (tests/fuzz/README.md), then the triage of everything it found.
#   OUT_DIR/corpus     the growing corpus (starts from tests/fuzz/corpus/TARGET;
#                      run again to continue from where it stopped)
#   OUT_DIR/artifacts  failing inputs; OUT_DIR/triage.txt says whose bug each is
#   OUT_DIR/fuzz.log   libFuzzer's output (of the last run)
#   OUT_DIR/history.txt  the summary line of every run, dated
# An input takes 1-10 ms; -timeout=1 (libFuzzer's smallest) because every
# hang inside libhdf5 (its global-heap loop) costs the whole limit.
# One line at the end: target, executions, seconds, executions per second, and
# the failing inputs by class. At nice 19, one fuzzing process (fork mode:
# a crash does not end the run). MF_FUZZ_SEED as in run_fuzz.sh (default 0:
# libFuzzer picks one).
set -euo pipefail
# the whole script in one block, which bash reads before it runs any of it:
# a campaign runs for hours, and bash reads a plain script as it goes, so an
# edit of this file (a git checkout) would be executed half-way through it
{
src=$(cd "$(dirname "$0")" && pwd)
build=$1 target=$2 seconds=$3 out=$4
exe=$build/tests/fuzz/fuzz_$target
shopt -s nullglob
mkdir -p "$out/corpus" "$out/artifacts"
if [ -z "$(ls -A "$out/corpus")" ]; then
  cp "$src/corpus/$target"/* "$out/corpus/"
  regress=("$src/regress/$target"/*)
  if [ ${#regress[@]} -gt 0 ]; then
    cp "${regress[@]}" "$out/corpus/"
  fi
fi
cat "$src/../lsan.supp" "$src/lsan_hdf5.supp" > "$out/lsan.supp"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$out/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
# the tiny models' math on one thread: OpenBLAS's idle threads only cost
# yields and TLB shootdowns on every munmap (8 % of an input's time)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# HDF5 keeps the blocks it frees (fuzz_common.h): a third more inputs per second
export MF_FUZZ_H5_FREE_LISTS=${MF_FUZZ_H5_FREE_LISTS:-1}
start=$(date +%s)
nice -n 19 "$exe" -rss_limit_mb=2048 -timeout=1 -close_fd_mask=3 -seed="${MF_FUZZ_SEED:-0}" \
  -max_total_time="$seconds" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" >"$out/fuzz.log" 2>&1 || true
took=$(( $(date +%s) - start ))
last=$(grep -E '^#[0-9]+: cov' "$out/fuzz.log" | tail -n 1)
execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
# triage (a rerun or two each) of at most MF_TRIAGE_MAX (100) of them, a
# random sample when there are more: libhdf5's own crashes come by the hundred
found=("$out/artifacts"/*)
: > "$out/triage.txt"
if [ ${#found[@]} -gt 0 ]; then
  mapfile -t sample < <(printf '%s\n' "${found[@]}" | shuf -n "${MF_TRIAGE_MAX:-100}")
  nice -n 19 "$src/triage.py" --timeout 3 --known "$src/known_bugs.txt" "$exe" "${sample[@]}" > "$out/triage.txt" || true
fi
classes=$(awk '{print $1}' "$out/triage.txt" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')
echo "$target: ${execs:-0} executions in $took s, $(( ${execs:-0} / (took > 0 ? took : 1) )) exec/s;" \
     "${#found[@]} failing inputs, of $(wc -l < "$out/triage.txt") triaged: ${classes:-none}" | tee "$out/summary.txt"
# every run's line, with its date, for the totals over several runs
echo "$(date -u +%FT%TZ) $(cat "$out/summary.txt")" >> "$out/history.txt"
echo "  last: $last"
exit 0
}
