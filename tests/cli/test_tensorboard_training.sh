# A training run's logdir: train/ and validation/ event files with the expected tags
# (read with our --events dump), corrupt records reported at the right byte offset,
# and a live TensorBoard server listing the runs' scalars with the trainer's values.
source "$(dirname "$0")/lib.sh"
PY="${DT_PYTHON:-$SRC/.venv/bin/python}"

D="$TMP/data"
make_subset "$D" 1200
# shellcheck disable=SC2046
"$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --no-progress $(data_args "$D") \
  --set train.epochs=2 --set tensorboard.logdir="$TMP/runs" --set tensorboard.run=r1 \
  --set tensorboard.every_steps=2 >"$TMP/out.txt" 2>&1 || fail "training failed: $(cat "$TMP/out.txt")"
train=$(ls "$TMP"/runs/r1/train/events.out.tfevents.* 2>/dev/null)
val=$(ls "$TMP"/runs/r1/validation/events.out.tfevents.* 2>/dev/null)
[ -n "$train" ] && pass || fail "no train event file"
[ -n "$val" ] && pass || fail "no validation event file"
[[ "$(basename "$train")" =~ ^events\.out\.tfevents\.[0-9]{10}\.[^.]+\.[0-9]+\.[0-9]+$ ]] && pass ||
  fail "event file name $(basename "$train")"

"$WORKER" --events "$train" >"$TMP/train.txt" || fail "dumping $train failed"
"$WORKER" --events "$val" >"$TMP/val.txt" || fail "dumping $val failed"
head -1 "$TMP/train.txt" | grep -q "file_version=brain.Event:2" && pass || fail "first record is not the version event"
for tag in config batch_loss learning_rate samples_per_sec step_time_ms/data step_time_ms/compute \
  step_time_ms/comm_wait epoch_loss epoch_accuracy dense_1.kernel dense_1.kernel/gradient \
  dense_3.bias/gradient dense_1/weights; do
  grep -q "| $tag " "$TMP/train.txt" && pass || fail "train run lacks tag $tag"
done
for tag in epoch_loss epoch_accuracy; do
  [ "$(grep -c "| $tag scalar=" "$TMP/val.txt")" -eq 2 ] && pass || fail "validation run: expected 2 $tag values"
done
grep -q "| dense_1/weights image=" "$TMP/train.txt" && pass || fail "no weight image"

# A truncated tail and a flipped byte are reported with the offset of the bad record.
last=$(tail -1 "$TMP/val.txt" | sed -E 's/^offset=([0-9]+) .*/\1/')
cp "$val" "$TMP/cut"
truncate -s $((last + 5)) "$TMP/cut"
expect_exit 1 "offset $last" "truncated event file" -- "$WORKER" --events "$TMP/cut"
cp "$val" "$TMP/flip"
# Inverted, not overwritten: a byte that already held the new value would change nothing
# (the byte is part of a wall-clock time, so that happened now and then).
byte=$(od -An -tu1 -j $((last + 14)) -N1 "$TMP/flip" | tr -d ' ')
printf "\\$(printf '%03o' $((byte ^ 255)))" |
  dd of="$TMP/flip" bs=1 seek=$((last + 14)) conv=notrunc status=none
cmp -s "$val" "$TMP/flip" && fail "the flipped copy equals the event file"
expect_exit 1 "offset $last" "flipped byte in an event file" -- "$WORKER" --events "$TMP/flip"

if [ -x "$SRC/.venv/bin/tensorboard" ] || [ -n "${DT_PYTHON:-}" ]; then
  tb="$(dirname "$PY")/tensorboard"
  timeout 150 "$PY" "$SRC/tests/python/check_tb_http.py" "$tb" "$TMP/runs/r1" "$TMP/out.txt" && pass ||
    fail "TensorBoard's HTTP API does not show the run as trained"
else
  fail "no tensorboard in $SRC/.venv: run scripts/setup-python-venv.sh"
fi
finish
