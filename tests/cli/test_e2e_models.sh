# End to end, short runs of the seed workloads (issue 8), each above a stated bar:
#  - CNN (examples/fmnist-cnn.ini): 1 epoch on 3,000 training images, 2,000 test
#    images: > 0.70 (the full example reaches about 0.91);
#  - LSTM (examples/fmnist-lstm.ini): 1 epoch on 3,000 images: > 0.60;
#  - binary addition (examples/binary-addition.ini, unchanged: it takes under a
#    second): every held-out sum entirely right;
#  - autoencoder (examples/fmnist-autoencoder.ini): 1 epoch on 3,000 images, the
#    reconstruction loss (BCE) on 2,000 test images < 0.45 (an untrained model's is
#    about 0.69), and the reconstructions reach TensorBoard as images.
# The bars are far below what the runs reach and far above chance (0.10 for classes).
source "$(dirname "$0")/lib.sh"
common=(--no-progress --set data.train_limit=3000 --set data.test_limit=2000 --set train.epochs=1
  --set train.threads=1)

out=$("$WORKER" --config "$SRC/examples/fmnist-cnn.ini" "${common[@]}" 2>&1) ||
  fail "CNN: exit status $?: $out"
grep '^Test:' <<<"$out"
expect_test_accuracy "$out" 2000 0.70

out=$("$WORKER" --config "$SRC/examples/fmnist-lstm.ini" "${common[@]}" 2>&1) ||
  fail "LSTM: exit status $?: $out"
grep '^Test:' <<<"$out"
expect_test_accuracy "$out" 2000 0.60

out=$("$WORKER" --config "$SRC/examples/binary-addition.ini" --no-progress 2>&1) ||
  fail "binary addition: exit status $?: $out"
grep '^Test:' <<<"$out"
grep -qE '^Test: .* - all bits right: 1\.0000 \(1000 samples\)$' <<<"$out" && pass ||
  fail "binary addition: not every held-out sum right: $(grep '^Test:' <<<"$out")"

out=$("$WORKER" --config "$SRC/examples/fmnist-autoencoder.ini" "${common[@]}" \
  --set tensorboard.logdir="$TMP/runs" --set tensorboard.run=ae 2>&1) ||
  fail "autoencoder: exit status $?: $out"
grep '^Test:' <<<"$out"
loss=$(sed -nE 's/^Test: loss: ([0-9.]+) - .*\(2000 samples\)$/\1/p' <<<"$out")
awk -v l="${loss:-9}" 'BEGIN { exit !(l < 0.45) }' && pass ||
  fail "autoencoder: test reconstruction loss '${loss}', expected < 0.45"
"$WORKER" --events "$TMP"/runs/ae/validation/events.out.tfevents.* 2>&1 |
  grep -qE 'step=1 \| reconstructions image=233x59x1' && pass ||
  fail "autoencoder: no reconstructions image in the validation events"
finish
