# End to end: 1 epoch of the MLP example on the first 6,000 Fashion-MNIST training
# images reaches more than 0.70 test accuracy on the full test set.
source "$(dirname "$0")/lib.sh"

out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --no-progress \
  --set data.train_limit=6000 --set train.epochs=1 2>&1)
echo "$out"
acc=$(sed -nE 's/^Test: loss: [0-9.]+ - accuracy: ([0-9.]+) \(10000 samples\)$/\1/p' <<<"$out")
if [ -z "$acc" ]; then
  fail "no test accuracy in the output"
elif awk -v a="$acc" 'BEGIN { exit !(a > 0.70) }'; then
  pass
else
  fail "test accuracy $acc, expected > 0.70"
fi
finish
