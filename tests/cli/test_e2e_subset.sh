# End to end: 1 epoch of the MLP example on the first 6,000 Fashion-MNIST training
# images reaches more than 0.70 test accuracy on the full test set.
source "$(dirname "$0")/lib.sh"

out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --no-progress \
  --set data.train_limit=6000 --set train.epochs=1 2>&1)
echo "$out"
expect_test_accuracy "$out" 10000 0.70
finish
