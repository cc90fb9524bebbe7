#!/usr/bin/env bash
# run_fuzz.sh EXE SRC_DIR TARGET WORK_DIR SECONDS: one fuzz target's CTest
# (fuzz.TARGET, label fuzz).
#   1. every input of SRC_DIR/regress/TARGET/ runs once: crashes found before
#      and fixed since must stay fixed;
#   2. libFuzzer runs for SECONDS from a copy of SRC_DIR/corpus/TARGET/ (and
#      the regression inputs) in WORK_DIR, in fork mode so that a crash does
#      not end the run: new inputs and failing ones land in WORK_DIR, never in
#      the source tree;
#   3. triage.py sorts the failing inputs: a bug of mpifit's fails the test;
#      libhdf5's own bugs on malformed files, and mpifit bugs already reported
#      (known_bugs.txt), are counted and listed.
# MF_FUZZ_SEED picks libFuzzer's seed (default 1: the same mutations every
# run, so a result reproduces); MF_FUZZ_SEED=0 lets libFuzzer choose.
set -euo pipefail
exe=$1 src=$2 target=$3 work=$4 seconds=$5
shopt -s nullglob

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
# the MPI runtime's leaks (../lsan.supp) and libhdf5's own (lsan_hdf5.supp)
cat "$src/../lsan.supp" "$src/lsan_hdf5.supp" > "$work/lsan.supp"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$work/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# a smaller quarantine: the HDF5 targets open a file per input, and recycling
# freed memory sooner saves page faults (use-after-free is still caught)
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
# -close_fd_mask=3: the readers' warnings would flood the log; libFuzzer and
# the sanitizers still report on stderr.
# -timeout=3: an input takes milliseconds; one that takes seconds is a finding
limits=(-rss_limit_mb=2048 -timeout=3 -close_fd_mask=3)

regress=("$src/regress/$target"/*)
if [ ${#regress[@]} -gt 0 ]; then
  echo "== $target: ${#regress[@]} regression inputs"
  "$exe" "${limits[@]}" "${regress[@]}" 2>"$work/regress.log" || {
    cat "$work/regress.log"
    echo "fuzz.$target: a regression input of $src/regress/$target fails again" >&2
    exit 1
  }
fi

cp "$src/corpus/$target"/* "$work/corpus/"
if [ ${#regress[@]} -gt 0 ]; then
  cp "${regress[@]}" "$work/corpus/"
fi
seed=${MF_FUZZ_SEED:-1}
echo "== $target: fuzzing for $seconds s from $(find "$work/corpus" -type f | wc -l) inputs (seed $seed)"
# in fork mode libFuzzer exits non-zero when it saw a crash, ignored or not:
# the triage below decides; a run that never got going has no stats line
"$exe" "${limits[@]}" -seed="$seed" -max_total_time="$seconds" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 \
  -ignore_ooms=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/fuzz.log" 2>&1 || true
if ! grep -E '^#[0-9]+: cov' "$work/fuzz.log" | tail -n 1; then
  tail -n 40 "$work/fuzz.log"
  echo "fuzz.$target: libFuzzer did not run" >&2
  exit 1
fi

found=("$work/artifacts"/*)
if [ ${#found[@]} -eq 0 ]; then
  echo "fuzz.$target: no failing input"
  exit 0
fi
echo "== $target: triage of ${#found[@]} failing inputs"
if ! "$src/triage.py" --timeout 3 --known "$src/known_bugs.txt" "$exe" "${found[@]}" | tee "$work/triage.txt"; then
  echo "fuzz.$target: mpifit fails on an input (class mpifit above): tests/fuzz/README.md says what to do" >&2
  exit 1
fi
awk '{print $1}' "$work/triage.txt" | sort | uniq -c | sed 's/^/  /'
echo "fuzz.$target: no new bug of mpifit's"
