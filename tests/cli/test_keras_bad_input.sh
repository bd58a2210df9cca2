#!/usr/bin/env bash
# Keras import of bad input (issue 18): each case exits with status 2 (a model dtrain
# cannot express, a bad option) or 1 (a corrupt or unreadable file) and a message that
# names the file and the place: a Keras layer dtrain lacks (the layer's name and class),
# an option dtrain lacks (a Dense activation, GRU reset_after = false), a shared layer,
# a model with two inputs, weights whose
# shape does not fit the config, a truncated .keras zip, a zip without the weights, a
# corrupt model.weights.h5 (not HDF5 at all, and HDF5's signature followed by garbage),
# a JSON file that is not a model, a file that is not JSON, a missing file, and the
# command line's own mistakes.
export KERAS_BACKEND=jax # before keras is imported (its default would be TensorFlow)
source "$(dirname "$0")/lib.sh" "$1" "$2"
require_python "numpy, keras, jax"
cd "$TMP" || exit 1

"$PY" - <<'PY'
import zipfile
import keras
L = keras.layers
def save(name, layers, shape=(4,)):
    keras.Sequential([keras.Input(shape)] + layers).save(name + ".keras")
save("unknown", [L.Dense(3, name="d1"), L.LayerNormalization(name="norm_a")])
save("gelu", [L.Dense(3, activation="gelu", name="dense_gelu")])
save("gru", [L.GRU(2, reset_after=False, name="old_gru")], (5, 3))
save("good", [L.Dense(3, name="d1"), L.Dense(2, name="d2")])
# A shared layer (called twice) and a model with two inputs.
i = keras.Input((4,)); shared = L.Dense(4, name="twice")
keras.Model(i, shared(shared(i))).save("shared.keras")
i1, i2 = keras.Input((4,)), keras.Input((4,))
keras.Model([i1, i2], L.Add(name="sum")([i1, i2])).save("two_inputs.keras")
# Weights that do not fit: the config says 5 units where the weights hold 3.
src = zipfile.ZipFile("good.keras")
def rewrite(name, replace):
    with zipfile.ZipFile(name, "w") as z:
        for e in src.infolist():
            if e.filename in replace:
                if replace[e.filename] is not None:
                    z.writestr(e.filename, replace[e.filename])
            else:
                z.writestr(e.filename, src.read(e.filename))
cfg = src.read("config.json").decode().replace('"units": 3', '"units": 5')
rewrite("shape.keras", {"config.json": cfg})
rewrite("noweights.keras", {"model.weights.h5": None})
rewrite("nothdf5.keras", {"model.weights.h5": b"this is not an HDF5 file at all" * 10})
h5 = src.read("model.weights.h5")
rewrite("badhdf5.keras", {"model.weights.h5": h5[:8] + bytes(256) + h5[264:600]})
data = open("good.keras", "rb").read()
open("truncated.keras", "wb").write(data[: len(data) // 2])
open("notmodel.json", "w").write('{"layers": [1, 2, 3]}')
open("notjson.keras.json", "w").write("class_name: Sequential\n")
PY

imp() { "$WORKER" import --keras "$@"; }
expect_exit 2 "layer 'norm_a' (LayerNormalization)" "unknown layer" -- imp unknown.keras -o o1
expect_exit 2 "unknown.keras" "unknown layer names the file" -- imp unknown.keras -o o1
expect_exit 2 "layer 'dense_gelu' (Dense): activation 'gelu'" "Dense activation" -- \
  imp gelu.keras -o o2
expect_exit 2 "layer 'old_gru' (GRU): reset_after = false" "GRU reset_after" -- imp gru.keras -o o3
expect_exit 2 "shape.keras: layer 'd1' (Dense): weight layers/dense/vars/0 has shape (4, 3)" \
  "weights that do not fit" -- imp shape.keras -o o4
expect_exit 2 "shared.keras: layer 'twice' (Dense) is not called once" "shared layer" -- \
  imp shared.keras -o o12
expect_exit 2 "two_inputs.keras: the model has several inputs" "two inputs" -- \
  imp two_inputs.keras -o o13
expect_exit 1 "truncated.keras" "truncated zip" -- imp truncated.keras -o o5
expect_exit 1 "noweights.keras: a zip without model.weights.h5" "no weights entry" -- \
  imp noweights.keras -o o6
expect_exit 1 "nothdf5.keras: model.weights.h5: not an HDF5 file" "not HDF5" -- \
  imp nothdf5.keras -o o7
expect_exit 1 "badhdf5.keras: model.weights.h5" "corrupt HDF5" -- imp badhdf5.keras -o o8
expect_exit 1 "notmodel.json: not a Keras model" "JSON that is not a model" -- \
  imp notmodel.json -o o9
expect_exit 1 "notjson.keras.json" "not JSON" -- imp notjson.keras.json -o o10
expect_exit 1 "missing.keras: cannot open" "missing file" -- imp missing.keras -o o11
expect_exit 2 "--keras FILE and -o OUTDIR are required" "no output" -- imp good.keras
expect_exit 2 "unknown option '--bogus'" "bad option" -- "$WORKER" import --bogus
[ ! -e o1/model.ini ] && [ ! -e o4/model.ini ] && pass || fail "a failed import left model.ini"
# The good one imports (so the cases above fail for their own reason).
"$WORKER" import --keras good.keras -o ok >/dev/null && [ -s ok/init_weights.safetensors ] &&
  pass || fail "good.keras does not import"
"$WORKER" import --help | grep -q -- "--keras FILE" && pass || fail "import --help"
"$WORKER" --help | grep -qE "^  import +" && pass || fail "--help lists import"
# [model] init_weights that does not fit the model names the file and the key.
printf '[model]\ninput = 4\nloss = mse\ninit_weights = ok/init_weights.safetensors\n[layer.1]\ntype = dense\nunits = 7\n[data]\nformat = numpy\ntrain_x = x.npy\ntrain_y = y.npy\nvalidation_split = 0\n[tensorboard]\nenabled = false\n[train]\nsave_model = false\nbatch_size = 4\nepochs = 1\n' >bad_init.ini
"$PY" -c "import numpy as np; np.save('x.npy', np.zeros((8, 4), 'f4')); np.save('y.npy', np.zeros((8, 7), 'f4'))"
expect_exit 2 "bad_init.ini:4: ok/init_weights.safetensors: tensor 'dense_1.kernel'" "init_weights of another model" -- \
  "$WORKER" --config bad_init.ini --no-progress
finish
