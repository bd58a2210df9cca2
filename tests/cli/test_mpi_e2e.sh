# End to end under mpiexec: 2 ranks train the MLP example for 2 epochs on the first
# 6,000 Fashion-MNIST training images (each rank on its half of every global batch
# of 2 x 64) and reach more than 0.75 test accuracy on the first 6,000 test images
# (one process with batch 128 gets the same, up to rounding). Only rank 0 prints
# info lines; --all-ranks lets rank 1 print too. Without mpiexec the same binary
# trains alone (the single-process communicator).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"

D="$TMP/data"
make_subset "$D" 6000
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress
  --set train.epochs=2 --set tensorboard.enabled=false)

out=$("${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] && pass || fail "2-rank run: exit status $rc"
grep -q "2 rank(s), 5400 training / 600 validation / 6000 test samples" <<<"$out" && pass ||
  fail "no 2-rank header line"
[ "$(grep -c '^Epoch [12]/2 - 42 steps - ' <<<"$out")" -eq 2 ] && pass ||
  fail "expected 2 epoch lines of 42 steps (5400 / (2 x 64))"
grep -q "^\[rank 1\]" <<<"$out" && fail "rank 1 printed info lines without --all-ranks" || pass
expect_test_accuracy "$out" 6000 0.75

out=$("${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" --set train.epochs=1 --all-ranks 2>&1)
grep -q "^\[rank 1\] Epoch 1/1 - 42 steps" <<<"$out" && pass ||
  fail "--all-ranks: no epoch line from rank 1: $out"

# train.threads = 0 (automatic, issue 16): under a launcher each rank takes 1 compute
# thread, whatever the cores (a process alone takes them all: test_threads_training).
out=$("${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" --set train.epochs=1 --set train.threads=0 \
  --all-ranks 2>&1)
for r in 0 1; do
  prefix=$([ "$r" -eq 0 ] && echo "" || echo "\[rank 1\] ")
  grep -qE "^${prefix}dtrain-worker .*; 1 compute thread; " <<<"$out" && pass ||
    fail "rank $r under mpiexec with train.threads = 0: not 1 compute thread: $(grep 'dtrain-worker' <<<"$out")"
done

out=$("$WORKER" "${args[@]}" --set train.epochs=1 2>&1)
grep -q "1 rank(s)" <<<"$out" && pass || fail "without mpiexec: not 1 rank: $out"
finish
