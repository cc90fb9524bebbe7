#!/usr/bin/env bash
# slurm_preempt.sh MPIFIT DATA_DIR WORK_DIR MPIEXEC [PREFLAGS]: launch/slurm.sbatch
# under a real one-node Slurm (22.05) started here: munged, slurmctld and slurmd
# with a private key, config, ports, state, spool and logs, stopped by PID
# whatever happens. A 2-rank training (deterministic mode) is submitted and
#  a. preempted by `scancel --signal=USR1 --batch` (USR1 to the batch shell);
#  b. preempted by a job of a higher-priority partition (PreemptMode=REQUEUE,
#     GraceTime: SIGTERM to the tasks, not to the batch shell);
#  c. stopped by its time limit (--time=1 --signal=B:USR1@30);
#  f. `scancel --signal=TERM JOBID.0`: SIGTERM to the step's tasks (a plain
#     `scancel JOBID.0` sends SIGKILL at once: nothing to catch);
# each must checkpoint, exit 75 on both ranks, requeue itself, resume from the
# checkpoint and end COMPLETED with weights.h5 and history.csv bit-identical
# to an uninterrupted `mpiexec -n 2` run (one output file for all its runs);
#  d. a config error: the job fails once (FAILED, exit 1, the error in its
#     output), no requeue;
#  e. `scancel JOBID` (SIGTERM to the batch shell and the tasks): a checkpoint,
#     but the job stays cancelled (no requeue).
# Every wait is bounded, and the whole test by MF_SLURM_TEST_LIMIT (540 s).
# About 90 s on 2 idle cores (5 min with another training running). Exit 77
# (skipped) when not root or Slurm and munge are not installed
# (./tests/run.sh installs slurm-wlm and munge).
set -euo pipefail
# shellcheck source=../e2e/assert.sh
. "$(dirname "$0")/../e2e/assert.sh"
# shellcheck source=../fault/job.sh
. "$(dirname "$0")/../fault/job.sh"
mpifit=$1 data=$2 work=$3 mpiexec=$4 preflags=${5:-}
src=$(cd "$(dirname "$0")/../.." && pwd)

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "a private Slurm needs root (slurmd runs jobs as their user; munged, SlurmUser=root)"
for c in munged mungekey slurmctld slurmd sbatch srun scontrol squeue scancel; do
  command -v "$c" >/dev/null || skip "$c not found: install the Debian packages slurm-wlm and munge (./tests/run.sh does)"
done

