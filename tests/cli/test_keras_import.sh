#!/usr/bin/env bash
# Keras import (issue 18): Keras models (Keras 3, JAX CPU backend) with random weights,
# biases and batch norm's moving statistics included, that together hold every Keras
# layer dtrain maps (tests/python/keras_models.py: Dense with and without activations,
# on vectors and on (T, F); Conv1D causal, Conv2D, Conv2DTranspose, MaxPooling2D,
# AveragePooling2D, GlobalAverage/MaxPooling1D/2D, Flatten, Reshape, BatchNormalization,
# Dropout, Embedding, SimpleRNN, LSTM, GRU, Bidirectional concat and sum, Activation,
# ReLU, LeakyReLU, Softmax; a Functional chain; a Functional graph with a residual block,
# branches and Add, Subtract, Multiply, Average, Maximum, Concatenate, UpSampling2D,
# ZeroPadding2D), imported with `dtrain-worker import
# --keras`: dtrain's forward pass on the imported config and weights gives Keras'
# outputs (max abs difference <= 1e-5). The JSON of model.to_json() gives the same
# config and no weights. Training starts from the imported weights: a run with
# [model] init_weights and lr = 0 evaluates to the same test loss as Keras.
source "$(dirname "$0")/lib.sh" "$1" "$2"
export KERAS_BACKEND=jax # before keras is imported (its default would be TensorFlow)
require_python "numpy, keras, jax, safetensors"
TOOL="$BUILD/tests/keras_tool"
CHECK="$SRC/tests/python/keras_check.py"
TOL=1e-5
cd "$TMP" || exit 1

"$PY" "$SRC/tests/python/keras_make.py" "$TMP" || { fail "keras_make.py"; finish; }

for name in dense_conv seq embed functional graph; do
  if ! out=$("$WORKER" import --keras "$name.keras" -o "$name" 2>&1); then
    fail "$name: import: $out"
  elif ! out=$("$TOOL" forward "$name/model.ini" "$name/init_weights.safetensors" \
                 "${name}_x.npy" "${name}_d.npy" 2>&1); then
    fail "$name: forward: $out"
  elif out=$("$PY" "$CHECK" compare "$TOL" "${name}_d.npy" "${name}_y.npy" 2>&1); then
    echo "$out"
    pass
  else
    fail "$name: $out"
  fi
  # The architecture alone: the same config, no weights file.
  if out=$("$WORKER" import --keras "$name.json" -o "$name-json" 2>&1) &&
     [ ! -e "$name-json/init_weights.safetensors" ] &&
     diff <(grep -v "^# A Keras model" "$name/model.ini") \
          <(grep -v "^# A Keras model" "$name-json/model.ini") >/dev/null; then
    pass
  else
    fail "$name: the JSON import differs from the .keras one: $out"
  fi
done

# The comparison can fail: with one weight changed, the outputs differ.
"$PY" - <<'PY'
from safetensors.numpy import load_file, save_file
t = load_file("seq/init_weights.safetensors")
t["lstm_1.kernel"][0, 0] += 0.5
save_file(t, "seq_bad.safetensors")
PY
"$TOOL" forward seq/model.ini seq_bad.safetensors seq_x.npy seq_bad.npy >/dev/null 2>&1
if "$PY" "$CHECK" compare "$TOL" seq_bad.npy seq_y.npy >/dev/null 2>&1; then
  fail "a changed weight passed the comparison"
else
  pass
fi

# Training starts from the imported weights: with lr = 0 the test loss is Keras' own.
"$PY" - <<'PY'
import os, numpy as np, keras
m = keras.models.load_model("dense_conv.keras")
r = np.random.RandomState(5)
x = r.randn(64, 8, 8, 2).astype("f4"); y = r.randint(0, 3, 64).astype("int64")
np.save("tx.npy", x); np.save("ty.npy", y)
p = np.asarray(m.predict(x, verbose=0))
loss = float(np.mean(-np.log(p[np.arange(64), y])))
open("keras_loss.txt", "w").write(f"{loss:.6f}\n")
PY
cat dense_conv/model.ini - >train.ini <<'INI'
init_weights = dense_conv/init_weights.safetensors
[data]
format = numpy
train_x = tx.npy
train_y = ty.npy
test_x = tx.npy
test_y = ty.npy
validation_split = 0
[train]
save_model = false
epochs = 1
batch_size = 16
lr = 0
[optimizer]
type = sgd
[tensorboard]
enabled = false
INI
# init_weights goes into [model]: put it right after that section's header.
sed -i '/^init_weights = /d' train.ini
sed -i 's|^\[model\]$|[model]\ninit_weights = dense_conv/init_weights.safetensors|' train.ini
out=$("$WORKER" --config train.ini --no-progress 2>&1)
dt=$(grep -oE "Test: loss: [0-9.]+" <<<"$out" | grep -oE "[0-9.]+$")
kl=$(cat keras_loss.txt)
if [ -n "$dt" ] && awk -v a="$dt" -v b="$kl" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }'; then
  echo "test loss from the imported weights: dtrain $dt, Keras $kl"
  pass
else
  fail "training from imported weights: dtrain test loss '$dt', Keras $kl; $out"
fi

finish
