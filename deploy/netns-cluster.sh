#!/usr/bin/env bash
# A cluster of separate "hosts" on one Linux machine: every node (parameter server or
# worker) runs in a network namespace of its own, with one interface (eth0) and its
# own address on a private bridge. The bridge lives in one more namespace, the
# "switch", so nothing is added to the machine's own network and no packet can leave
# it. Links can be cut (nc_link) or shaped with tc (nc_tc) from outside the node.
#
# Run it (as root) to train the PS topology of deploy/docker-compose.yml this way:
#   deploy/netns-cluster.sh --build build [--workers 3] [--epochs 12] [--logs DIR]
# Or source it (tests/cli/test_netns_cluster.sh does) for the nc_* functions.
#
# Names carry NC_ID (default: the shell's pid): namespaces dtrain-<id>-<node>, the
# bridge dtbr-<id>, so that two clusters never collide. Everything is torn down on
# exit, also when the script is killed: a reaper process deletes the namespaces (and
# the processes in them) once the script is gone or NC_LIMIT_S seconds have passed.

NC_ID=${NC_ID:-$$}
NC_PREFIX=dtrain-$NC_ID
NC_SW=$NC_PREFIX-sw
NC_BRIDGE=dtbr-$NC_ID
NC_NET=${NC_NET:-10.213.0}
NC_LIMIT_S=${NC_LIMIT_S:-500}
NC_NODES=()
NC_PIDS=()
NC_REAPER=

# nc_unavailable: empty when this machine can make the cluster, else why not.
nc_unavailable() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "network namespaces need root"
  elif ! command -v ip >/dev/null; then
    echo "the ip command (package iproute2) is missing"
  elif ! ip netns add "$NC_PREFIX-probe" 2>/dev/null; then
    echo "'ip netns add' does not work here"
  else
    ip netns del "$NC_PREFIX-probe"
  fi
}

nc_ns() { echo "$NC_PREFIX-$1"; }

# nc_addr NODE: the node's address (the i-th node gets NET.(10+i)).
nc_addr() {
  local i
  for i in "${!NC_NODES[@]}"; do
    [ "${NC_NODES[$i]}" = "$1" ] && echo "$NC_NET.$((10 + i))" && return 0
  done
  echo "nc_addr: no node '$1'" >&2
  return 1
}

# nc_teardown ID: kills every process in cluster ID's namespaces and deletes them.
# Used by nc_down and by the reaper (which only knows the ID).
nc_teardown() {
  local ns p
  for ns in $(ip netns list 2>/dev/null | awk -v p="dtrain-$1-" 'index($1, p) == 1 {print $1}'); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in $(ip netns list 2>/dev/null | awk -v p="dtrain-$1-" 'index($1, p) == 1 {print $1}'); do
    ip netns del "$ns" 2>/dev/null
  done
}

