# ONNX export (issue 18), checked with the real clients: onnx.checker (full check) and
# ONNX Runtime, whose outputs must equal dtrain's on the same inputs (max abs difference
# <= 1e-5), printed per model (docs/onnx.md lists them):
#  - small models that together cover every layer type, with random weights (biases
#    too) and random inputs, batch norm with random moving statistics (tests/tools/
#    onnx_parity builds, runs and exports them);
#  - every example config in examples/, randomly initialized;
#  - `dtrain-worker export` of a checkpoint of a short real run (Fashion-MNIST MLP),
#    against a forward pass that numpy computes from the checkpoint's safetensors;
#  - that the comparison can fail: one output changed by 1e-4 is caught;
#  - bad input: a folder that is not a model, an unwritable output path, an unknown
#    output format, a missing argument: exit status and a message naming the path.
source "$(dirname "$0")/lib.sh"
require_python "numpy, onnx, onnxruntime, safetensors"
TOOL="$BUILD/tests/onnx_parity"
CHECK="$SRC/tests/python/check_onnx.py"
TOL=1e-5

# parity NAME CONFIG [onnx_parity options...]: build, run and export the model into
# $TMP/NAME; check_all then compares every such model in one Python process.
CHECKS=()
parity() {
  local name=$1 cfg=$2 out
  shift 2
  mkdir -p "$TMP/$name"
  if out=$("$TOOL" "$cfg" "$TMP/$name" "$@" 2>&1); then
    CHECKS+=("$name" "$TMP/$name")
  else
    fail "$name: onnx_parity: $out"
  fi
}

