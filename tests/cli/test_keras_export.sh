#!/usr/bin/env bash
# .keras export (issue 18), checked with the real reader: keras.models.load_model (Keras
# 3 on its JAX CPU backend) opens each file dtrain wrote and its predictions equal
# dtrain's forward pass on the same inputs (max abs difference <= 1e-5). The models
# together hold every layer type dtrain exports: dense (flat, time-distributed, and on
# a (T, F) or image input, where a Flatten is put before it), conv1d (causal),
# conv2d (same, strides, dilation, no bias), conv2d_transpose, max/avg pooling,
# global avg/max pooling over (T, F) and (H, W, C), flatten, reshape, batch_norm
# (inference mode, random moving statistics, center = false), dropout, embedding,
# simple_rnn, lstm, gru, bidirectional (concat and sum) and the activations relu,
# sigmoid, tanh, softmax, leaky_relu; and a graph model (written as a Functional
# model): a residual block, branches of different lengths with layers of one type, add,
# subtract, multiply, average, maximum, concatenate, upsampling2d, zero_padding2d. Weights are random, biases included
# (tests/tools/keras_tool export). The comparison is shown able to fail.
source "$(dirname "$0")/lib.sh" "$1" "$2"
export KERAS_BACKEND=jax # before keras is imported (its default would be TensorFlow)
require_python "numpy, keras, jax"
TOOL="$BUILD/tests/keras_tool"
CHECK="$SRC/tests/python/keras_check.py"
TOL=1e-5
cd "$TMP" || exit 1

cat >seq.ini <<'INI'
[model]
input = 6,5
loss = mse
[layer.1]
type = conv1d
filters = 3
kernel_size = 2
padding = causal
activation = relu
[layer.2]
type = lstm
units = 4
return_sequences = true
[layer.3]
type = bidirectional
layer = gru
units = 2
return_sequences = true
[layer.4]
type = dense
units = 3
time_distributed = true
[layer.5]
type = simple_rnn
units = 3
[layer.6]
type = batch_norm
[layer.7]
type = dense
units = 3
activation = tanh
[layer.8]
type = dropout
rate = 0.3
[layer.9]
type = leaky_relu
alpha = 0.1
INI
cat >conv.ini <<'INI'
[model]
input = 8,8,2
loss = sparse_categorical_crossentropy
[layer.1]
type = conv2d
filters = 3
kernel_size = 3
padding = same
activation = sigmoid
[layer.2]
type = max_pool2d
[layer.3]
type = conv2d_transpose
filters = 2
kernel_size = 3
strides = 2
[layer.4]
type = avg_pool2d
pool_size = 3
strides = 2
padding = same
[layer.5]
type = conv2d
filters = 4
kernel_size = 2
dilation_rate = 2
use_bias = false
[layer.6]
type = reshape
target_shape = 9,4
[layer.7]
type = simple_rnn
units = 3
return_sequences = true
[layer.8]
type = dense
units = 5
[layer.9]
type = relu
[layer.10]
type = softmax
INI
cat >embed.ini <<'INI'
[model]
input = 7
loss = mse
[layer.1]
type = embedding
input_dim = 10
output_dim = 4
[layer.2]
type = bidirectional
layer = lstm
units = 3
merge_mode = sum
return_sequences = true
[layer.3]
type = global_max_pool
[layer.4]
type = dense
units = 2
INI
cat >pool.ini <<'INI'
[model]
input = 6,6,2
loss = mse
[layer.1]
type = global_avg_pool
[layer.2]
type = batch_norm
center = false
epsilon = 0.01
[layer.3]
type = dense
units = 3
INI
cat >flat.ini <<'INI'
[model]
input = 3,4,2
loss = mse
[layer.1]
type = flatten
[layer.2]
type = dense
units = 6
[layer.3]
type = reshape
target_shape = 3,2
[layer.4]
type = gru
units = 2
return_sequences = true
[layer.5]
type = global_avg_pool
[layer.6]
type = dense
units = 2
INI
cat >img.ini <<'INI'
[model]
input = 5,5,3
loss = mse
[layer.1]
type = global_max_pool
[layer.2]
type = dense
units = 2
INI
cat >graph.ini <<'INI'
[model]
input = 6,6,2
loss = mse
[layer.1]
type = conv2d
filters = 3
kernel_size = 3
padding = same
activation = relu
name = stem
[layer.2]
type = conv2d
filters = 3
kernel_size = 3
padding = same
[layer.3]
type = batch_norm
[layer.4]
type = conv2d
filters = 3
kernel_size = 1
name = branch
[layer.5]
type = conv2d
filters = 3
kernel_size = 1
inputs = stem
name = short
[layer.6]
type = add
inputs = short, branch
activation = relu
name = sum
[layer.7]
type = zero_padding2d
padding = 1,0,2,1
[layer.8]
type = upsampling2d
size = 1,2
name = up
[layer.9]
type = concatenate
inputs = up, up
[layer.10]
type = global_avg_pool
[layer.11]
type = dense
units = 4
name = d
[layer.12]
type = dense
units = 4
inputs = d
name = d2
[layer.13]
type = dense
units = 4
inputs = d2
name = d3
[layer.14]
type = subtract
inputs = d3, d
name = s
[layer.15]
type = multiply
inputs = s, d2
name = mu
[layer.16]
type = average
inputs = mu, d
name = av
[layer.17]
type = maximum
inputs = av, s, d3
INI

