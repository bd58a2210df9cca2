# TensorBoard in a parameter-server job (issue 14): two workers started together with
# the same [tensorboard] run each log into a run of their own, <logdir>/<run>/worker-<id>/
# (train/ and validation/), with their own per-step and epoch curves, instead of both
# writing into <logdir>/<run>/train/ where one's curves hid the other's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ps.sh"
D="$TMP/data"
make_subset "$D" 2000
# shellcheck disable=SC2046
SUBSET=($(data_args "$D"))

ps_start s0 || finish
for w in a b; do
  bg "$w" "$WORKER" "${MLP[@]}" "${SUBSET[@]}" --set ps.servers="127.0.0.1:$PORT_s0" \
    --set ps.num_workers=2 --set train.epochs=2 --set tensorboard.enabled=true \
    --set tensorboard.logdir="$TMP/runs" --set tensorboard.run=job --set tensorboard.every_steps=5
done
wait_ok a
wait_ok b
ps_stop s0
find "$TMP/runs" -type f | sed "s|$TMP/||" | sort
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
  [ "$n" -ge 4 ] && pass || fail "worker $id: $n batch_loss values in its own run"
  [ "$(grep -c "| epoch_loss scalar=" "$TMP/w$id.txt")" -eq 2 ] && pass ||
    fail "worker $id: not 2 epoch_loss values in its own run"
  grep -q "TensorBoard logs: $TMP/runs/job/worker-$id " "$TMP/a.log" "$TMP/b.log" && pass ||
    fail "no worker says it logs to worker-$id"
done
finish