# nothing of an outer Slurm job (a CI runner inside Slurm) may leak in
for v in $(env | sed -n 's/^\(SLURM_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
rm -rf "$work" && mkdir -p "$work"
# daemons' files in a short private directory (a Unix socket path is <= 107 bytes)
state=$(mktemp -d /tmp/mf-slurm.XXXXXX)
chmod 755 "$state"
mkdir -p "$state/key" "$state/run" "$state/log" "$state/ctld" "$state/spool"
chmod 700 "$state/key"
conf=$state/slurm.conf
export SLURM_CONF=$conf
pids=()
watchdog=

dump() {  # the evidence, after a failure
  for f in "$work"/*.out; do [ -f "$f" ] && { echo "---- $f (last 40 lines)"; tail -n 40 "$f"; }; done
  for f in "$state"/log/*; do [ -f "$f" ] && { echo "---- $f (last 30 lines)"; grep -v 'debug2: Testing job time' "$f" | tail -n 30; }; done
  squeue 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then dump; fi
  # jobs first (their processes belong to our slurmd), then the daemons, by PID
  if [ ${#pids[@]} -gt 1 ]; then
    mapfile -t left < <(squeue -h -o %i 2>/dev/null)
    [ ${#left[@]} -eq 0 ] || scancel --full --signal=KILL --quiet "${left[@]}" 2>/dev/null
    for _ in $(seq 1 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # anything our slurmd started and left behind (slurmstepd, tasks) carries our SLURM_CONF
  for e in /proc/[0-9]*/environ; do
    q=${e#/proc/}; q=${q%/environ}
    [ "$q" != $$ ] || continue
    if { tr '\0' '\n' < "$e"; } 2>/dev/null | grep -qx "SLURM_CONF=$conf"; then kill -KILL "$q" 2>/dev/null; fi
  done
  rm -rf "$state"
  [ -z "$watchdog" ] || { pkill -P "$watchdog" 2>/dev/null; kill "$watchdog" 2>/dev/null; }
  exit $rc
}
trap cleanup EXIT
# a signal (ctest's timeout, Ctrl-C) still stops the daemons; and the whole
# test ends itself (MF_SLURM_TEST_LIMIT, 540 s) before CTest's TIMEOUT (600 s)
# could SIGKILL it past the cleanup
limit=${MF_SLURM_TEST_LIMIT:-540}
trap 'fail "stopped by a signal (or after $limit s by the watchdog)"' INT TERM HUP
# (its output to /dev/null: CTest waits for every holder of the test's pipe)
( exec > /dev/null 2>&1; sleep "$limit"; kill -TERM $$ ) &
watchdog=$!

# ---- two free TCP ports (a system Slurm keeps 6817/6818)
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
  done
  fail "no free TCP port from $1"
}
ctld_port=$(free_port $((20000 + $$ % 20000)))
slurmd_port=$(free_port $((ctld_port + 1)))

# ---- munged with its own key and socket, in the foreground (its PID is ours)
mungekey --create --keyfile="$state/key/munge.key"
munged -F --key-file="$state/key/munge.key" --socket="$state/run/munge.sock" \
  --pid-file="$state/run/munged.pid" --seed-file="$state/key/munged.seed" \
  --log-file="$state/log/munged.log" > "$state/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -S "$state/run/munge.sock" ] && break; sleep 0.1; done
[ -S "$state/run/munge.sock" ] || fail "munged did not create its socket"

# ---- slurm.conf: one node as slurmd sees this machine; partitions low and high
host=$(hostname -s)
node=$(slurmd -C | head -n 1)
cat > "$conf" <<CONF
ClusterName=mftest$$
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/run/munge.sock
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
# debug2: slurmctld logs each time-limit check (case c times its job by them)
SlurmctldDebug=debug2
SlurmdDebug=info
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
JobRequeue=1
ReturnToService=2
KillWait=5
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.txt
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
$node State=UNKNOWN
PartitionName=low Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=60
PartitionName=high Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
slurmctld -D -f "$conf" > "$state/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$conf" > "$state/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  [ "$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1)" = idle ] && break
  sleep 0.5
done
[ "$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1)" = idle ] || fail "node $host not idle: $(sinfo 2>&1)"
echo "slurm: munged, slurmctld (port $ctld_port), slurmd (port $slurmd_port) up in $state"

# ---- the job: 2 ranks, deterministic (a preemption anywhere resumes bit for
# bit); short for a, b, e and f (preempted in epoch 2), long for c (its
# signal comes ~6 s after submission)
short=200 long=400
# the fault tests' small job, deterministic (a preemption anywhere resumes bit
# for bit), a checkpoint every epoch, the watchdog at 60 s
small_job "$work/job.ini" "$data" "$work/ref" $short
sed -i 's/^\[output\]$/[output]\ncheckpoint_every = epoch\nkeep = 2/' "$work/job.ini"
printf 'deterministic = true\nchunk = 4\ntimeout = 60\n' >> "$work/job.ini"
for e in $short $long; do
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "$mpiexec" -n 2 $preflags "$mpifit" train "$work/job.ini" --set train.epochs=$e --set output.dir="$work/ref$e" \
    > "$work/ref$e.log" 2>&1 || { tail -n 20 "$work/ref$e.log"; fail "the uninterrupted reference run failed"; }
  echo "reference: $e epochs on 2 ranks under mpiexec in $(( $(date +%s) - t0 )) s"
done

