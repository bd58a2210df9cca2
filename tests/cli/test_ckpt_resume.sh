# Checkpoints of a single-process run:
#  - SIGKILL at a random step, then --resume: the final parameters are bit-identical
#    to those of an uninterrupted run;
#  - SIGTERM: a checkpoint is written, exit 0; resuming again ends bit-identical;
#    two signals in a row: the process exits at once;
#  - a flipped byte / a truncated file in the latest checkpoint: reported, the one
#    before it is used, and the run still ends bit-identical;
#  - a write that fails (file size limit, as a full disk): reported, training goes
#    on, `latest` stays on the previous good checkpoint;
#  - the model file is read by the real safetensors package and by a numpy-only
#    reader, with the names, shapes and values the trainer holds;
#  - --inspect prints what a checkpoint holds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ckpt.sh"
python="${DT_PYTHON:-$SRC/.venv/bin/python}"

EPOCHS=40
args=("${CKPT_ARGS[@]}" --set train.epochs=$EPOCHS)
ck=(--set checkpoint.every_steps=37 --set checkpoint.keep_last=3)

# The uninterrupted reference, and how long it takes (to aim the kills).
start=$(date +%s%N)
"$WORKER" "${args[@]}" --set csv_log.file="$TMP/ref.csv" --save-params "$TMP/ref.bin" >"$TMP/ref.log" 2>&1 ||
  fail "reference run: exit status $?: $(cat "$TMP/ref.log")"
ms=$((($(date +%s%N) - start) / 1000000))
echo "reference run: ${ms} ms, $(grep '^Test:' "$TMP/ref.log")"

# SIGKILL at a random moment after the first checkpoint, then resume.
K1="$TMP/k1"
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K1" --set csv_log.file="$TMP/k1.csv" \
  >"$TMP/killed.log" 2>&1 &
pid=$!
wait_for_step "$K1" 37 600 120 || fail "no checkpoint within 120 s: $(cat "$TMP/killed.log")"
random_delay 0 20
kill -KILL $pid
wait $pid
status=$?
[ $status -eq 137 ] && pass || fail "the run ended with $status before it could be killed"
echo "killed at $(cat "$K1/latest")"
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K1" --set csv_log.file="$TMP/k1.csv" \
  --resume --save-params "$TMP/k1.bin" >"$TMP/k1.log" 2>&1 ||
  fail "resume after SIGKILL: exit status $?: $(cat "$TMP/k1.log")"
grep -q "^Resumed from $K1/ckpt-" "$TMP/k1.log" && pass || fail "no 'Resumed from': $(cat "$TMP/k1.log")"
expect_same "SIGKILL + resume vs uninterrupted" "$TMP/ref.bin" "$TMP/k1.bin"
# The per-epoch CSV log (metrics, lr) of the killed and resumed run is the same file
# as the uninterrupted run's: one row per epoch, none repeated, the same numbers (the
# epoch's running metrics and the callbacks' state are in the checkpoint).
cmp -s "$TMP/ref.csv" "$TMP/k1.csv" && pass || fail "CSV logs differ: $(diff "$TMP/ref.csv" "$TMP/k1.csv")"
grep -q "early stopping" "$TMP/ref.log" && grep -q "ReduceLROnPlateau" "$TMP/ref.log" && pass ||
  fail "the reference run did not exercise the callbacks: $(cat "$TMP/ref.log")"
grep -E "early stopping|Restored" "$TMP/ref.log"

# SIGTERM: finish the step, checkpoint, exit 0; then resume to the end.
K2="$TMP/k2"
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K2" >"$TMP/term.log" 2>&1 &
pid=$!
wait_for_step "$K2" 37 600 120 || fail "no checkpoint within 120 s: $(cat "$TMP/term.log")"
random_delay 0 20
kill -TERM $pid
wait $pid
status=$?
[ $status -eq 0 ] && pass || fail "SIGTERM: exit status $status, expected 0: $(cat "$TMP/term.log")"
grep -q "Stopped by a signal after checkpoint step" "$TMP/term.log" && pass ||
  fail "SIGTERM: no stop message: $(cat "$TMP/term.log")"
[ "$(latest_reason "$K2")" = preempted ] && pass || fail "latest is not the preemption checkpoint"
cp -r "$K2" "$TMP/k5"
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K2" --resume --save-params "$TMP/k2.bin" \
  >"$TMP/k2.log" 2>&1 || fail "resume after SIGTERM: exit status $?: $(cat "$TMP/k2.log")"
expect_same "SIGTERM + resume vs uninterrupted" "$TMP/ref.bin" "$TMP/k2.bin"