"$PY" - <<'PY'
import numpy as np
r = np.random.RandomState(0)
for name, shape in [("seq", (6, 5)), ("conv", (8, 8, 2)), ("pool", (6, 6, 2)), ("flat", (3, 4, 2)),
                    ("img", (5, 5, 3)), ("graph", (6, 6, 2))]:
    np.save(f"{name}_x.npy", r.randn(5, *shape).astype("f4"))
np.save("embed_x.npy", r.randint(0, 10, (5, 7)).astype("f4"))
PY

cases=()
for name in seq conv embed pool flat img graph; do
  if out=$("$TOOL" export "$name.ini" 7 "$name.keras" "${name}_x.npy" "${name}_y.npy" 2>&1); then
    cases+=("$name.keras" "${name}_x.npy" "${name}_y.npy")
    pass
  else
    fail "$name: keras_tool export: $out"
  fi
done
if out=$("$PY" "$CHECK" predict "$TOL" "${cases[@]}" 2>&1); then
  echo "$out"
  pass
else
  fail "Keras' outputs differ from dtrain's: $out"
fi

# The file is a zip of the three entries Keras writes, stored.
"$PY" - <<'PY' && pass || fail "seq.keras does not hold Keras' three entries"
import zipfile
z = zipfile.ZipFile("seq.keras")
assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"], z.namelist()
assert z.testzip() is None
PY

# The comparison can fail: one output changed by 1e-4 is caught.
"$PY" -c "
import numpy as np
y = np.load('seq_y.npy'); y[0, 0] += 1e-4; np.save('seq_bad.npy', y)"
if "$PY" "$CHECK" predict "$TOL" seq.keras seq_x.npy seq_bad.npy >/dev/null 2>&1; then
  fail "an output off by 1e-4 passed the comparison"
else
  pass
fi

# A trained model through the command line, against `predict`: the MLP example has no
# softmax layer (its loss works on logits), so the export adds the Activation that gives
# predict's probabilities. (This case once gave Keras the logits.)
"$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --no-progress -q --set train.threads=1 \
  --set train.epochs=1 --set data.train_limit=300 --set data.test_limit=50 \
  --set train.model_dir="$TMP/mlp" >/dev/null 2>&1 || fail "training the MLP example"
"$PY" -c "
import numpy as np
np.save('mlp_x.npy', np.random.RandomState(1).rand(20, 28, 28, 1).astype('f4') * 255)"
"$WORKER" predict --model "$TMP/mlp" --input mlp_x.npy --output mlp_p.npy -q ||
  fail "predict with the MLP"
"$PY" -c "
import numpy as np
np.save('mlp_scaled.npy', np.load('mlp_x.npy') / np.float32(255))" # the model's 1/255
if out=$("$WORKER" export --model "$TMP/mlp" -o mlp.keras 2>&1) &&
  out=$("$PY" "$CHECK" predict "$TOL" mlp.keras mlp_scaled.npy mlp_p.npy 2>&1); then
  echo "$out"
  pass
else
  fail "the exported MLP against predict's probabilities: $out"
fi

# A layer Keras export does not know is named (none today: all are mapped), and an
# unwritable path is an error naming it.
out=$("$TOOL" export seq.ini 7 "$TMP/no/such/dir/m.keras" 2>&1)
[ $? -eq 1 ] && grep -q "no/such/dir/m.keras" <<<"$out" && pass ||
  fail "an unwritable output path: $out"

finish