export MPIFIT=$mpifit RANKS_PER_NODE=2
jf() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }  # jf JOBID FIELD
submit() {  # submit NAME [sbatch options...] -- [train options...]: prints the job id
  local name=$1; shift
  local opts=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  sbatch --parsable --output="$work/$name.out" "${opts[@]}" "$src/launch/slurm.sbatch" "$work/job.ini" \
    --set output.dir="$work/$name" "$@"
}
wait_grep() {  # wait_grep PATTERN FILE SECONDS
  for _ in $(seq 1 $(($3 * 5))); do grep -q -e "$1" "$2" 2>/dev/null && return 0; sleep 0.2; done
  fail "no '$1' in $2 within $3 s"
}
# finish JOBID SECONDS: wait until the job has ended; each time it waits in
# the queue after a requeue (Reason=BeginTime, ~2 min), start it now - but not
# within 3 s of the requeue: slurmd refuses to launch a job whose credential
# is from the second its previous run was killed in ("Job N already killed,
# do not launch batch job"), and the job ends FAILED
finish() {
  local id=$1 end=$(( $(date +%s) + $2 )) st seen=0
  while [ "$(date +%s)" -lt "$end" ]; do
    st=$(jf "$id" JobState)
    case $st in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) echo "$st"; return 0 ;;
      PENDING)
        if [ "$(jf "$id" Reason)" = BeginTime ]; then
          [ "$seen" != 0 ] || seen=$(date +%s)
          if [ $(( $(date +%s) - seen )) -ge 3 ]; then scontrol update JobId="$id" StartTime=now; seen=0; fi
        fi ;;
      *) seen=0 ;;
    esac
    sleep 0.5
  done
  fail "job $id did not end within $2 s (state $(jf "$id" JobState), reason $(jf "$id" Reason))"
}
same_as_reference() {  # same_as_reference NAME EPOCHS
  expect_same_h5 "$work/ref$2/weights.h5" "$work/$1/weights.h5" /
  cmp -s "$work/ref$2/history.csv" "$work/$1/history.csv" \
    || { diff "$work/ref$2/history.csv" "$work/$1/history.csv" | head -5; fail "$1: history.csv differs from the reference"; }
}
# check_preempted NAME JOBID SIGNAL EPOCHS: preempted, requeued, resumed, identical
ended_once() {  # ended_once NAME ID STATE SECONDS: the job ended in STATE and stays there, never requeued
  local st
  st=$(finish "$2" "$4")
  [ "$st" = "$3" ] || fail "$1: job $2 ended $st, expected $3"
  sleep 3  # a requeue would show by now
  [ "$(jf "$2" JobState)" = "$3" ] || fail "$1: job $2 is $(jf "$2" JobState) after ending $3"
  [ "$(jf "$2" Restarts)" = 0 ] || fail "$1: job $2 was requeued $(jf "$2" Restarts) times"
}
check_preempted() {
  local name=$1 id=$2 sig=$3 epochs=$4 st
  st=$(finish "$id" 240)
  [ "$st" = COMPLETED ] || fail "$name: job $id ended $st, expected COMPLETED"
  [ "$(jf "$id" Restarts)" -ge 1 ] || fail "$name: job $id was never requeued (Restarts=$(jf "$id" Restarts))"
  expect_grep "^preempted: stopped by signal $sig .*checkpoint .*written.*(exit status 75)" "$work/$name.out"
  expect_grep 'tasks 0-1: Exited with exit code 75' "$work/$name.out"   # both ranks
  expect_grep "restart [0-9]*\]: preempted: the checkpoint is written; requeueing" "$work/$name.out"
  expect_grep '^resumed from .*ckpt-' "$work/$name.out"
  expect_grep "restart [1-9]\]: training finished" "$work/$name.out"
  # --open-mode=append: the first run's output is still there, before the resumed one's
  [ "$(grep -n '^Epoch 1/' "$work/$name.out" | head -n 1 | cut -d: -f1)" -lt \
    "$(grep -n '^resumed from' "$work/$name.out" | head -n 1 | cut -d: -f1)" ] \
    || fail "$name: the output of the run before the requeue is gone"
  same_as_reference "$name" "$epochs"
  echo "slurm: $name: job $id: signal $sig, checkpoint, exit 75 on both ranks, requeued" \
       "$(jf "$id" Restarts)x, resumed, COMPLETED, bit-identical to the uninterrupted run"
}

