# TensorBoard in a parameter-server job (issue 14): two workers started together with
# the same [tensorboard] run each log into a run of their own, <logdir>/<run>/worker-<id>/
# (train/ and validation/), with their own per-step and epoch curves, instead of both
# writing into <logdir>/<run>/train/ where one's curves hid the other's. The server,
# given ps.logdir, logs its own run into <ps.logdir>/ps-0/: updates and pushes per
# second, live workers and the staleness of its answers, a point every ps.log_every_s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
D="$TMP/data"
make_subset "$D" 2000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

ps_start s0 --set ps.logdir="$TMP/runs" --set ps.log_every_s=1 || finish
for w in a b; do
  DT_TEST_PS_DELAY_MS=30 bg "$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" \
    --set ps.servers="127.0.0.1:$PORT_s0" --set ps.num_workers=2 --set train.epochs=4 \
    --set tensorboard.enabled=true --set tensorboard.logdir="$TMP/runs" --set tensorboard.run=job \
    --set tensorboard.every_steps=5
done
wait_ok a
wait_ok b
ps_stop s0
find "$TMP/runs" -type f | sed "s|$TMP/||" | sort

# --- each worker's own run ---
[ ! -e "$TMP/runs/job/train" ] && pass || fail "a worker wrote into the shared run's train/"
for id in 0 1; do
  for part in train validation; do
    f=$(ls "$TMP/runs/job/worker-$id/$part"/events.out.tfevents.* 2>/dev/null)
    [ "$(wc -w <<<"$f")" -eq 1 ] && pass || fail "worker $id: not one $part event file: '$f'"
  done
  f=$(ls "$TMP/runs/job/worker-$id/train"/events.out.tfevents.* 2>/dev/null | head -1)
  [ -n "$f" ] || continue
  "$WORKER" --events "$f" >"$TMP/w$id.txt" || fail "worker $id: cannot read $f"
  # 900 samples, batch 64: 14 steps per epoch, a batch_loss every 5 steps.
  n=$(grep -c "| batch_loss scalar=" "$TMP/w$id.txt")
  [ "$n" -ge 8 ] && pass || fail "worker $id: $n batch_loss values in its own run"
  [ "$(grep -c "| epoch_loss scalar=" "$TMP/w$id.txt")" -eq 4 ] && pass ||
    fail "worker $id: not 4 epoch_loss values in its own run"
  grep -q "TensorBoard logs: $TMP/runs/job/worker-$id " "$TMP/a.log" "$TMP/b.log" && pass ||
    fail "no worker says it logs to worker-$id"
done

# --- the server's run: a point at least every second while the workers trained (each
# step waits 30 ms: 56 steps), and a last one when it stopped ---
f=$(ls "$TMP/runs/ps-0"/events.out.tfevents.* 2>/dev/null | head -1)
[ -n "$f" ] && pass || fail "the server wrote no event file: $(cat "$TMP/s0.log")"
if [ -n "$f" ]; then
  "$WORKER" --events "$f" >"$TMP/ps.txt" || fail "cannot read $f"
  grep -E "updates_per_s|live_workers" "$TMP/ps.txt"
  for tag in updates_per_s pushes_per_s live_workers staleness_mean staleness_max; do
    grep -q "| $tag scalar=" "$TMP/ps.txt" && pass || fail "the server's run lacks $tag"
  done
  grep -q "| live_workers scalar=2$" "$TMP/ps.txt" && pass || fail "no point with 2 live workers"
  grep -qE "\| updates_per_s scalar=[1-9]" "$TMP/ps.txt" && pass || fail "no point with updates"
  grep -q "TensorBoard logs: $TMP/runs/ps-0$" "$TMP/s0.log" && pass ||
    fail "the server does not say where it logs"
fi
finish
