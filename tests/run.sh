#!/usr/bin/env bash
# run.sh: install what is missing, build Release and run the whole CTest suite,
# then build a second tree with AddressSanitizer + UndefinedBehaviorSanitizer and
# run the same suite there, then build the libFuzzer targets with clang and
# fuzz each briefly (tests/fuzz/). Exit status non-zero on any failure.
#   ./tests/run.sh             all three trees
#   MF_SKIP_ASAN=1 ./tests/run.sh   no sanitizer tree (quicker, local use)
#   MF_SKIP_FUZZ=1 ./tests/run.sh   no fuzz tree
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./launch/install_deps.sh
# shellcheck source=../launch/mpi_env.sh
. ./launch/mpi_env.sh

jobs=$(nproc 2>/dev/null || echo 2)

run_tree() {  # run_tree DIR [cmake args...]
  local dir=$1; shift
  echo "== configure $dir"
  cmake -S "$root" -B "$dir" -DMF_WERROR=ON "$@" >"$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log"; return 1; }
  echo "== build $dir"
  cmake --build "$dir" -j "$jobs"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600)
}

run_tree build -DCMAKE_BUILD_TYPE=Release

if [ "${MF_SKIP_ASAN:-0}" != 1 ]; then
  # Leaks inside Open MPI, hwloc and friends are theirs, not ours; mpifit's own
  # buffers are counted by mf_alloc and checked by the tests themselves.
  export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run_tree build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMF_SANITIZE=ON
fi

if [ "${MF_SKIP_FUZZ:-0}" != 1 ]; then
  # libFuzzer targets (tests/fuzz/README.md): clang, the library with ASan,
  # UBSan and coverage; only the fuzz targets are built, and each CTest runs
  # its regression inputs, then fuzzes for MF_FUZZ_SECONDS (20) seconds.
  echo "== configure build-fuzz"
  cmake -S "$root" -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DMF_FUZZ=ON -DMF_BUILD_TESTS=OFF \
        -DMF_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >build-fuzz.configure.log 2>&1 || {
    cat build-fuzz.configure.log; exit 1; }
  echo "== build build-fuzz"
  cmake --build build-fuzz --target fuzz -j "$jobs"
  echo "== test build-fuzz"
  (cd build-fuzz && ctest -L fuzz --output-on-failure -j "$jobs")
fi
echo "== all tests passed"
