# The watchdog: when one rank stops answering (the test-only fault switch
# DT_TEST_STALL_RANK/DT_TEST_STALL_AT_STEP makes it sleep forever at that step), the
# other rank gives up after sync.timeout_s (3 s here), reports the step, the
# gradient bucket and the rank it is waiting for, and the whole job exits non-zero
# well within the test's bound (mpiexec runs under `timeout 60`; we require < 30 s).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"

D="$TMP/data"
make_subset "$D" 1200
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress
  --set train.epochs=1 --set tensorboard.enabled=false --set sync.timeout_s=3)

# stall NAME STALL_RANK STEP EXTRA_ARGS...: the job must fail fast, naming the step
# and the silent rank from the other rank's point of view.
stall() {
  local name=$1 rank=$2 step=$3 out rc start=$SECONDS
  shift 3
  out=$(DT_TEST_STALL_RANK=$rank DT_TEST_STALL_AT_STEP=$step "${MPIEXEC[@]}" \
    -x DT_TEST_STALL_RANK -x DT_TEST_STALL_AT_STEP -n 2 "$WORKER" "${args[@]}" "$@" 2>&1)
  rc=$?
  local took=$((SECONDS - start)) other=$((1 - rank))
  echo "$name: exit $rc after $took s: $out"
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && pass || fail "$name: exit status $rc (124: hung)"
  [ "$took" -lt 30 ] && pass || fail "$name: took $took s"
  local line
  line=$(grep -F "[rank $other] error:" <<<"$out")
  for needle in "step $step: gradient bucket 0 of" "did not finish within 3 s" \
    "waiting for rank $rank (at step $step"; do
    grep -qF -- "$needle" <<<"$line" && pass || fail "$name: no '$needle' in rank $other's error: $line"
  done
  grep -qF "[rank $rank] warning: DT_TEST_STALL_RANK" <<<"$out" && pass ||
    fail "$name: the stalled rank did not announce itself"
}

stall "rank 1 stalls at step 5" 1 5
stall "rank 0 stalls at step 3, bucketed" 0 3 --set sync.bucket_mb=0.05
finish
