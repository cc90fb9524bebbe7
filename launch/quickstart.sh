#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine to a trained model, with nothing
# to download: installs missing packages, builds Release into build/, writes the
# synthetic beans-like dataset (data/synthetic-beans, once) and trains
# MobileNetV2 (alpha 0.35, 96 px) on it with configs/quickstart.ini.
#   ./launch/quickstart.sh             1 rank
#   NP=2 ./launch/quickstart.sh        2 ranks under mpirun
#   ./launch/quickstart.sh --set train.epochs=2    extra arguments go to `mpifit train`
set -euo pipefail
cd "$(dirname "$0")/.."

./launch/install_deps.sh
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
./build/bin/mpifit selfcheck

if [ ! -f data/synthetic-beans/.complete ]; then
  ./build/bin/mpifit make-dataset synthetic-beans data/synthetic-beans --train 300 --validation 60
  touch data/synthetic-beans/.complete
fi

np=${NP:-1}
if [ "$np" -gt 1 ]; then
  over=()
  [ "$np" -gt "$(nproc)" ] && over=(--oversubscribe)
  mpirun -np "$np" "${over[@]}" ./build/bin/mpifit train configs/quickstart.ini "$@"
else
  ./build/bin/mpifit train configs/quickstart.ini "$@"
fi
