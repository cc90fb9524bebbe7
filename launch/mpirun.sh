#!/usr/bin/env bash
# mpirun.sh: data-parallel training with Open MPI on one node or a few.
#   launch/mpirun.sh NP CONFIG [mpifit train options...]
#   HOSTS=node1:2,node2:2 launch/mpirun.sh 4 configs/beans_mobilenetv2.ini
# One rank per core here (ranks x [dist] threads <= cores): every rank trains
# on its own shard of each global batch of batch_size x NP images, gradients
# are averaged, rank 0 prints and writes [output] dir.
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:?usage: launch/mpirun.sh NP CONFIG [options]}
config=${2:?usage: launch/mpirun.sh NP CONFIG [options]}
shift 2
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh
args=(-np "$np" --bind-to core --map-by core)
[ -n "${HOSTS:-}" ] && args+=(--host "$HOSTS")
[ "$np" -gt "$(nproc)" ] && [ -z "${HOSTS:-}" ] && args+=(--oversubscribe)
threads=${THREADS:-1}
exec mpirun "${args[@]}" -x OMP_NUM_THREADS="$threads" \
     ./build/bin/mpifit train "$config" --set dist.threads="$threads" "$@"
