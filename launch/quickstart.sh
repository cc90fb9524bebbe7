#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine to a running mpifit.
# Installs missing packages, builds Release into build/, then runs the main job.
# Until the trainer lands (issue #4) the "main job" is the CLI's self-check on
# every rank: BLAS, MPI, HDF5, TurboJPEG and a finite-difference gradient check.
#   ./launch/quickstart.sh         1 rank
#   NP=2 ./launch/quickstart.sh    2 ranks under mpirun
set -euo pipefail
cd "$(dirname "$0")/.."

./launch/install_deps.sh
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"

np=${NP:-1}
if [ "$np" -gt 1 ]; then
  over=()
  [ "$np" -gt "$(nproc)" ] && over=(--oversubscribe)
  mpirun -np "$np" "${over[@]}" ./build/bin/mpifit selfcheck
else
  ./build/bin/mpifit selfcheck
fi