# Two signals in a row (both pending while the process is stopped, so the second
# one surely arrives before the checkpoint is done): exit at once, 128 + SIGINT.
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$TMP/k4" >"$TMP/twice.log" 2>&1 &
pid=$!
wait_for_file "$TMP/k4/latest" 60
kill -STOP $pid
kill -TERM $pid
kill -INT $pid
kill -CONT $pid
wait $pid
status=$?
[ $status -eq 130 ] || [ $status -eq 143 ] && pass || fail "two signals: exit status $status, expected 130 or 143"
grep -q "second signal, exiting without a checkpoint" "$TMP/twice.log" && pass ||
  fail "two signals: no message: $(cat "$TMP/twice.log")"

# Corruption: a flipped byte in the newest checkpoint's model file. The run falls
# back to the one before it and still ends where the uninterrupted run ends.
newest=$(cat "$K1/latest")
printf '\x55' | dd of="$K1/$newest/model.safetensors" bs=1 seek=300 conv=notrunc status=none
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K1" --resume --save-params "$TMP/c1.bin" \
  >"$TMP/c1.log" 2>&1 || fail "resume past a corrupt checkpoint: exit status $?: $(cat "$TMP/c1.log")"
grep -q "checkpoint $newest (latest) cannot be used: .*model.safetensors: CRC32C .* (corrupt)" \
  "$TMP/c1.log" && pass || fail "corruption not reported: $(cat "$TMP/c1.log")"
grep -q "resuming from the older checkpoint" "$TMP/c1.log" && pass || fail "no fallback message"
expect_same "resume past a corrupt checkpoint" "$TMP/ref.bin" "$TMP/c1.bin"

# Truncation (a partial write) of the newest checkpoint's optimizer file.
newest=$(cat "$K1/latest")
truncate -s 1000 "$K1/$newest/optimizer.safetensors"
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K1" --resume --save-params "$TMP/c2.bin" \
  >"$TMP/c2.log" 2>&1 || fail "resume past a truncated checkpoint: exit status $?: $(cat "$TMP/c2.log")"
grep -q "optimizer.safetensors: 1000 bytes, the manifest says .* (truncated or partly written)" \
  "$TMP/c2.log" && pass || fail "truncation not reported: $(cat "$TMP/c2.log")"
expect_same "resume past a truncated checkpoint" "$TMP/ref.bin" "$TMP/c2.bin"

# A write that fails: files over 64 KiB cannot be written (EFBIG, as ENOSPC on a
# full disk); the model file is 100 KiB. Resuming a copy of the preempted run tries
# to checkpoint and fails; the run goes on and `latest` stays.
K5="$TMP/k5"
before=$(cat "$K5/latest")
(
  trap '' XFSZ
  ulimit -f 64
  exec "$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K5" --resume
) >"$TMP/full.log" 2>&1
status=$?
[ $status -eq 0 ] && pass || fail "failed writes: exit status $status: $(cat "$TMP/full.log")"
grep -q "checkpoint not written, training goes on: cannot write .*model.safetensors.*File too large" \
  "$TMP/full.log" && pass || fail "write failure not reported: $(cat "$TMP/full.log")"
grep -q "checkpoint(s) could not be written" "$TMP/full.log" && pass || fail "no failure count at the end"
[ "$(cat "$K5/latest")" = "$before" ] && pass || fail "latest moved from $before to $(cat "$K5/latest")"
ls -a "$K5" | grep -q '^\.tmp-' && fail "a temporary directory was left: $(ls -a "$K5")" || pass
"$WORKER" --inspect "$K5" >"$TMP/inspect.log" 2>&1 && pass || fail "--inspect after failed writes: $(cat "$TMP/inspect.log")"
grep -q "^Checkpoint $K5/$before: verified" "$TMP/inspect.log" && pass || fail "inspect: $(head -3 "$TMP/inspect.log")"
grep -qE "^  dense_1.kernel +F32 +\(784, 32\) +mean" "$TMP/inspect.log" && pass ||
  fail "inspect shows no dense_1.kernel: $(cat "$TMP/inspect.log")"
expect_exit 1 "no checkpoint in" "inspect of an empty directory" -- "$WORKER" --inspect "$TMP/data"

# The final checkpoint of K2 holds the best weights, which the run restored at the
# end: real safetensors readers must see exactly what --save-params wrote.
if [[ -x "$python" ]] && "$python" -c "import safetensors, numpy" 2>/dev/null; then
  if out=$("$python" "$SRC/tests/python/check_safetensors.py" "$K2/$(cat "$K2/latest")" \
    best_weights.safetensors "$TMP/k2.bin" \
    dense_1.kernel:784,32 dense_1.bias:32 dense_2.kernel:32,10 dense_2.bias:10 2>&1); then
    pass
  else
    fail "safetensors check: $out"
  fi
  echo "$out"
else
  fail "no Python with safetensors and numpy at $python: run scripts/setup-python-venv.sh"
fi
finish
