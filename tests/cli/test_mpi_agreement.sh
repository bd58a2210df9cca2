# The agreement check at start: ranks launched with different models or settings
# (mpiexec's MPMD syntax gives each rank its own command line) all stop at once with
# exit status 2 and a message naming the ranks and what differs; keys that may
# legitimately differ per rank (where the data lives, BLAS threads) do not stop a run.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"

D="$TMP/data"
make_subset "$D" 600
ln -s "$D" "$TMP/data-elsewhere"
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress
  --set train.epochs=1 --set tensorboard.enabled=false)

# mismatch NAME 'NEEDLE|NEEDLE...' -- RANK0_EXTRA_ARGS: rank 0 gets the extra args,
# rank 1 runs the plain config; every needle must be in the output of both ranks.
mismatch() {
  local name=$1 needles=$2 out rc start=$SECONDS
  shift 3
  out=$("${MPIEXEC[@]}" -n 1 "$WORKER" "${args[@]}" "$@" : -n 1 "$WORKER" "${args[@]}" 2>&1)
  rc=$?
  echo "$name: exit $rc after $((SECONDS - start)) s: $out"
  if [ "$rc" -ne 2 ]; then
    fail "$name: exit status $rc, expected 2"
    return
  fi
  local needle r
  IFS='|' read -ra list <<<"$needles"
  for r in 0 1; do
    for needle in "${list[@]}"; do
      grep -F "[rank $r] error:" <<<"$out" | grep -qF -- "$needle" ||
        fail "$name: rank $r's error does not contain '$needle'"
    done
  done
  grep -q "Epoch 1/1" <<<"$out" && fail "$name: training started despite the mismatch"
  pass
}

mismatch "layer width" \
  "rank 1 has 235146 parameters, rank 0 has 59850|layer.1.units is '256' on rank 1 but '64' on rank 0" \
  -- --set layer.1.units=64
mismatch "learning rate" \
  "the 2 ranks do not agree|train.lr is '0.05' on rank 1 but '0.1' on rank 0" \
  -- --set train.lr=0.1
mismatch "bucket size" \
  "rank 1 has 1 gradient bucket(s), rank 0 has 18|sync.bucket_mb = 0.05 is set on rank 0 only" \
  -- --set sync.bucket_mb=0.05
mismatch "steps per epoch" \
  "rank 1 has 4 steps per epoch, rank 0 has 2|data.train_limit = 300 is set on rank 0 only" \
  -- --set data.train_limit=300
# --resume on one rank only (issue 14, defect 12): caught at start, not a watchdog
# message 300 s later.
mismatch "resume on one rank" "rank 1 was started without --resume, rank 0 with it" \
  -- --resume "$TMP/no-checkpoints"

# Per-rank keys: another path to the same data, another thread count.
out=$("${MPIEXEC[@]}" -n 1 "$WORKER" "${args[@]}" --set data.dir="$TMP/data-elsewhere" \
  --set train.threads=2 : -n 1 "$WORKER" "${args[@]}" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^Test: loss" <<<"$out"; then pass; else
  fail "per-rank data.dir and train.threads: exit $rc: $out"; fi
finish