# check_all: onnx.checker and ONNX Runtime against dtrain for every model of parity,
# one pass or fail each (a model with no line, if Python dies, fails too).
check_all() {
  local out line name seen=0
  out=$("$PY" "$CHECK" "$TOL" "${CHECKS[@]}" 2>&1)
  while IFS= read -r line; do
    case $line in
    "ok "*) echo "${line#ok }" && pass && seen=$((seen + 1)) ;;
    "FAIL "*) fail "${line#FAIL }" && seen=$((seen + 1)) ;;
    *) echo "$line" ;;
    esac
  done <<<"$out"
  [ "$seen" -eq $((${#CHECKS[@]} / 2)) ] || fail "check_onnx.py checked $seen of $((${#CHECKS[@]} / 2)) models: $out"
}

# model NAME: the config on stdin becomes $TMP/NAME.ini.
model() { cat >"$TMP/$1.ini"; }

model dense <<'INI'
[model]
loss = binary_crossentropy
input = 12
[layer.1]
type = dense
units = 16
activation = relu
[layer.2]
type = dropout
rate = 0.5
[layer.3]
type = dense
units = 8
[layer.4]
type = leaky_relu
alpha = 0.2
[layer.5]
type = batch_norm
epsilon = 0.01
[layer.6]
type = dense
units = 6
activation = tanh
[layer.7]
type = dense
units = 3
activation = sigmoid
INI
parity dense "$TMP/dense.ini" -s -b 5

model cnn <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 11,10,3
[layer.1]
type = conv2d
filters = 6
kernel_size = 3
padding = same
use_bias = false
[layer.2]
type = batch_norm
[layer.3]
type = relu
[layer.4]
type = max_pool2d
pool_size = 2
padding = same
[layer.5]
type = conv2d
filters = 5
kernel_size = 3,2
strides = 2,1
[layer.6]
type = avg_pool2d
pool_size = 2
strides = 1
[layer.7]
type = flatten
[layer.8]
type = dense
units = 4
activation = softmax
INI
parity cnn "$TMP/cnn.ini" -s

model cnn_misc <<'INI'
[model]
loss = mse
input = 12,12,2
[layer.1]
type = conv2d
filters = 4
kernel_size = 3
dilation_rate = 2
padding = same
activation = sigmoid
[layer.2]
type = avg_pool2d
pool_size = 3
strides = 2
padding = same
[layer.3]
type = max_pool2d
pool_size = 2
[layer.4]
type = conv2d
filters = 3
kernel_size = 2
[layer.5]
type = global_avg_pool
INI
parity cnn_misc "$TMP/cnn_misc.ini"

model cnn_global_max <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 6,7,3
[layer.1]
type = conv2d
filters = 5
kernel_size = 3
strides = 2
padding = same
[layer.2]
type = global_max_pool
[layer.3]
type = dense
units = 3
INI
parity cnn_global_max "$TMP/cnn_global_max.ini"

model conv1d <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 20,6
[layer.1]
type = conv1d
filters = 5
kernel_size = 3
padding = causal
dilation_rate = 2
activation = relu
[layer.2]
type = conv1d
filters = 4
kernel_size = 4
strides = 2
padding = same
[layer.3]
type = batch_norm
[layer.4]
type = global_avg_pool
[layer.5]
type = dense
units = 3
INI
parity conv1d "$TMP/conv1d.ini" -s

model deconv <<'INI'
[model]
loss = mse
input = 60
[layer.1]
type = reshape
target_shape = 4,5,3
[layer.2]
type = conv2d_transpose
filters = 4
kernel_size = 3
strides = 2
padding = same
activation = relu
[layer.3]
type = conv2d_transpose
filters = 2
kernel_size = 3
strides = 2
[layer.4]
type = conv2d_transpose
filters = 1
kernel_size = 2,3
use_bias = false
[layer.5]
type = flatten
INI
parity deconv "$TMP/deconv.ini"

model rnn <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 9
[layer.1]
type = embedding
input_dim = 30
output_dim = 6
[layer.2]
type = simple_rnn
units = 5
return_sequences = true
[layer.3]
type = lstm
units = 7
return_sequences = true
[layer.4]
type = dense
units = 4
time_distributed = true
[layer.5]
type = softmax
[layer.6]
type = gru
units = 6
[layer.7]
type = dense
units = 3
activation = softmax
INI
parity rnn "$TMP/rnn.ini" -d 30

model rnn_last <<'INI'
[model]
loss = mse
input = 7,4
[layer.1]
type = gru
units = 5
return_sequences = true
[layer.2]
type = simple_rnn
units = 4
[layer.3]
type = reshape
target_shape = 2,2
[layer.4]
type = lstm
units = 3
INI
parity rnn_last "$TMP/rnn_last.ini"

model bidirectional <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 8,5
[layer.1]
type = bidirectional
layer = lstm
units = 4
return_sequences = true
[layer.2]
type = bidirectional
layer = gru
units = 3
merge_mode = sum
return_sequences = true
[layer.3]
type = bidirectional
layer = simple_rnn
units = 3
return_sequences = true
[layer.4]
type = bidirectional
layer = gru
units = 4
[layer.5]
type = dense
units = 3
INI
parity bidirectional "$TMP/bidirectional.ini"

model bidirectional_last <<'INI'
[model]
loss = mse
input = 6,3
[layer.1]
type = bidirectional
layer = lstm
units = 4
merge_mode = sum
INI
parity bidirectional_last "$TMP/bidirectional_last.ini"

# Graph models: every merge and resizing layer, skip connections, fan-out.
# A residual block: conv, bn, relu, conv, add to the block's input, relu.
model residual <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 8,8,3
[layer.1]
type = conv2d
filters = 4
kernel_size = 3
padding = same
activation = relu
name = stem
[layer.2]
type = conv2d
filters = 4
kernel_size = 3
padding = same
use_bias = false
[layer.3]
type = batch_norm
[layer.4]
type = relu
[layer.5]
type = conv2d
filters = 4
kernel_size = 3
padding = same
name = branch
[layer.6]
type = add
inputs = stem, branch
activation = relu
[layer.7]
type = global_avg_pool
[layer.8]
type = dense
units = 3
INI
parity residual "$TMP/residual.ini" -s

# Concatenation of images along the channels (after convolutions, and of the model's
# input itself), along the columns, and of flat vectors; the model's input feeds 3
# layers, `channels` 3.
model concat <<'INI'
[model]
loss = mse
input = 6,5,2
[layer.1]
type = conv2d
filters = 3
kernel_size = 3
padding = same
inputs = input
name = a
[layer.2]
type = conv2d
filters = 2
kernel_size = 1
inputs = input
name = b
[layer.3]
type = concatenate
inputs = a, input, b
name = channels
[layer.4]
type = conv2d
filters = 7
kernel_size = 1,2
inputs = channels
name = e
[layer.5]
type = concatenate
axis = 2
inputs = channels, e
[layer.6]
type = max_pool2d
pool_size = 2
[layer.7]
type = flatten
name = flat
[layer.8]
type = dense
units = 5
inputs = channels
name = d
[layer.9]
type = concatenate
inputs = flat, d
[layer.10]
type = dense
units = 4
INI
parity concat "$TMP/concat.ini"

# The element-wise merges of dense branches: subtract, multiply (3 inputs), average,
# maximum (3 inputs), add (4 inputs).
model merges <<'INI'
[model]
loss = binary_crossentropy
input = 7
[layer.1]
type = dense
units = 6
name = p
[layer.2]
type = dense
units = 6
activation = tanh
inputs = input
name = q
[layer.3]
type = dense
units = 6
inputs = input
name = r
[layer.4]
type = subtract
inputs = p, q
name = sub
[layer.5]
type = multiply
inputs = p, q, r
name = mul
[layer.6]
type = average
inputs = sub, r
name = avg
[layer.7]
type = maximum
inputs = mul, avg, q
name = max
[layer.8]
type = add
inputs = max, sub, mul, p
[layer.9]
type = dense
units = 2
INI
parity merges "$TMP/merges.ini" -b 5

# upsampling2d and zero_padding2d in a conv model (a small U-Net-like skip).
model resize <<'INI'
[model]
loss = mse
input = 8,6,2
[layer.1]
type = conv2d
filters = 3
kernel_size = 3
padding = same
[layer.2]
type = max_pool2d
pool_size = 2
[layer.3]
type = upsampling2d
size = 1,2
[layer.4]
type = zero_padding2d
padding = 3,1,0,0
name = up
[layer.5]
type = conv2d
filters = 3
kernel_size = 1
inputs = input
name = side
[layer.6]
type = concatenate
inputs = up, side
[layer.7]
type = upsampling2d
[layer.8]
type = zero_padding2d
padding = 1
[layer.9]
type = conv2d
filters = 2
kernel_size = 3
strides = 2
[layer.10]
type = zero_padding2d
padding = 2,1
INI
parity resize "$TMP/resize.ini"

# Every example, randomly initialized, on a few random samples of its input shape
# (pixels scaled to [0, 1) as the examples' data are).
for cfg in "$SRC"/examples/*.ini; do
  name=example-$(basename "$cfg" .ini)
  case $name in
  example-diabetes-regression) parity "$name" "$cfg" -i 10 ;;
  example-digits-csv) parity "$name" "$cfg" -i 64 -u ;;
  example-fmnist-mlp | example-fmnist-autoencoder) parity "$name" "$cfg" -i 28,28,1 -u ;;
  example-fortunes-language) parity "$name" "$cfg" -i 200 -d 100 ;;
  example-fmnist-cnn-bn) parity "$name" "$cfg" -s -u ;;
  example-binary-addition) parity "$name" "$cfg" ;;
  example-fmnist-resnet) parity "$name" "$cfg" -s -u ;;
  example-fmnist-dcgan)
    # A GAN's two models, each as a run builds it: G from latent_dim noise, D on images.
    parity "$name-generator" "$cfg" -m generator -i 64 -s -S model.loss=mse
    parity "$name-discriminator" "$cfg" -m discriminator -i 28,28,1 -u \
      -S model.loss=binary_crossentropy
    ;;
  # The VAE: its sampling layer exports as z = z_mean, as predict runs it.
  example-fmnist-vae) parity "$name" "$cfg" -i 28,28,1 -u ;;
  example-multi-io) ;; # two inputs and outputs: the exporter refuses them (test_multi_io)
  *)
    if grep -qE '^input *=' "$cfg"; then
      parity "$name" "$cfg" -u
    else
      fail "$cfg: no input shape known to this test: add it to the list"
    fi
    ;;
  esac
done

check_all

# The comparison catches a difference of 1e-4 in one output.
"$PY" -c "import numpy as np, sys; y = np.load(sys.argv[1]); y.flat[3] += 1e-4; np.save(sys.argv[1], y)" \
  "$TMP/cnn/y.npy"
out=$("$PY" "$CHECK" "$TOL" cnn-changed "$TMP/cnn" 2>&1)
[ $? -eq 1 ] && grep -q "^FAIL cnn-changed: .*above 1e-05" <<<"$out" && pass ||
  fail "a changed output was not caught: $out"

# dtrain-worker export of a checkpoint of a real (short) run; numpy computes the MLP
# from the checkpoint's safetensors and ONNX Runtime must agree with it.
D="$TMP/data"
make_subset "$D" 200
# shellcheck disable=SC2046
out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress -q \
  --set train.epochs=1 --set data.validation_split=0 --set checkpoint.dir="$TMP/ckpt" 2>&1) ||
  fail "training the MLP: $out"
out=$("$WORKER" export --model "$TMP/ckpt" -o "$TMP/mlp.onnx" 2>&1)
[ $? -eq 0 ] && grep -q "wrote $TMP/mlp.onnx" <<<"$out" && pass || fail "export: $out"
out=$("$PY" - "$TMP/mlp.onnx" "$TMP/ckpt" <<'PY' 2>&1
import glob, sys
import numpy as np, onnx, onnxruntime as ort
from safetensors.numpy import load_file
path, root = sys.argv[1], sys.argv[2]
onnx.checker.check_model(onnx.load(path), full_check=True)
ckpt = sorted(glob.glob(f"{root}/ckpt-*"))[-1]
w = load_file(f"{ckpt}/model.safetensors")
k = lambda n: w[next(key for key in w if key.endswith(n))]
x = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
h = x.reshape(5, -1)
h = np.maximum(h @ k("dense_1.kernel") + k("dense_1.bias"), 0)
h = np.maximum(h @ k("dense_2.kernel") + k("dense_2.bias"), 0)
z = h @ k("dense_3.kernel") + k("dense_3.bias")
p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
(got,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})
d = float(np.abs(got - p).max())
print(f"example-fmnist-mlp (trained, dtrain-worker export): max abs diff {d:.3g}")
sys.exit(0 if d <= 1e-5 else 1)
PY
)
[ $? -eq 0 ] && echo "$out" && pass || fail "the exported checkpoint: $out"

# A graph model trained for one short epoch: ONNX Runtime on the exported file gives
# what `dtrain-worker predict` gives for the same (test) images, pixels scaled to [0, 1]
# as the model's preprocessing does.
model trained_graph <<'INI'
[model]
loss = sparse_categorical_crossentropy
input = 28,28,1
[layer.1]
type = conv2d
filters = 4
kernel_size = 3
strides = 2
padding = same
activation = relu
name = stem
[layer.2]
type = batch_norm
[layer.3]
type = conv2d
filters = 4
kernel_size = 3
padding = same
name = branch
[layer.4]
type = add
inputs = stem, branch
[layer.5]
type = max_pool2d
name = pooled
[layer.6]
type = upsampling2d
[layer.7]
type = zero_padding2d
padding = 1
[layer.8]
type = conv2d
filters = 4
kernel_size = 4
strides = 2
name = down
[layer.9]
type = concatenate
inputs = pooled, down
[layer.10]
type = dense
units = 10
[train]
epochs = 1
batch_size = 32
threads = 1
INI
# shellcheck disable=SC2046
out=$("$WORKER" --config "$TMP/trained_graph.ini" $(data_args "$D") --no-progress -q \
  --set data.validation_split=0 --set tensorboard.enabled=false \
  --set tensorboard.logdir="$TMP/runs" --set tensorboard.run=g 2>&1) ||
  fail "training the graph model: $out"
out=$("$WORKER" export --model "$TMP/runs/g/model" -o "$TMP/g.onnx" 2>&1) || fail "export: $out"
out=$("$WORKER" predict --model "$TMP/runs/g/model" --input "$D/test-images" \
  --output "$TMP/g-predict.npy" --kind probabilities -q 2>&1) || fail "predict: $out"
out=$("$PY" - "$TMP/g.onnx" "$D/test-images" "$TMP/g-predict.npy" <<'PY' 2>&1
import sys
import numpy as np, onnx, onnxruntime as ort
path, images, predicted = sys.argv[1:]
onnx.checker.check_model(onnx.load(path), full_check=True)
raw = open(images, "rb").read()
n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
x = (np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w, 1) / np.float32(255)).astype(np.float32)
want = np.load(predicted)
(got,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})
d = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
print(f"trained graph model, predict vs ONNX Runtime on {n} test images: max abs diff {d:.3g}")
sys.exit(0 if d <= 1e-5 else 1)
PY
)
[ $? -eq 0 ] && echo "$out" && pass || fail "predict and ONNX Runtime disagree: $out"

# Bad input.
mkdir -p "$TMP/not-a-model"
echo hello >"$TMP/not-a-model/notes.txt"
expect_exit 2 "$TMP/not-a-model" "not a model" -- "$WORKER" export --model "$TMP/not-a-model" -o "$TMP/x.onnx"
expect_exit 2 "$TMP/missing" "missing model" -- "$WORKER" export --model "$TMP/missing" -o "$TMP/x.onnx"
expect_exit 1 "$TMP/no-such-dir/m.onnx" "unwritable output" -- \
  "$WORKER" export --model "$TMP/ckpt" -o "$TMP/no-such-dir/m.onnx"
[ ! -e "$TMP/x.onnx" ] && pass || fail "a failed export left $TMP/x.onnx"
expect_exit 2 "$TMP/m.pt': unknown output format" "unknown format" -- \
  "$WORKER" export --model "$TMP/ckpt" -o "$TMP/m.pt"
expect_exit 2 "needs --model DIR and -o FILE" "missing -o" -- "$WORKER" export --model "$TMP/ckpt"
finish
