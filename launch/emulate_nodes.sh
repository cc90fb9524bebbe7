#!/usr/bin/env bash
# emulate_nodes.sh: several "nodes" on one machine for multi-node experiments
# (root; Linux network namespaces, a bridge, links shaped with tc).
#
#   launch/emulate_nodes.sh up N [--rate 1gbit] [--delay 100us]
#   launch/emulate_nodes.sh run NP PROGRAM [ARGS...]    mpirun over the nodes, one rank per node
#   launch/emulate_nodes.sh check [BYTES [MPIFIT]]      what MPI sees: ping-pong, allreduce of BYTES
#   launch/emulate_nodes.sh down
#
# up: namespaces mfemu-n0 .. mfemu-n<N-1> ("nodes", each with eth0 at
# 10.77.0.<i+1>/24) and mfemu-sw (the "switch": a bridge with one port per
# node), veth pairs between them; nothing is added to the root namespace and
# the subnet exists only inside these namespaces. Every link is shaped in both
# directions with tbf (the node's eth0 egress and the switch port's egress) at
# --rate (default 1gbit; "none" leaves it unshaped), with RPS on every veth so
# TCP over veth and tbf is not reordered (without it a 1 Gbit/s link fell to
# ~0.55 Gbit/s: ../shared/notes/emulated-nodes.md). --delay needs the kernel's
# netem; where it is missing (this machine's Debian 12 cloud kernel) up says
# that only bandwidth is emulated and goes on.
#
# run: mpirun started inside node 0 with Open MPI's TCP transport only
# (pml ob1, btl tcp,self: no shared memory between the emulated nodes), its
# daemons launched into the other namespaces by an agent in place of ssh,
# node names resolved from a hosts file bind-mounted over /etc/hosts in a
# private mount namespace. NP ranks round-robin over the nodes.
#
# check: `mpifit bench --comm` over 2 emulated nodes: half round-trip of a
# 1-byte ping-pong and the bus bandwidth of an allreduce of BYTES (default
# 9 MB: MobileNetV2's gradients), best and median of the repetitions.
# State: /run/mpifit-emu (MF_EMU_DIR); names and subnet: MF_EMU_PREFIX (mfemu),
# MF_EMU_SUBNET (10.77.0), so a test can run beside a user's setup. Re-running
# up first takes the old setup (of that prefix) down.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state=${MF_EMU_DIR:-/run/mpifit-emu}
prefix=${MF_EMU_PREFIX:-mfemu} # namespace and node names: PREFIX-n0 .., PREFIX-sw
subnet=${MF_EMU_SUBNET:-10.77.0} # the first three bytes of the /24

die() { echo "emulate_nodes.sh: $*" >&2; exit 1; }
# what this machine cannot do (not a bug here): exit 3, so a test can skip
env_die() { echo "emulate_nodes.sh: this machine cannot: $*" >&2; exit 3; }
need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, tc): run it as root or under sudo"
  for t in ip tc unshare; do command -v "$t" > /dev/null || die "$t not found (apt-get install iproute2 util-linux)"; done
}
nodes() { [ -s "$state/nodes" ] || die "no emulated nodes: run 'launch/emulate_nodes.sh up N' first"; cat "$state/nodes"; }
ns_exec() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# burst of tbf: 2 ms at the rate, >= 64 KiB. tbf's timer fires late in this VM:
# with 262 us (32 KiB at 1 Gbit/s) a 9 MB allreduce reached 0.51 Gbit/s, with
# 256 KiB 0.84 (the long-run rate stays the --rate)
burst_of() {
  local rate=$1 bits
  case "$rate" in
    *gbit) bits=$(( ${rate%gbit} * 1000000000 )) ;;
    *mbit) bits=$(( ${rate%mbit} * 1000000 )) ;;
    *kbit) bits=$(( ${rate%kbit} * 1000 )) ;;
    *) die "--rate: give it as <n>gbit, <n>mbit or <n>kbit (got '$rate')" ;;
  esac
  local b=$(( bits / 8 / 500 ))  # 2 ms of traffic
  [ "$b" -lt 65536 ] && b=65536
  echo "$b"
}

shape() {  # shape NS DEV RATE DELAY
  local ns=$1 dev=$2 rate=$3 delay=$4
  if [ -n "$delay" ] && [ "$(cat "$state/netem")" = yes ]; then
    ns_exec "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "$delay"
    [ "$rate" != none ] && ns_exec "$ns" tc qdisc add dev "$dev" parent 1: handle 2: tbf rate "$rate" \
      burst "$(burst_of "$rate")" latency 50ms
  elif [ "$rate" != none ]; then
    ns_exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst "$(burst_of "$rate")" latency 50ms ||
      env_die "shape links with tc tbf (no sch_tbf?)"
  fi
  # RPS on the receive queues: one CPU set for all, so TCP over veth is not reordered
  local cpus
  cpus=$(printf '%x' $(( (1 << $(nproc)) - 1 )))
  ns_exec "$ns" sh -c "for q in /sys/class/net/$dev/queues/rx-*/rps_cpus; do echo $cpus > \$q; done"
}

