# Several model inputs and outputs (issue 17), on small NumPy data the example's script
# makes (examples/make-multi-io-data.py):
#  - examples/multi-io.ini (image + vector inputs concatenated in a trunk, a class head
#    and a value head) trains: class accuracy on the test split > 0.9 and the value
#    head's test loss below 0.05 (the first epoch's is ~0.3);
#  - the total loss of every epoch line and of the test line equals the weighted sum of
#    the reported per-output losses (weights 1 and 0.5), within print rounding;
#  - a softmax on the class head (folded into the loss) gives the same epoch line with
#    the output's own name;
#  - loss_weights change the total as they should (weights 2, 0: total = 2 * cls_loss);
#  - config errors name the file, line and [model] key: an unknown output, counts of
#    losses, loss_weights or target arrays that do not fit the outputs, several inputs
#    with CSV data; predict and evaluate refuse such a model.
source "$(dirname "$0")/lib.sh"
require_python numpy
"$PY" "$SRC/examples/make-multi-io-data.py" "$TMP" 600 || fail "making the data"
cfg="$SRC/examples/multi-io.ini"
common=(--no-progress --set train.threads=1 --set tensorboard.enabled=false
  --set data.dir="$TMP" --set tensorboard.logdir="$TMP/runs")

"$WORKER" --config "$cfg" "${common[@]}" >"$TMP/run.log" 2>&1 || fail "run: exit $?: $(cat "$TMP/run.log")"
# total = cls_loss + 0.5 * value_loss on every line with per-output losses.
check_sum() { # LOG W1 W2
  awk -v w1="$2" -v w2="$3" '
    /cls_loss/ {
      total = ""; c = ""; v = "";
      for (i = 1; i <= NF; i++) {
        if ($i == "loss:" && total == "") total = $(i + 1);
        if ($i == "cls_loss:" && c == "") c = $(i + 1);
        if ($i == "value_loss:" && v == "") v = $(i + 1);
      }
      n++;
      d = total - (w1 * c + w2 * v); if (d < 0) d = -d;
      if (d > 0.00021) { print "line " NR ": total " total " vs " w1 "*" c " + " w2 "*" v; bad = 1 }
    }
    END { if (n < 2) { print "only " n " lines with per-output losses"; bad = 1 } exit bad }' "$1"
}
if out=$(check_sum "$TMP/run.log" 1 0.5); then pass; else fail "weighted sum: $out"; fi
grep -q 'val_cls_accuracy' "$TMP/run.log" && pass || fail "no validation metrics per output"
test_line=$(grep '^Test:' "$TMP/run.log")
acc=$(sed -n 's/.*cls_accuracy: \([0-9.]*\).*/\1/p' <<<"$test_line")
vloss=$(sed -n 's/.*value_loss: \([0-9.]*\).*/\1/p' <<<"$test_line")
awk -v a="$acc" -v v="$vloss" 'BEGIN { exit !(a > 0.9 && v < 0.05) }' && pass ||
  fail "test: accuracy $acc (want > 0.9), value loss $vloss (want < 0.05): $test_line"

"$WORKER" --config "$cfg" "${common[@]}" --set train.epochs=1 --set model.loss_weights="2, 0" \
  >"$TMP/w.log" 2>&1 || fail "weights: exit $?: $(cat "$TMP/w.log")"
if out=$(check_sum "$TMP/w.log" 2 0); then pass; else fail "weights 2, 0: $out"; fi

# A softmax on the class head is folded into its loss and moved after the layers run:
# the metrics keep their outputs' names, and the losses are those of the logits.
"$WORKER" --config "$cfg" "${common[@]}" --set train.epochs=1 --set layer.4.activation=softmax \
  --set model.outputs="softmax_1, value" >"$TMP/f.log" 2>&1 || fail "fused: exit $?: $(cat "$TMP/f.log")"
"$WORKER" --config "$cfg" "${common[@]}" --set train.epochs=1 >"$TMP/u.log" 2>&1 ||
  fail "unfused: exit $?"
fused=$(grep '^Epoch 1' "$TMP/f.log" | sed 's/ - [0-9]* samples.s//; s/softmax_1_/cls_/g; s/ - [0-9.]*s - / - /')
plain=$(grep '^Epoch 1' "$TMP/u.log" | sed 's/ - [0-9]* samples.s//; s/ - [0-9.]*s - / - /')
[ -n "$fused" ] && [ "$fused" = "$plain" ] && pass || fail "fused softmax: '$fused' vs '$plain'"

# predict and evaluate refuse a model with several inputs and outputs, naming them.
model=$(sed -n 's/^Model saved to \([^ ]*\) .*/\1/p' "$TMP/run.log")
[ -n "$model" ] || fail "no 'Model saved to' line"
expect_exit 2 "the model has several inputs ([model] inputs = img, meta)" "predict refuses" -- \
  "$WORKER" predict --model "$model" --input "$TMP/x.npz:img" --output "$TMP/p.npy" -q
expect_exit 2 "predict, evaluate and export take models with one input and one output" \
  "evaluate refuses" -- "$WORKER" evaluate --model "$model" -q

# Config errors.
expect_exit 2 "--set model.outputs: [model] outputs: unknown layer 'nope'" "unknown output" -- \
  "$WORKER" --config "$cfg" "${common[@]}" --set model.outputs="cls, nope"
expect_exit 2 "--set model.losses: [model] losses = 'mse': expected one loss per output (2" \
  "losses count" -- "$WORKER" --config "$cfg" "${common[@]}" --set model.losses=mse 2>&1
expect_exit 2 "--set model.loss_weights: [model] loss_weights = '1, 2, 3': expected one weight per output (2" \
  "weights count" -- "$WORKER" --config "$cfg" "${common[@]}" --set model.loss_weights="1, 2, 3"
expect_exit 2 "multi-io.ini:16: the model has 2 outputs but data.train_y names 3 target arrays" \
  "targets count" -- "$WORKER" --config "$cfg" "${common[@]}" \
  --set data.train_y="y.npz:cls, y.npz:value, y.npz:value" \
  --set data.test_y="y_test.npz:cls, y_test.npz:value, y_test.npz:value"
expect_exit 2 "multi-io.ini:15: the model has 2 inputs but the data gives 1" "inputs count" -- \
  "$WORKER" --config "$cfg" "${common[@]}" --set data.train_x=x.npz:img --set data.test_x=x_test.npz:img
expect_exit 2 "--set model.inputs: no layer takes the model's input more" "inputs unknown" -- \
  "$WORKER" --config "$cfg" "${common[@]}" --set model.inputs="img, meta, more"
printf 'a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n' >"$TMP/d.csv"
expect_exit 2 "multi-io.ini:15: the model has 2 inputs but the data gives 1: several inputs take NumPy" \
  "csv inputs" -- "$WORKER" --config "$cfg" "${common[@]}" --set data.format=csv \
  --set data.train="$TMP/d.csv" --set data.targets=y --set data.train_x= --set data.train_y= \
  --set data.test_x= --set data.test_y=
finish
