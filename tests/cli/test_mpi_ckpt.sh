# Checkpoints of a 2-rank sync run:
#  - SIGKILL of one rank at a random step (mpiexec then ends the job), then --resume
#    with 2 ranks: the final parameters are bit-identical to an uninterrupted run;
#  - SIGUSR1 to mpiexec (which forwards it to the ranks; a SIGTERM would make it abort
#    the job), and SIGTERM to the rank processes (what Slurm and Kubernetes do): the
#    ranks agree on a step, write one checkpoint (rank 0 the shared files, each rank
#    its own), exit 0; resuming ends bit-identical;
#  - resuming that 2-rank checkpoint with 1 process says so and trains on to the
#    accuracy band of the uninterrupted run.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"
source "$(dirname "$0")/ckpt.sh"

EPOCHS=30
# Early stopping would end these runs before the signals arrive.
args=("${CKPT_ARGS[@]}" --set train.epochs=$EPOCHS --set train.batch_size=8 --set early_stopping.patience=1000)
ck=(--set checkpoint.every_steps=97 --set checkpoint.keep_last=2)

start=$(date +%s%N)
"${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" --save-params "$TMP/ref.bin" >"$TMP/ref.log" 2>&1 ||
  fail "reference run: exit status $?: $(cat "$TMP/ref.log")"
ms=$((($(date +%s%N) - start) / 1000000))
ref_acc=$(sed -nE 's/^Test: loss: [0-9.]+ - accuracy: ([0-9.]+) .*/\1/p' "$TMP/ref.log")
echo "reference run (2 ranks): ${ms} ms, test accuracy $ref_acc"

# SIGKILL one rank, then resume.
K1="$TMP/k1"
"${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K1" \
  >"$TMP/killed.log" 2>&1 &
mpi_pid=$!
wait_for_step "$K1" 97 1200 120 || fail "no checkpoint within 120 s: $(cat "$TMP/killed.log")"
random_delay 0 20
rank_pid=$(pgrep -f "^$WORKER .*checkpoint.dir=$K1" | tail -1)
if [ -n "$rank_pid" ]; then
  kill -KILL "$rank_pid"
  pass
else
  fail "no rank process to kill (the run ended too soon)"
fi
wait $mpi_pid
status=$?
[ $status -ne 0 ] && pass || fail "the job did not fail after a rank was killed"
echo "killed rank pid $rank_pid at $(cat "$K1/latest"); mpiexec exit status $status"
"${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$K1" --resume \
  --save-params "$TMP/k1.bin" >"$TMP/k1.log" 2>&1 ||
  fail "resume after SIGKILL: exit status $?: $(cat "$TMP/k1.log")"
grep -q "^Resumed from $K1/ckpt-" "$TMP/k1.log" && pass || fail "no 'Resumed from': $(cat "$TMP/k1.log")"
expect_same "2 ranks: SIGKILL + resume vs uninterrupted" "$TMP/ref.bin" "$TMP/k1.bin"

# stop_run NAME DIR SIGNAL TARGET: starts a checkpointing run into DIR, waits for its
# first checkpoint and a random moment, sends SIGNAL to TARGET (mpiexec, or ranks),
# expects exit 0 with a preemption checkpoint, then resumes it to the end: the final
# parameters must equal the uninterrupted run's.
stop_run() {
  local name=$1 dir=$2 sig=$3 target=$4 mpi_pid status
  "${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$dir" \
    >"$TMP/$name.log" 2>&1 &
  mpi_pid=$!
  wait_for_step "$dir" 97 1200 120 || fail "$name: no checkpoint within 120 s: $(cat "$TMP/$name.log")"
  random_delay 0 20
  if [ "$target" = mpiexec ]; then
    pkill "-$sig" -f "^mpiexec .*checkpoint.dir=$dir"
  else
    pkill "-$sig" -f "^$WORKER .*checkpoint.dir=$dir"
  fi
  wait $mpi_pid
  status=$?
  [ $status -eq 0 ] && pass || fail "$name: exit status $status, expected 0: $(cat "$TMP/$name.log")"
  grep -q "Stopped by a signal after checkpoint step" "$TMP/$name.log" && pass ||
    fail "$name: no stop message: $(cat "$TMP/$name.log")"
  [ "$(latest_reason "$dir")" = preempted ] && pass || fail "$name: latest is not the preemption checkpoint"
  local stopped
  stopped=$(cat "$dir/latest")
  [ -f "$dir/$stopped/rank-0.safetensors" ] && [ -f "$dir/$stopped/rank-1.safetensors" ] && pass ||
    fail "$name: the checkpoint lacks a rank file: $(ls "$dir/$stopped")"
  echo "$name: stopped at $stopped"
  cp -r "$dir" "$dir.copy"
  "${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$dir" --resume \
    --save-params "$TMP/$name.bin" >"$TMP/$name-resume.log" 2>&1 ||
    fail "$name: resume: exit status $?: $(cat "$TMP/$name-resume.log")"
  expect_same "2 ranks: $name + resume vs uninterrupted" "$TMP/ref.bin" "$TMP/$name.bin"
}
stop_run usr1 "$TMP/k2" USR1 mpiexec
stop_run term "$TMP/k3" TERM ranks

# The 2-rank checkpoint resumed by one process (global batch 8 instead of 16).
"$WORKER" "${args[@]}" "${ck[@]}" --set checkpoint.dir="$TMP/k2.copy" --resume >"$TMP/one.log" 2>&1 ||
  fail "2 -> 1 rank resume: exit status $?: $(cat "$TMP/one.log")"
grep -q "resuming a 2-rank checkpoint with 1 rank(s)" "$TMP/one.log" && pass ||
  fail "2 -> 1: the world-size change is not reported: $(cat "$TMP/one.log")"
grep "resuming a 2-rank" "$TMP/one.log"
expect_test_accuracy "$(cat "$TMP/one.log")" 1500 "$(awk -v a="$ref_acc" 'BEGIN { print a - 0.03 }')"
grep '^Test:' "$TMP/one.log"
finish
