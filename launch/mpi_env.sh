# shellcheck shell=bash
# mpi_env.sh: source me. Open MPI refuses to run as root unless told to; set
# that only when we really are root (containers, CI), never for normal users.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