echo "== a. scancel --signal=USR1 --batch: USR1 to the batch shell"
t0=$(date +%s)
id=$(submit a --)
wait_grep '^Epoch 2/' "$work/a.out" 120
scancel --signal=USR1 --batch "$id"
check_preempted a "$id" 10 $short
echo "   ($(( $(date +%s) - t0 )) s)"

echo "== b. partition preemption: a job in partition high takes the node"
t0=$(date +%s)
id=$(submit b --partition=low --)
wait_grep '^Epoch 2/' "$work/b.out" 120
hid=$(sbatch --parsable --partition=high --exclusive --output="$work/high.out" --wrap 'echo high ran; sleep 2')
check_preempted b "$id" 15 $short
[ "$(jf "$hid" JobState)" = COMPLETED ] || fail "b: the high-priority job $hid is $(jf "$hid" JobState)"
expect_no_grep 'SIGTERM: the job is being cancelled' "$work/b.out"  # only the tasks get TERM
echo "   ($(( $(date +%s) - t0 )) s)"

echo "== c. the time limit: --time=1 --signal=B:USR1@30"
t0=$(date +%s)
# slurmctld checks time limits every 30 s (logged at debug2) and signals a
# 1-minute job at the first check after it starts (30 + 30 s >= its limit):
# submit ~6 s before a check, so the signal reaches a run that has started
# training (a slower start gets it before srun: requeued without running, and
# the next run is signalled at the next check: more cycles, same result)
for _ in $(seq 1 80); do grep -q 'Testing job time limits' "$state/log/slurmctld.log" && break; sleep 0.5; done
last=$(grep 'Testing job time limits' "$state/log/slurmctld.log" | tail -n 1 | sed 's/^\[\([^].]*\).*/\1/') || true
[ -n "$last" ] || fail "slurmctld logged no time-limit check in 40 s (SlurmctldDebug=debug2)"
next=$(date -d "$last" +%s) || fail "cannot read the time of slurmctld's check '$last'"
while [ $((next - $(date +%s))) -lt 6 ]; do next=$((next + 30)); done
sleep $((next - $(date +%s) - 6))
id=$(submit c --time=1 --signal=B:USR1@30 -- --set train.epochs=$long)
check_preempted c "$id" 10 $long
expect_grep 'SIGUSR1: asking every rank to checkpoint and stop' "$work/c.out"
echo "   ($(( $(date +%s) - t0 )) s)"

echo "== f. scancel --signal=TERM JOBID.0: SIGTERM to the step's tasks"
t0=$(date +%s)
id=$(submit f --)
wait_grep '^Epoch 2/' "$work/f.out" 120
scancel --signal=TERM "$id.0"
check_preempted f "$id" 15 $short
echo "   ($(( $(date +%s) - t0 )) s)"

echo "== d. a config error: the job fails once, no requeue"
t0=$(date +%s)
# submitted from elsewhere without MPIFIT: the binary is found from the script's path
d_env=()
[ "$src/build/bin/mpifit" -ef "$mpifit" ] && d_env=(env -u MPIFIT)
id=$(cd / && "${d_env[@]}" sbatch --parsable --output="$work/d.out" "$src/launch/slurm.sbatch" "$work/job.ini" \
       --set output.dir="$work/d" --set train.epochs=abc)
ended_once d "$id" FAILED 120
[ "$(jf "$id" ExitCode)" = 1:0 ] || fail "d: job $id exit code $(jf "$id" ExitCode), expected 1:0"
expect_grep 'train.epochs.*must be an integer\|epochs must be an integer' "$work/d.out"
expect_grep 'the training step failed with status 1: not requeued' "$work/d.out"
echo "slurm: d: job $id FAILED once (exit 1, the error in its output), not requeued ($(( $(date +%s) - t0 )) s)"

echo "== e. scancel JOBID: a checkpoint, and the job stays cancelled"
t0=$(date +%s)
id=$(submit e --)
wait_grep '^Epoch 2/' "$work/e.out" 120
scancel "$id"
ended_once e "$id" CANCELLED 60
expect_grep 'not requeued: the job was cancelled' "$work/e.out"
echo "slurm: e: job $id: scancel -> CANCELLED, not requeued ($(( $(date +%s) - t0 )) s)"
echo "slurm_preempt: all cases passed"
