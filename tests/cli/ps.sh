# Shared setup for the parameter-server script tests (tests/cli/test_ps_*.sh), sourced
# after lib.sh. Servers listen on loopback port 0 and report the port they got through
# --port-file; every process started here (bg, in lib.sh) is killed when the script
# ends, and a guard kills it after BG_LIMIT seconds even if the script was killed.
PS="$BUILD/src/paramserver/dtrain-ps"
# Workers of the MLP example in sync.mode = ps; the caller adds servers and identity.
MLP=(--config "$SRC/examples/fmnist-mlp.ini" --no-progress --set tensorboard.enabled=false
  --set sync.mode=ps)

ps_cleanup() {
  bg_kill_all
  rm -rf "$TMP"
}
trap ps_cleanup EXIT
trap 'exit 1' INT TERM

# ps_start NAME [dtrain-ps args...]: starts a server (on PS_PORT if set, else a free
# port) and sets PORT_NAME.
ps_start() {
  local name=$1
  shift
  rm -f "$TMP/$name.port"
  bg "$name" "$PS" --listen "127.0.0.1:${PS_PORT:-0}" --port-file "$TMP/$name.port" "$@"
  local i
  for ((i = 0; i < 200; i++)); do
    [ -s "$TMP/$name.port" ] && break
    sleep 0.05
  done
  if [ ! -s "$TMP/$name.port" ]; then
    fail "server $name did not start: $(cat "$TMP/$name.log")"
    return 1
  fi
  printf -v "PORT_$name" '%s' "$(cat "$TMP/$name.port")"
}

# ps_stop NAME: SIGTERM, and the server must exit 0 (under ASan also: no leak).
ps_stop() {
  local pid_var="PID_$1" rc
  kill -TERM "${!pid_var}" 2>/dev/null
  wait "${!pid_var}"
  rc=$?
  [ "$rc" -eq 0 ] && pass || fail "server $1 exited with $rc after SIGTERM: $(tail -5 "$TMP/$1.log")"
}

# wait_ok NAME: the background process NAME exits 0.
wait_ok() {
  local pid_var="PID_$1" rc
  wait "${!pid_var}"
  rc=$?
  [ "$rc" -eq 0 ] && pass || fail "$1 exited with $rc: $(grep -E 'error|warning' "$TMP/$1.log" | tail -5)"
}

# stat_of NAME FIELD: from the server's last stats line, the number before FIELD
# ("pushes", "pulls") or after it ("version", "max clock gap").
stat_of() {
  local line
  line=$(grep 'stats (' "$TMP/$1.log" | tail -1)
  case $2 in
    version) sed -nE 's/.*version ([0-9]+),.*/\1/p' <<<"$line" ;;
    gap) sed -nE 's/.*max clock gap ([0-9]+).*/\1/p' <<<"$line" ;;
    *) sed -nE "s/.* ([0-9]+) $2.*/\\1/p" <<<"$line" ;;
  esac
}

# pushes_of NAME: pushes a worker reports at its end.
pushes_of() { sed -nE 's/^PS: [0-9]+ exchanges, ([0-9]+) pushes.*/\1/p' "$TMP/$1.log"; }
