#!/usr/bin/env bash
# A Keras model there and back (issue 18): a Keras MLP (Dense relu, Dropout, Dense
# softmax) on a small 3-class problem is imported with `dtrain-worker import --keras`,
# trained by dtrain from the imported weights for 2 epochs under mpiexec -n 2 (the
# imported model.ini followed by the run's own sections), exported as .keras from the
# run's saved model, and evaluated by Keras on the test split: Keras' test accuracy is
# the one dtrain printed (to 1e-4), and training moved the weights (the accuracy of the
# untrained import differs from the trained one, or its loss does).
export KERAS_BACKEND=jax # before keras is imported (its default would be TensorFlow)
source "$(dirname "$0")/lib.sh" "$1" "$2"
source "$(dirname "$0")/mpi.sh"
require_python "numpy, keras, jax"
TOOL="$BUILD/tests/keras_tool"
cd "$TMP" || exit 1

"$PY" - <<'PY'
import numpy as np, keras
L = keras.layers
r = np.random.RandomState(0)
centers = r.randn(3, 8) * 1.5
def blobs(n):
    y = r.randint(0, 3, n)
    return (centers[y] + r.randn(n, 8)).astype("f4"), y.astype("int64")
x, y = blobs(512); tx, ty = blobs(200)
np.save("x.npy", x); np.save("y.npy", y); np.save("tx.npy", tx); np.save("ty.npy", ty)
keras.utils.set_random_seed(1)
m = keras.Sequential([keras.Input((8,)), L.Dense(16, activation="relu"), L.Dropout(0.1),
                      L.Dense(3, activation="softmax")])
m.save("mlp.keras")
PY

"$WORKER" import --keras mlp.keras -o imported >/dev/null || { fail "import"; finish; }
{
  sed 's|^\[model\]$|[model]\ninit_weights = imported/init_weights.safetensors|' imported/model.ini
  cat <<'INI'
[data]
format = numpy
train_x = x.npy
train_y = y.npy
test_x = tx.npy
test_y = ty.npy
validation_split = 0
[train]
epochs = 2
batch_size = 16
lr = 0.05
model_dir = trained
[optimizer]
type = sgd
[tensorboard]
enabled = false
INI
} >run.ini

out=$("${MPIEXEC[@]}" -n 2 "$WORKER" --config run.ini --no-progress 2>&1)
rc=$?
echo "$out" | grep -E "^(Epoch|Test)"
[ "$rc" -eq 0 ] && pass || fail "2-rank run: exit status $rc: $out"
acc=$(grep -oE "^Test: loss: [0-9.]+ - accuracy: [0-9.]+" <<<"$out" | grep -oE "[0-9.]+$")
[ -n "$acc" ] || fail "no test accuracy in: $out"

if ! o=$("$WORKER" export --model trained -o trained.keras 2>&1); then
  fail "export of the trained model: $o"
else
  kacc=$("$PY" -c "
import numpy as np, keras
m = keras.models.load_model('trained.keras')
p = np.asarray(m.predict(np.load('tx.npy'), verbose=0))
print(f'{float(np.mean(p.argmax(1) == np.load(\"ty.npy\"))):.6f}')")
  echo "test accuracy: dtrain $acc, Keras on the exported model $kacc"
  awk -v a="$acc" -v b="$kacc" 'BEGIN { d = a - b; exit !(d <= 1e-4 && d >= -1e-4) }' && pass ||
    fail "Keras' test accuracy $kacc is not dtrain's $acc"
  # Training changed the weights: the export differs from the import.
  "$PY" -c "
import numpy as np, keras
a = keras.models.load_model('mlp.keras').get_weights()
b = keras.models.load_model('trained.keras').get_weights()
assert max(float(np.abs(u - v).max()) for u, v in zip(a, b)) > 1e-3" && pass ||
    fail "the trained weights equal the imported ones"
fi
finish
