#!/usr/bin/env bash
# Entrypoint of the dtrain images (installed as /usr/local/bin/dtrain-entrypoint) and
# of the network-namespace cluster: turns DTRAIN_* environment variables into the
# command line of dtrain-ps, dtrain-worker, sshd or mpirun, then execs it, so that the
# program gets the container's signals itself (SIGTERM: checkpoint and stop).
#
#   dtrain-entrypoint [ROLE] [EXTRA ARGS...]
#
# ROLE (or DTRAIN_ROLE): server | worker | mpi-worker | mpi-launcher | mpirun | health.
# EXTRA ARGS go to the program after the generated ones (e.g. --set train.lr=0.05);
# "mpirun ARGS" runs mpirun with them, stopping it gracefully on SIGTERM.
# DTRAIN_DRY_RUN=1 prints what would run ("exec: ...", plus the hostfile of an
# mpi-launcher) instead of running it. Every variable is listed in docs/deploy.md.
set -euo pipefail

die() {
  echo "dtrain-entrypoint: $*" >&2
  exit 2
}
note() { echo "dtrain-entrypoint: $*" >&2; }

PS_BIN=${DTRAIN_PS_BIN:-dtrain-ps}
WORKER_BIN=${DTRAIN_WORKER_BIN:-dtrain-worker}
CONFIG=${DTRAIN_CONFIG:-/usr/share/dtrain/examples/fmnist-mlp.ini}
PORT=${DTRAIN_PORT:-7070}
SSH_PORT=${DTRAIN_SSH_PORT:-2222}
WAIT_S=${DTRAIN_WAIT_S:-120}
ARGS=()

# set_if VAR SECTION.KEY: adds --set SECTION.KEY=$VAR when VAR is set and not empty.
set_if() {
  local v=${!1:-}
  [ -n "$v" ] && ARGS+=(--set "$2=$v")
  return 0
}

# DTRAIN_SET: whitespace-separated SECTION.KEY=VALUE pairs (values without spaces).
extra_sets() {
  local kv kvs
  read -ra kvs <<<"${DTRAIN_SET:-}"
  for kv in "${kvs[@]}"; do
    [[ $kv == *.*=* ]] || die "DTRAIN_SET: '$kv' is not SECTION.KEY=VALUE"
    ARGS+=(--set "$kv")
  done
}

# [ps] keys that both programs read, so that a job file's [ps] section can be
# overridden the same way on servers and workers.
ps_sets() {
  set_if DTRAIN_CONSISTENCY ps.consistency
  set_if DTRAIN_STALENESS ps.staleness
  set_if DTRAIN_HEARTBEAT_S ps.heartbeat_s
  set_if DTRAIN_HEARTBEAT_TIMEOUT_S ps.heartbeat_timeout_s
  set_if DTRAIN_TOKEN_FILE ps.token_file
  # The programs read the token from DTRAIN_PS_TOKEN; DTRAIN_TOKEN is the short name.
  if [ -n "${DTRAIN_TOKEN:-}" ]; then export DTRAIN_PS_TOKEN=$DTRAIN_TOKEN; fi
}

# The training keys a deployment usually changes.
train_sets() {
  set_if DTRAIN_EPOCHS train.epochs
  set_if DTRAIN_BATCH_SIZE train.batch_size
  set_if DTRAIN_LR train.lr
  set_if DTRAIN_MOMENTUM optimizer.momentum
  set_if DTRAIN_THREADS train.threads
  set_if DTRAIN_DATA_DIR data.dir
  set_if DTRAIN_LOGDIR tensorboard.logdir
}

