# dtrain-ps's command line and the worker's PS settings: help, version, exit status 2
# for bad usage or config (each message naming the problem), 1 when the server cannot
# listen, --resume with nothing to restore, and a server that stops cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"

out=$("$PS" --help) && grep -q "^Usage: dtrain-ps" <<<"$out" && grep -q -- "--resume" <<<"$out" &&
  pass || fail "--help"
[ "$("$PS" --version)" = "dtrain-ps $(sed -nE 's/^project\(dtrain VERSION ([0-9.]+).*/\1/p' \
  "$SRC/CMakeLists.txt")" ] && pass || fail "--version: $("$PS" --version)"
expect_exit 2 "unknown option '--bogus'" "unknown option" -- "$PS" --bogus
expect_exit 2 "unknown key 'stalenes' in [ps]" "misspelt key" -- "$PS" --set ps.stalenes=2
expect_exit 2 "[ps] consistency" "bad consistency" -- "$PS" --set ps.consistency=bsp
expect_exit 2 "--resume needs ps.checkpoint_dir" "--resume without a directory" -- "$PS" --resume
expect_exit 2 "--listen: '[::1' is not" "bad --listen" -- "$PS" --listen '[::1'
expect_exit 2 "token_file: cannot open" "missing token file" -- "$PS" --set ps.token_file=/nonexistent
# The job file's other sections are the workers': the server reads [ps] only.
expect_exit 2 "unknown key 'bogus' in [ps]" "the example plus a bad [ps] key" -- \
  "$PS" --config "$SRC/examples/fmnist-mlp.ini" --set ps.bogus=1

ps_start a || finish
expect_exit 1 "cannot listen on 127.0.0.1:$PORT_a" "port in use" -- "$PS" --listen "127.0.0.1:$PORT_a"
ps_stop a
grep -q "stats (final)" "$TMP/a.log" && pass || fail "no final stats line"
# The updates are applied in the server's event-loop thread, with denormals flushed
# (issue 16): the server says what it found in that thread's floating-point mode.
if [ "$(uname -m)" = x86_64 ]; then
  grep -q "listening on .*; denormals flushed to zero$" "$TMP/a.log" && pass ||
    fail "the server's thread does not flush denormals: $(grep listening "$TMP/a.log")"
fi

# --resume with an empty directory starts empty, with a warning.
ps_start b --resume --set ps.checkpoint_dir="$TMP/none" || finish
wait_log "$TMP/b.log" "--resume: no checkpoint in .*; starting empty" 10 && pass ||
  fail "--resume on nothing: $(cat "$TMP/b.log")"
ps_stop b

# Workers: sync.mode = ps needs servers; [ps] keys are unknown without it.
expect_exit 2 "sync.mode = ps needs [ps] servers" "ps mode without servers" -- \
  "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set sync.mode=ps
expect_exit 2 "unknown section [ps]" "[ps] keys without ps mode" -- \
  "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set ps.servers=127.0.0.1:1
expect_exit 2 "worker_id = 2 must be below num_workers = 2" "worker id out of range" -- \
  "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set sync.mode=ps \
  --set ps.servers=127.0.0.1:1 --set ps.worker_id=2 --set ps.num_workers=2
# Nobody listening: the worker gives up after ps.reconnect_timeout_s, exit 1.
expect_exit 1 "unreachable for" "no server" -- \
  "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set sync.mode=ps \
  --set ps.servers="127.0.0.1:$PORT_a" --set ps.reconnect_timeout_s=1 --set data.train_limit=1000
# Also when the timeout outlasts several reconnection attempts (issue 14, defect 4: each
# failed attempt restarted the clock, and the worker waited forever). A KILL after 60 s
# turns a hang into a failure here.
start=$(date +%s)
expect_exit 1 "127.0.0.1:$PORT_a unreachable for 4" "no server, 4 s" -- \
  timeout -s KILL 60 "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set sync.mode=ps \
  --set ps.servers="127.0.0.1:$PORT_a" --set ps.reconnect_timeout_s=4 --set data.train_limit=1000
took=$(($(date +%s) - start))
[ "$took" -lt 30 ] && pass || fail "giving up took $took s with ps.reconnect_timeout_s=4"
# A SIGTERM while the worker waits for its servers ends it at once, naming them.
bg waiting "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --no-progress --set sync.mode=ps \
  --set ps.servers="127.0.0.1:$PORT_a" --set ps.reconnect_timeout_s=600 --set data.train_limit=1000
wait_log "$TMP/waiting.log" "^Total params" 60 || fail "the worker did not start: $(cat "$TMP/waiting.log")"
sleep 1
kill -TERM "$PID_waiting"
for ((i = 0; i < 100; i++)); do kill -0 "$PID_waiting" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID_waiting" 2>/dev/null; then
  fail "the worker ignored SIGTERM while waiting for its servers"
else
  wait "$PID_waiting"
  rc=$?
  [ "$rc" -eq 1 ] && grep -q "stopped by signal 15 while connecting to the parameter servers (127.0.0.1:$PORT_a)" \
    "$TMP/waiting.log" && pass || fail "after SIGTERM: exit $rc, $(tail -2 "$TMP/waiting.log")"
fi
finish