down() {
  need_root
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^${prefix}-" || true); do
    ip netns del "$ns"
  done
  rm -rf "$state"
}

up() {
  need_root
  local n=${1:-}
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 2 ] && [ "$n" -le 64 ] || die "up: N must be 2..64, got '${n}'"
  shift
  local rate=1gbit delay=
  while [ $# -gt 0 ]; do
    case "$1" in
      --rate) rate=${2:?--rate needs a value}; shift 2 ;;
      --delay) delay=${2:?--delay needs a value}; shift 2 ;;
      *) die "up: unknown option '$1' (--rate R, --delay D)" ;;
    esac
  done
  [ "$rate" = none ] || burst_of "$rate" > /dev/null
  down
  mkdir -p "$state"
  ip netns add "${prefix}-sw" 2> /dev/null ||
    env_die "create network namespaces (ip netns add; a container without CAP_SYS_ADMIN?)"
  ns_exec "${prefix}-sw" ip link set lo up
  ns_exec "${prefix}-sw" ip link add br0 type bridge 2> /dev/null || env_die "create a bridge (no bridge module?)"
  ns_exec "${prefix}-sw" ip link set br0 up
  # netem: try it once on the switch's loopback
  if [ -n "$delay" ] && ns_exec "${prefix}-sw" tc qdisc add dev lo root netem delay 1us 2> /dev/null; then
    ns_exec "${prefix}-sw" tc qdisc del dev lo root
    echo yes > "$state/netem"
  else
    echo no > "$state/netem"
    [ -n "$delay" ] && echo "emulate_nodes.sh: this kernel has no netem (tc qdisc netem): --delay $delay is NOT" \
      "emulated, only the bandwidth is" >&2
  fi
  : > "$state/hosts"
  echo "127.0.0.1 localhost" >> "$state/hosts"
  : > "$state/nodes"
  for ((i = 0; i < n; i++)); do
    local ns="${prefix}-n$i"
    ip netns add "$ns"
    ns_exec "$ns" ip link set lo up
    ip link add "mfe$i" netns "$ns" type veth peer name "p$i" netns "${prefix}-sw" 2> /dev/null ||
      env_die "create veth pairs (no veth module?)"
    ns_exec "$ns" ip link set "mfe$i" name eth0
    ns_exec "$ns" ip addr add "$subnet.$((i + 1))/24" dev eth0
    ns_exec "$ns" ip link set eth0 up
    ns_exec "${prefix}-sw" ip link set "p$i" master br0
    ns_exec "${prefix}-sw" ip link set "p$i" up
    shape "$ns" eth0 "$rate" "$delay"
    shape "${prefix}-sw" "p$i" "$rate" "$delay"
    echo "$subnet.$((i + 1)) $ns" >> "$state/hosts"
    echo "$ns" >> "$state/nodes"
  done
  echo "$rate" > "$state/rate"
  # the launcher agent in place of ssh: `agent HOST COMMAND...` runs COMMAND
  # inside HOST's namespace, with the emulated hosts file
  cat > "$state/agent" <<AGENT
#!/bin/sh
host=\$1; shift
exec ip netns exec "\$host" unshare --mount sh -c 'mount --bind "$state/hosts" /etc/hosts && exec sh -c "\$0"' "\$*"
AGENT
  chmod +x "$state/agent"
  local d="bandwidth only"
  [ "$(cat "$state/netem")" = yes ] && [ -n "$delay" ] && d="delay $delay"
  echo "emulate_nodes.sh: $n nodes ${prefix}-n0..${prefix}-n$((n - 1)) on $subnet.0/24, links $rate ($d)"
}

run() {
  need_root
  local np=${1:?run NP PROGRAM [ARGS...]}
  shift
  [ $# -gt 0 ] || die "run: no program"
  local n first slots
  n=$(nodes | wc -l)
  first=$(nodes | head -n 1)
  slots=$(( (np + n - 1) / n ))
  # inside node 0, with the hosts file; Open MPI over TCP on the emulated subnet only
  ip netns exec "$first" unshare --mount sh -c 'mount --bind "$0" /etc/hosts && shift && exec "$@"' \
    "$state/hosts" -- mpirun --allow-run-as-root -np "$np" --host "$(nodes | sed "s/\$/:$slots/" | paste -sd, -)" \
    --map-by node --bind-to none --oversubscribe \
    --mca plm_rsh_agent "$state/agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$subnet.0/24" \
    --mca oob_tcp_if_include "$subnet.0/24" --mca mpi_yield_when_idle 1 \
    -x OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" -x PATH "$@"
}

check() {
  local bytes=${1:-9437184} mpifit=${2:-$root/build/bin/mpifit}
  echo "emulated links: $(cat "$state/rate" 2>/dev/null || echo '?'); MPI between 2 of the nodes:"
  run 2 "$mpifit" bench --comm --bytes "$bytes"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  run) run "$@" ;;
  check) check "$@" ;;
  *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
