# Faults, on a 6,000-image subset:
#  - kill -9 one of two workers in sync mode in the middle of training: the server
#    keeps it as a member for ps.heartbeat_timeout_s (2 s; it might reconnect), then
#    drops it, and the other worker finishes alone instead of waiting forever.
#  - kill -9 the parameter server of two workers (ssp, staleness 2) and start it
#    again with --resume: it restores its newest checkpoint (taken every 100 updates),
#    whose version is at least that of the last checkpoint it logged before the kill,
#    with the workers' clocks; the workers reconnect by themselves, carry on, and
#    finish; the server then counts more updates than it restored.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
D="$TMP/data"
make_subset "$D" 6000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

# --- a worker dies, sync mode ---
ps_start sync --set ps.consistency=sync --set ps.heartbeat_timeout_s=2 || finish
for w in 0 1; do
  bg "sync_w$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_sync" \
    --set ps.worker_id=$w --set ps.num_workers=2 --set ps.heartbeat_s=0.5 --set train.epochs=40
done
if wait_log "$TMP/sync_w1.log" "^Epoch 2/40" 120; then
  kill -9 "$PID_sync_w1"
  pass
else
  fail "worker 1 did not reach epoch 2: $(tail -3 "$TMP/sync_w1.log")"
fi
wait_ok sync_w0
ps_stop sync
grep -E "^(Epoch (1|2|40)/|Test|PS)" "$TMP/sync_w0.log"
grep -vE "^stats" "$TMP/sync.log"
grep -qE "worker 1 dropped: nothing heard for [0-9.]+ s \(ps.heartbeat_timeout_s = 2\)" \
  "$TMP/sync.log" && pass || fail "the server did not drop the killed worker"
grep -q "worker 0 left (BYE)" "$TMP/sync.log" && pass || fail "worker 0 did not finish with BYE"
grep -q "^Epoch 40/40" "$TMP/sync_w0.log" && pass || fail "worker 0 did not train to the end"

# --- the server dies and comes back from its checkpoint, ssp ---
CK="$TMP/ckpt"
SSP=(--set ps.consistency=ssp --set ps.staleness=2)
ps_start restart "${SSP[@]}" --set ps.checkpoint_dir="$CK" --set ps.checkpoint_every_updates=100 \
  --set ps.checkpoint_every_s=0 || finish
for w in 0 1; do
  bg "restart_w$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_restart" \
    --set ps.worker_id=$w --set ps.num_workers=2 --set train.epochs=30 \
    --set optimizer.momentum=0.5 --set train.lr=0.1
done
if wait_log "$TMP/restart.log" "checkpoint .*/ps-0*[3-9][0-9][0-9] written" 120; then
  kill -9 "$PID_restart"
  wait "$PID_restart" 2>/dev/null
  pass
else
  fail "no third checkpoint: $(tail -3 "$TMP/restart.log")"
fi
saved=$(sed -nE 's/^checkpoint .* written: version ([0-9]+),.*/\1/p' "$TMP/restart.log" | tail -1)
PS_PORT=$PORT_restart ps_start restart2 --resume "${SSP[@]}" --set ps.checkpoint_dir="$CK" \
  --set ps.checkpoint_every_updates=100 --set ps.checkpoint_every_s=0 || finish
wait_ok restart_w0
wait_ok restart_w1
ps_stop restart2
grep -vE "^checkpoint" "$TMP/restart2.log"
grep -hE "^(Test|PS)|parameter server" "$TMP/restart_w0.log" "$TMP/restart_w1.log"
restored=$(sed -nE 's/^resumed from .*: version ([0-9]+),.*/\1/p' "$TMP/restart2.log")
[ -n "$saved" ] && [ -n "$restored" ] && [ "$restored" -ge "$saved" ] && pass ||
  fail "restored version '$restored' < last checkpoint before the kill '$saved'"
final=$(stat_of restart2 version)
[ -n "$final" ] && [ "$final" -gt "$restored" ] && pass ||
  fail "no updates after the restart (version $final, restored $restored)"
for w in 0 1; do
  grep -q "reconnected after" "$TMP/restart_w$w.log" && pass || fail "worker $w did not reconnect"
  grep -q "^Epoch 30/30" "$TMP/restart_w$w.log" && pass || fail "worker $w did not finish"
  expect_test_accuracy "$(cat "$TMP/restart_w$w.log")" 6000 0.75
done
finish
