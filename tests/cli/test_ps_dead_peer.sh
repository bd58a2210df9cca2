# A server that goes silent without closing anything is noticed by its worker within
# the heartbeat timeout, not after sync.timeout_s (issue 14, defect 8). On loopback
# the server is stopped with SIGSTOP: its kernel keeps the connections open and
# accepts bytes, but nothing answers, as from a hung host. The worker hears from a
# live server at least every ps.heartbeat_s (the server answers each HEARTBEAT), so
# after WELCOME's ps.heartbeat_timeout_s = 2 s of silence it reconnects, and once the
# server runs again it carries on and finishes. (The netns cluster test downs a real
# link for the same.) The bound checked is generous: 8 s for a 2 s timeout.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
D="$TMP/data"
make_subset "$D" 3000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

ps_start s0 --set ps.heartbeat_timeout_s=2 || finish
DT_TEST_PS_DELAY_MS=20 bg w0 "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_s0" \
  --set ps.heartbeat_s=0.5 --set train.epochs=3
wait_log "$TMP/w0.log" "^Epoch 1/3" 120 || fail "the worker did not train: $(tail -3 "$TMP/w0.log")"
kill -STOP "$PID_s0"
wait_log "$TMP/w0.log" "parameter server 127.0.0.1:$PORT_s0: silent for [0-9.]+ s \(longer than its ps.heartbeat_timeout_s = 2\); reconnecting" 8 &&
  pass || fail "the worker did not notice the silent server: $(tail -3 "$TMP/w0.log")"
kill -CONT "$PID_s0"
wait_ok w0
ps_stop s0
grep -vE "^(Epoch|input|dense|relu|Layer|Total|Trainable)" "$TMP/w0.log"
grep -q "parameter server 127.0.0.1:$PORT_s0: reconnected after" "$TMP/w0.log" && pass ||
  fail "the worker did not reconnect"
grep -q "^Epoch 3/3" "$TMP/w0.log" && pass || fail "the worker did not finish"
finish