# nc_up NODE...: the switch and one namespace per node, all links up.
nc_up() {
  local node ns i
  # The reaper outlives this shell (its own session), so that a killed script still
  # cleans up; it also ends everything after NC_LIMIT_S seconds.
  setsid bash -c '
    id=$1 parent=$2 limit=$3
    source "$4"
    for ((t = 0; t < limit; t++)); do
      kill -0 "$parent" 2>/dev/null || break
      sleep 1
    done
    [ "$t" -ge "$limit" ] && echo "netns-cluster: $limit s limit reached; ending cluster $id" >&2
    nc_teardown "$id"' nc-reaper "$NC_ID" "$$" "$NC_LIMIT_S" "${BASH_SOURCE[0]}" </dev/null &
  NC_REAPER=$!
  ip netns add "$NC_SW" || return 1
  ip -n "$NC_SW" link add "$NC_BRIDGE" type bridge || return 1
  ip -n "$NC_SW" link set "$NC_BRIDGE" up
  for node in "$@"; do
    ns=$(nc_ns "$node")
    i=${#NC_NODES[@]}
    NC_NODES+=("$node")
    ip netns add "$ns" || return 1
    ip -n "$NC_SW" link add "v-$node" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$NC_SW" link set "v-$node" master "$NC_BRIDGE" up
    ip -n "$ns" addr add "$NC_NET.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# nc_down: everything nc_up made, and the processes started in it. Quiet: bash's
# "Killed" notices for the processes it ends would only be noise.
nc_down() {
  {
    nc_teardown "$NC_ID"
    if [ -n "$NC_REAPER" ]; then kill "$NC_REAPER"; fi
    if [ ${#NC_PIDS[@]} -gt 0 ]; then wait "${NC_PIDS[@]}"; fi
  } 2>/dev/null
  NC_REAPER=
  NC_PIDS=()
}

# nc_exec NODE COMMAND...: runs COMMAND on the node.
nc_exec() {
  local ns
  ns=$(nc_ns "$1")
  shift
  ip netns exec "$ns" "$@"
}

# nc_start NAME NODE LOG COMMAND...: COMMAND in the background on NODE, output in LOG;
# its pid (the program's own: ip netns exec and the entrypoint exec it) in NC_PID_NAME.
nc_start() {
  local name=$1 ns
  ns=$(nc_ns "$2")
  local log=$3
  shift 3
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  NC_PIDS+=("$!")
  printf -v "NC_PID_$name" '%s' "$!"
}

# nc_link NODE up|down: plugs the node's cable into the switch or pulls it out.
nc_link() { ip -n "$NC_SW" link set "v-$1" "$2"; }

# nc_tc NODE ARGS...: tc on the switch's side of the node's link (traffic to the node).
nc_tc() {
  local node=$1
  shift
  ip netns exec "$NC_SW" tc "${@/@DEV@/v-$node}"
}

# nc_wait_log FILE REGEX SECONDS: waits for a line matching REGEX; 1 after SECONDS.
nc_wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ---- run as a program: the PS cluster of docker-compose.yml, on this machine ----

nc_main() {
  local build="" workers=3 servers=2 epochs=12 logs="" here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  while [ $# -gt 0 ]; do
    case $1 in
      --build) build=$2; shift 2 ;;
      --workers) workers=$2; shift 2 ;;
      --servers) servers=$2; shift 2 ;;
      --epochs) epochs=$2; shift 2 ;;
      --logs) logs=$2; shift 2 ;;
      -h | --help)
        sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        return 0 ;;
      *) echo "netns-cluster: unknown argument '$1' (try --help)" >&2; return 2 ;;
    esac
  done
  [ -n "$build" ] || { echo "netns-cluster: --build DIR (the cmake build directory) is required" >&2; return 2; }
  build=$(cd "$build" && pwd) || return 2
  local why
  why=$(nc_unavailable)
  [ -z "$why" ] || { echo "netns-cluster: $why" >&2; return 1; }
  logs=${logs:-$(mktemp -d /tmp/netns-cluster.XXXXXX)}
  mkdir -p "$logs"
  local nodes=() k w list=""
  for ((k = 0; k < servers; k++)); do nodes+=("ps$k"); done
  for ((w = 0; w < workers; w++)); do nodes+=("w$w"); done
  trap 'nc_down' EXIT
  trap 'exit 1' INT TERM
  nc_up "${nodes[@]}" || return 1
  for ((k = 0; k < servers; k++)); do list+="${list:+,}$(nc_addr "ps$k"):7070"; done
  export DTRAIN_PS_BIN=$build/src/paramserver/dtrain-ps DTRAIN_WORKER_BIN=$build/src/worker/dtrain-worker
  export DTRAIN_CONFIG=${DTRAIN_CONFIG:-$here/../examples/fmnist-mlp.ini}
  export DTRAIN_CONSISTENCY=${DTRAIN_CONSISTENCY:-ssp} DTRAIN_TOKEN=${DTRAIN_TOKEN:-netns-$NC_ID}
  for ((k = 0; k < servers; k++)); do
    DTRAIN_CHECKPOINT_DIR=$logs/ps$k nc_start "ps$k" "ps$k" "$logs/ps$k.log" "$here/entrypoint.sh" server
    nc_wait_log "$logs/ps$k.log" "listening on" 10 || { cat "$logs/ps$k.log"; return 1; }
  done
  for ((w = 0; w < workers; w++)); do
    DTRAIN_SERVERS=$list DTRAIN_NUM_WORKERS=$workers DTRAIN_ID_DIR=$logs/worker-ids \
      DTRAIN_CLAIM_KEY="w$w" DTRAIN_EPOCHS=$epochs DTRAIN_MOMENTUM=${DTRAIN_MOMENTUM:-0.5} \
      DTRAIN_LR=${DTRAIN_LR:-0.1} DTRAIN_CHECKPOINT_DIR=$logs/workers DTRAIN_LOGDIR=$logs/runs \
      nc_start "w$w" "w$w" "$logs/w$w.log" "$here/entrypoint.sh" worker
  done
  local rc=0 pid
  for ((w = 0; w < workers; w++)); do
    pid=NC_PID_w$w
    wait "${!pid}" || rc=1
    echo "w$w ($(nc_addr "w$w")): $(grep -E '^Test:' "$logs/w$w.log" || echo "failed, see $logs/w$w.log")"
  done
  for ((k = 0; k < servers; k++)); do
    pid=NC_PID_ps$k
    kill -TERM "${!pid}"
    wait "${!pid}" || rc=1
  done
  echo "logs, checkpoints and TensorBoard runs: $logs"
  return "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  nc_main "$@"
  exit $?
fi