run() {
  if [ "${DTRAIN_DRY_RUN:-0}" = 1 ]; then
    [ -n "${DTRAIN_PS_TOKEN:-}" ] && echo "env: DTRAIN_PS_TOKEN=<set>"
    local a line=exec:
    for a in "$@"; do
      if [[ $a =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then line+=" $a"; else line+=" ${a@Q}"; fi
    done
    echo "$line"
    exit 0
  fi
  exec "$@"
}

# claim_id DIR N KEY: the worker id that KEY holds in DIR, or the lowest free one, which
# it then claims. A claim is a directory DIR/<id> holding the owner's KEY, renamed into
# place in one step, so two workers never get the same id and no claim is ever seen
# without its owner. A restarted container keeps its hostname (the default KEY) and so
# finds its own claim again; it then resumes its own checkpoint and data part.
claim_id() {
  local dir=$1 n=$2 key=$3 i tmp owners=""
  mkdir -p "$dir" || die "cannot create the worker-id directory $dir"
  for ((i = 0; i < n; i++)); do
    if [ "$(cat "$dir/$i/owner" 2>/dev/null)" = "$key" ]; then
      echo "$i"
      return
    fi
  done
  tmp=$(mktemp -d "$dir/.claim-XXXXXX") || die "cannot write to the worker-id directory $dir"
  chmod 755 "$tmp"
  printf '%s\n' "$key" >"$tmp/owner"
  for ((i = 0; i < n; i++)); do
    # mv onto an existing (non-empty) claim fails: that id is taken.
    if [ ! -e "$dir/$i" ] && mv -T "$tmp" "$dir/$i" 2>/dev/null; then
      echo "$i"
      return
    fi
  done
  rm -rf "$tmp"
  for ((i = 0; i < n; i++)); do owners+=" $i:$(cat "$dir/$i/owner" 2>/dev/null)"; done
  die "all $n worker ids are claimed in $dir (id:owner$owners) and none by '$key'; a new" \
    "job needs an empty directory (docker-compose down -v), or raise DTRAIN_NUM_WORKERS"
}

# The worker's id: DTRAIN_WORKER_ID when it is a number; with 'auto' (the default) the
# Kubernetes Indexed Job index, else a claim in DTRAIN_ID_DIR (docker-compose --scale),
# else the ordinal that ends a StatefulSet pod's hostname (name-3 is 3).
worker_id() {
  local id=${DTRAIN_WORKER_ID:-auto} n=${DTRAIN_NUM_WORKERS:-}
  local host=${DTRAIN_CLAIM_KEY:-${HOSTNAME:-$(hostname)}}
  if [[ $id =~ ^[0-9]+$ ]]; then
    :
  elif [ "$id" != auto ]; then
    die "DTRAIN_WORKER_ID must be a number or 'auto', not '$id'"
  elif [[ ${JOB_COMPLETION_INDEX:-} =~ ^[0-9]+$ ]]; then
    id=$JOB_COMPLETION_INDEX
  elif [ -n "${DTRAIN_ID_DIR:-}" ]; then
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "DTRAIN_ID_DIR needs DTRAIN_NUM_WORKERS (a number >= 1)"
    id=$(claim_id "$DTRAIN_ID_DIR" "$n" "$host") || exit 2
  elif [[ $host =~ -([0-9]+)$ ]]; then
    id=$((10#${BASH_REMATCH[1]}))
  else
    die "no worker id: set DTRAIN_WORKER_ID, or DTRAIN_ID_DIR to claim one, or run as a" \
      "StatefulSet pod / Indexed Job"
  fi
  if [[ $n =~ ^[0-9]+$ ]] && [ "$id" -ge "$n" ]; then
    die "worker id $id is not below DTRAIN_NUM_WORKERS = $n"
  fi
  echo "$id"
}

role_server() {
  ARGS=("$PS_BIN" --config "$CONFIG" --listen "${DTRAIN_LISTEN:-0.0.0.0:$PORT}")
  ps_sets
  set_if DTRAIN_CHECKPOINT_DIR ps.checkpoint_dir
  set_if DTRAIN_CHECKPOINT_EVERY_S ps.checkpoint_every_s
  set_if DTRAIN_CHECKPOINT_EVERY_UPDATES ps.checkpoint_every_updates
  # A restarted server continues from its newest checkpoint (none yet: it starts empty
  # and the first worker sends INIT); the workers reconnect by themselves.
  if [ -n "${DTRAIN_CHECKPOINT_DIR:-}" ] && [ "${DTRAIN_RESUME:-1}" = 1 ]; then ARGS+=(--resume); fi
  [ -n "${DTRAIN_PORT_FILE:-}" ] && ARGS+=(--port-file "$DTRAIN_PORT_FILE")
  extra_sets
  run "${ARGS[@]}" "$@"
}

role_worker() {
  [ -n "${DTRAIN_SERVERS:-}" ] || die "a worker needs DTRAIN_SERVERS (host:port,host:port)"
  local id
  id=$(worker_id) || exit 2
  note "worker id $id of ${DTRAIN_NUM_WORKERS:-1}"
  ARGS=("$WORKER_BIN" --config "$CONFIG" --no-progress --set sync.mode=ps
    --set "ps.servers=$DTRAIN_SERVERS" --set "ps.worker_id=$id"
    --set "ps.num_workers=${DTRAIN_NUM_WORKERS:-1}")
  ps_sets
  train_sets
  # Each worker logs to a run of its own, next to the others in TensorBoard.
  [ -n "${DTRAIN_LOGDIR:-}" ] && ARGS+=(--set "tensorboard.run=${DTRAIN_RUN:-worker}-$id")
  # Its own checkpoints (its position in its part of the data): a restarted worker
  # resumes them and then takes the servers' parameters.
  if [ -n "${DTRAIN_CHECKPOINT_DIR:-}" ]; then
    ARGS+=(--set "checkpoint.dir=$DTRAIN_CHECKPOINT_DIR/worker-$id")
    set_if DTRAIN_CHECKPOINT_EVERY_STEPS checkpoint.every_steps
    [ "${DTRAIN_RESUME:-1}" = 1 ] && ARGS+=(--resume)
  fi
  extra_sets
  run "${ARGS[@]}" "$@"
}

# ---- MPI over ssh: workers run sshd as the unprivileged user; the launcher runs mpirun ----

# docker-compose: the launcher makes a key pair in this shared volume. Unset (the
# Kubeflow MPI Operator): the operator mounts the keys in ~/.ssh itself.
SSH_DIR=${DTRAIN_SSH_DIR:-}
HOME_SSH=${HOME:-/home/dtrain}/.ssh

role_mpi_worker() {
  # sshd's own files go to a writable directory: ~/.ssh may be a read-only mount.
  local dir=${DTRAIN_SSHD_DIR:-${HOME:-/home/dtrain}/.sshd} keys=$HOME_SSH/authorized_keys i
  { mkdir -p "$dir" && chmod 700 "$dir"; } || die "cannot create $dir"
  [ -n "$SSH_DIR" ] && keys=$dir/authorized_keys
  local cfg=$dir/sshd_config
  cat >"$cfg" <<EOF
Port $SSH_PORT
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $keys
AllowUsers $(id -un)
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
X11Forwarding no
PrintMotd no
EOF
  if [ "${DTRAIN_DRY_RUN:-0}" = 1 ]; then
    echo "sshd_config: $cfg"
    run /usr/sbin/sshd -D -e -f "$cfg"
  fi
  [ -f "$dir/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key" >/dev/null
  if [ -n "$SSH_DIR" ]; then
    # The launcher's public key arrives through the shared ssh volume.
    for ((i = 0; i < WAIT_S; i++)); do
      [ -s "$SSH_DIR/id_ed25519.pub" ] && break
      sleep 1
    done
    [ -s "$SSH_DIR/id_ed25519.pub" ] ||
      die "no $SSH_DIR/id_ed25519.pub from the launcher after $WAIT_S s"
    install -m 600 "$SSH_DIR/id_ed25519.pub" "$keys"
  fi
  [ -s "$keys" ] || die "no authorized keys in $keys (set DTRAIN_SSH_DIR, or mount them there)"
  run /usr/sbin/sshd -D -e -f "$cfg"
}

# run_mpirun ARGS...: runs mpirun as a child and turns SIGTERM/SIGINT (docker stop, a
# deleted pod) into the SIGUSR1 that mpirun forwards to every rank: they checkpoint
# and exit 0. mpirun's own SIGTERM handling would abort the job instead.
run_mpirun() {
  [ "${DTRAIN_DRY_RUN:-0}" = 1 ] && run mpirun "$@"
  local pid rc
  mpirun "$@" &
  pid=$!
  trap 'note "stop signal: SIGUSR1 to mpirun (every rank checkpoints and exits)"; kill -USR1 "$pid" 2>/dev/null' TERM INT
  # wait returns early when the trap runs; keep waiting for mpirun itself.
  while :; do
    rc=0
    wait "$pid" || rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  exit "$rc"
}

# hosts_of LIST: the IPv4 addresses of a comma-separated list of names or addresses; a
# docker-compose service name resolves to every replica's address.
hosts_of() {
  local h
  for h in ${1//,/ }; do
    if [[ $h =~ ^[0-9.]+$ ]]; then echo "$h"; else getent ahostsv4 "$h" | awk '{print $1}'; fi
  done | sort -u -t. -k1,1n -k2,2n -k3,3n -k4,4n
}

# ssh_up HOST: the host's sshd accepts connections.
ssh_up() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$SSH_PORT" 2>/dev/null; }

role_mpi_launcher() {
  local list=${DTRAIN_MPI_HOSTS:-mpiworker} want=${DTRAIN_NUM_WORKERS:-1} slots=${DTRAIN_SLOTS:-1}
  local hostfile=${DTRAIN_HOSTFILE:-${HOME:-/tmp}/hostfile} key=${SSH_DIR:-/ssh}/id_ed25519 i h
  local hosts=()
  [[ $want =~ ^[1-9][0-9]*$ ]] || die "DTRAIN_NUM_WORKERS must be a number >= 1, not '$want'"
  [[ $slots =~ ^[1-9][0-9]*$ ]] || die "DTRAIN_SLOTS must be a number >= 1, not '$slots'"
  if [ "${DTRAIN_DRY_RUN:-0}" != 1 ] && [ ! -s "$key" ]; then
    # Made once per job in the shared ssh volume, written under a temporary name so
    # that the workers never read half a key.
    ssh-keygen -q -t ed25519 -N '' -C dtrain-launcher -f "$key.tmp" >/dev/null
    mv "$key.tmp.pub" "$key.pub.tmp" && mv "$key.tmp" "$key" && mv "$key.pub.tmp" "$key.pub"
  fi
  # Wait until every worker container resolves and its sshd answers.
  for ((i = 0; i < WAIT_S; i++)); do
    mapfile -t hosts < <(hosts_of "$list")
    if [ "${#hosts[@]}" -ge "$want" ]; then
      [ "${DTRAIN_DRY_RUN:-0}" = 1 ] && break
      local up=0
      for h in "${hosts[@]}"; do ssh_up "$h" && up=$((up + 1)); done
      [ "$up" -eq "${#hosts[@]}" ] && break
    fi
    sleep 1
  done
  [ "${#hosts[@]}" -ge "$want" ] ||
    die "$list resolves to ${#hosts[@]} address(es) after $WAIT_S s, expected $want"
  : >"$hostfile" || die "cannot write the hostfile $hostfile"
  for h in "${hosts[@]}"; do echo "$h slots=$slots" >>"$hostfile"; done
  note "hostfile $hostfile: ${#hosts[@]} host(s), $slots slot(s) each"
  [ "${DTRAIN_DRY_RUN:-0}" = 1 ] && sed 's/^/hostfile: /' "$hostfile"
  ARGS=(--hostfile "$hostfile" -np $((${#hosts[@]} * slots))
    --mca plm_rsh_args "-p $SSH_PORT -i $key -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${HOME:-/tmp}/.ssh/known_hosts"
    "$WORKER_BIN" --config "$CONFIG" --no-progress)
  train_sets
  if [ -n "${DTRAIN_CHECKPOINT_DIR:-}" ]; then
    # One checkpoint directory for the whole job: rank 0 writes the shared files and
    # every rank its own, so it must be storage that every worker container sees.
    ARGS+=(--set "checkpoint.dir=$DTRAIN_CHECKPOINT_DIR")
    set_if DTRAIN_CHECKPOINT_EVERY_STEPS checkpoint.every_steps
    [ "${DTRAIN_RESUME:-1}" = 1 ] && ARGS+=(--resume)
  fi
  extra_sets
  mkdir -p "${HOME:-/tmp}/.ssh"
  run_mpirun "${ARGS[@]}" "$@"
}

# ---- health: is this container doing its job (docker-compose healthcheck) ----

# listening PORT: a TCP socket of this network namespace listens on PORT.
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# connected PORT: an established connection to a remote PORT.
connected_to() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "01" && substr($3, length($3) - 4) == p { n++ } END { print n + 0 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

role_health() {
  case ${DTRAIN_ROLE:-} in
    server) listening "$PORT" || die "unhealthy: nothing listens on port $PORT" ;;
    mpi-worker) listening "$SSH_PORT" || die "unhealthy: sshd does not listen on port $SSH_PORT" ;;
    worker)
      # Connected to every server: count the connections per distinct server port.
      local want=0 have=0 p
      for p in $(tr ',' '\n' <<<"${DTRAIN_SERVERS:-}" | sed -E 's/.*:([0-9]+)$/\1/' | sort | uniq -c |
        awk '{print $2 ":" $1}'); do
        want=$((want + ${p#*:}))
        have=$((have + $(connected_to "${p%%:*}")))
      done
      if [ "$want" -eq 0 ] || [ "$have" -lt "$want" ]; then
        die "unhealthy: $have of $want connection(s) to the parameter servers"
      fi
      ;;
    *) die "health: DTRAIN_ROLE is '${DTRAIN_ROLE:-}', expected server, worker or mpi-worker" ;;
  esac
}

# The role is the first argument, unless that is already an option for the program.
role=${DTRAIN_ROLE:-}
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
  role=$1
  shift
fi
case $role in
  server) role_server "$@" ;;
  worker) role_worker "$@" ;;
  mpi-worker) role_mpi_worker "$@" ;;
  mpi-launcher) role_mpi_launcher "$@" ;;
  mpirun) run_mpirun "$@" ;;
  health) role_health ;;
  *) die "role '$role': expected server, worker, mpi-worker, mpi-launcher, mpirun or health" \
    "(argument or DTRAIN_ROLE)" ;;
esac
