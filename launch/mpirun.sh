#!/usr/bin/env bash
# mpirun.sh: data-parallel training with Open MPI on one node or a few.
#   launch/mpirun.sh NP CONFIG [mpifit train options...]
#   HOSTS=node1:2,node2:2 launch/mpirun.sh 4 configs/beans_mobilenetv2.ini
# THREADS=N: [dist] threads per rank (default 1), each rank bound to N cores
# of its own (ranks x threads <= cores). Every rank trains on its own shard of
# each global batch of batch_size x NP images, gradients are averaged, rank 0
# prints and writes [output] dir. MPIFIT=path: another mpifit binary.
#
# Exit status: mpifit's. 0 done; 75 ([train] preempted_exit_status) preempted
# with its checkpoint written: run the same command with --resume auto to
# continue - a PBS or cron wrapper resubmits on 75 and only on 75; anything
# else is a failure.
# Preemption: SIGTERM or SIGUSR1 to this script is passed to mpirun as
# SIGUSR1, which Open MPI forwards to every rank (SIGTERM sent to mpirun
# itself makes it kill the ranks within ~2 s and exit 1, whatever they did:
# tested with Open MPI 4.1, see launch/PBS.md). STOP_AFTER=SECONDS sends that
# SIGUSR1 after SECONDS (a walltime minus the time a step and a checkpoint
# take), so the job stops itself before the scheduler kills it.
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:?usage: launch/mpirun.sh NP CONFIG [options]}
config=${2:?usage: launch/mpirun.sh NP CONFIG [options]}
shift 2
# shellcheck source=mpi_env.sh
. ./launch/mpi_env.sh
mpifit=${MPIFIT:-./build/bin/mpifit}
threads=${THREADS:-1}
# each rank bound to its own core, or to THREADS cores of its own
args=(-np "$np" --bind-to core)
if [ "$threads" -gt 1 ]; then args+=(--map-by "slot:PE=$threads"); else args+=(--map-by core); fi
[ -n "${HOSTS:-}" ] && args+=(--host "$HOSTS")
[ "$np" -gt "$(nproc)" ] && [ -z "${HOSTS:-}" ] && args+=(--oversubscribe)
preempted_status=${PREEMPTED_STATUS:-75}

pid=
signalled=0
# shellcheck disable=SC2317 # (runs from the trap)
stop() {
  signalled=1
  echo "mpirun.sh: $1: asking every rank to checkpoint and stop (SIGUSR1 to mpirun)" >&2
  [ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null
  return 0
}
trap 'stop SIGTERM' TERM
trap 'stop SIGUSR1' USR1

mpirun "${args[@]}" -x OMP_NUM_THREADS="$threads" \
  "$mpifit" train "$config" --set dist.threads="$threads" \
  --set train.preempted_exit_status="$preempted_status" "$@" &
pid=$!
timer=
if [ -n "${STOP_AFTER:-}" ]; then
  (sleep "$STOP_AFTER" && kill -USR1 $$) &
  timer=$!
fi
# a trapped signal interrupts `wait`: wait again until mpirun has ended
rc=
while :; do
  signalled=0
  set +e
  wait "$pid"
  st=$?
  set -e
  if [ "$st" = 127 ] && [ -n "$rc" ]; then break; fi # collected before the signal
  rc=$st
  [ "$signalled" = 1 ] || break
done
[ -z "$timer" ] || kill "$timer" 2>/dev/null || true
if [ "$rc" = "$preempted_status" ]; then
  echo "mpirun.sh: preempted, checkpoint written: continue with --resume auto (exit $rc)" >&2
fi
exit "$rc"
