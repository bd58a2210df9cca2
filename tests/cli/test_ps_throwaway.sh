# Throwaway clients do not stall SSP (issue 14, defect 7). Two SSP workers (staleness 1)
# train while a client says HELLO with a new worker id every 50 ms and hangs up without
# a push, 120 times. Such a member stays until ps.heartbeat_timeout_s (here 300 s) but
# holds nobody back meanwhile, so the workers finish long before any of them is
# dropped; before, each one held every pull for the whole timeout (a guard kills the
# workers after 150 s; each worker step waits 20 ms so that they overlap). Also: a server told to listen beyond loopback without a token
# says so in a warning line at start (checked on an address it cannot bind, so that
# nothing listens beyond loopback here), and says nothing of it with a token.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
BAD="$BUILD/tests/ps_bad_client"
D="$TMP/data"
make_subset "$D" 3000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

ps_start s0 --set ps.consistency=ssp --set ps.staleness=1 --set ps.heartbeat_timeout_s=300 || finish
for w in 0 1; do
  DT_TEST_PS_DELAY_MS=20 BG_LIMIT=150 bg "w$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" \
    --set ps.servers="127.0.0.1:$PORT_s0" --set ps.worker_id=$w --set ps.num_workers=2 \
    --set train.epochs=4 --set optimizer.momentum=0.5 --set train.lr=0.1
done
wait_log "$TMP/w0.log" "model signature [0-9a-f]+$" 60 || fail "worker 0 did not connect: $(cat "$TMP/w0.log")"
sig=$(sed -nE 's/.*model signature ([0-9a-f]+)$/\1/p' "$TMP/w0.log")
bg throwaway "$BAD" 127.0.0.1 "$PORT_s0" throwaway "" "$sig" 235146 120
wait_ok w0
wait_ok w1
wait_ok throwaway
ps_stop s0
cat "$TMP/throwaway.log"
grep -hE "^(Epoch 4/|Test|PS)" "$TMP/w0.log" "$TMP/w1.log"
grep -E "^stats \(final" "$TMP/s0.log"
for w in 0 1; do
  grep -q "^Epoch 4/4" "$TMP/w$w.log" && pass || fail "worker $w did not finish: $(tail -2 "$TMP/w$w.log")"
done
n=$(grep -c "holding nobody back until it has pushed" "$TMP/s0.log")
[ "$n" -ge 100 ] && pass || fail "$n throwaway clients left the server, expected 120"
# They came while the workers trained (each step waits 20 ms: 84 steps take > 1.7 s).
first=$(grep -n "worker 20[0-9][0-9] joined" "$TMP/s0.log" | head -1 | cut -d: -f1)
bye=$(grep -n "worker 0 left (BYE)" "$TMP/s0.log" | head -1 | cut -d: -f1)
[ -n "$first" ] && [ -n "$bye" ] && [ "$first" -lt "$bye" ] && pass ||
  fail "no throwaway client joined while the workers trained (lines '$first', '$bye')"
# None of them was dropped before the workers were done: they were members all along.
grep -q "worker 20[0-9][0-9] dropped" "$TMP/s0.log" && fail "a throwaway client was dropped" || pass

# The warning for an open server without a token, and none with one.
expect_exit 1 "warning: listening on 192.0.2.1 without a token: anyone who can reach it can" \
  "no token beyond loopback" -- env -u DTRAIN_PS_TOKEN "$PS" --listen 192.0.2.1:0
out=$(DTRAIN_PS_TOKEN=secret "$PS" --listen 192.0.2.1:0 2>&1)
grep -q "without a token" <<<"$out" && fail "a warning although a token is set: $out" || pass
finish
