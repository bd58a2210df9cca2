# Bad input to a parameter server while a healthy worker trains through it. Each bad
# connection must get the right ERROR and be closed, with one log line on the server,
# while the server stays up and the worker keeps training:
#   random bytes (8 streams), a truncated frame, a 4 GiB length prefix, an unknown
#   type, PULL before HELLO, a wrong token, a wrong model signature, a wrong parameter
#   count, a member that reads none of its replies (ps.max_buffered_mb), one
#   connection too many (ps.max_connections), a connection that never speaks
#   (ps.heartbeat_timeout_s); and two real workers, one with a wrong token (exit 2,
#   BAD_TOKEN) and one with other optimizer settings (exit 2, BAD_SIGNATURE).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
BAD="$BUILD/tests/ps_bad_client"
D="$TMP/data"
make_subset "$D" 6000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))
printf 'the-right-token\n' >"$TMP/token"

ps_start s0 --set ps.token_file="$TMP/token" --set ps.max_connections=4 \
  --set ps.max_buffered_mb=4 --set ps.heartbeat_timeout_s=3 || finish
bg w0 "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_s0" \
  --set ps.token_file="$TMP/token" --set ps.heartbeat_s=0.5 --set ps.heartbeat_timeout_s=3 \
  --set train.epochs=100000 --set checkpoint.dir="$TMP/wckpt" --set checkpoint.every_epochs=0
wait_log "$TMP/w0.log" "^Epoch 1/" 120 && pass || fail "the healthy worker did not start"
sig=$(sed -nE 's/.*model signature ([0-9a-f]+)$/\1/p' "$TMP/w0.log")
np=235146

cases=(random truncated huge unknown_type no_hello bad_token bad_signature bad_shard unread
  too_many idle)
for c in "${cases[@]}"; do
  out=$("$BAD" 127.0.0.1 "$PORT_s0" "$c" the-right-token "$sig" "$np" 2>&1)
  rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] && pass || fail "case $c: $out"
done
expect_exit 2 "BAD_TOKEN" "a worker with a wrong token" -- \
  env DTRAIN_PS_TOKEN=wrong "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_s0"
expect_exit 2 "BAD_SIGNATURE" "a worker with another optimizer" -- \
  "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_s0" \
  --set ps.token_file="$TMP/token" --set optimizer.momentum=0.8
kill -0 "$PID_s0" 2>/dev/null && pass || fail "the server died"
kill -0 "$PID_w0" 2>/dev/null && pass || fail "the healthy worker stopped during the attacks"
# It goes on training: two more epochs, then SIGTERM stops it cleanly (a checkpoint,
# exit 0).
e=$(grep -cE "^Epoch [0-9]+/" "$TMP/w0.log")
wait_log "$TMP/w0.log" "^Epoch $((e + 2))/" 120 && pass || fail "the worker stopped training"
kill -TERM "$PID_w0"
wait_ok w0
ps_stop s0
grep -E "^Epoch $((e + 2))/|Stopped" "$TMP/w0.log"
grep -vE "^stats" "$TMP/s0.log"
# One line per closed connection: 8 random + 10 other cases + 2 workers; all but the
# idle one (a TIMEOUT) count as bad input.
n=$(grep -c "; closing it$" "$TMP/s0.log")
[ "$n" -eq 20 ] && pass || fail "$n 'closing it' lines in the server log, expected 20"
bad=$(stat_of s0 "bad connection")
[ "$bad" = 19 ] && pass || fail "the server counted $bad bad connections, expected 19"
for code in FRAME_TOO_LARGE TRUNCATED UNKNOWN_TYPE PROTOCOL BAD_TOKEN BAD_SIGNATURE BAD_SHARD \
  BUFFER_LIMIT TOO_MANY_CONNECTIONS TIMEOUT; do
  grep -qE "^warning: connection .*: $code: " "$TMP/s0.log" && pass || fail "no $code in the server log"
done
finish
