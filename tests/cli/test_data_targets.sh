# What a model trains against, through dtrain-worker (issue 15), on small synthetic
# problems written by numpy, Pillow and Python's csv module:
#  - 0/1 labels in a CSV, one sigmoid unit, binary_crossentropy (default target =
#    values): binary accuracy printed, test accuracy above 0.95 (chance: about 0.5);
#  - regression y = 2 z1 - z2 + 0.5 z3 + 1 (+ noise 0.01) from features of very
#    different offsets and scales, data.scale = standardize: mse on the CSV and mae on
#    the same data as .npy; val_mae printed, test mae below 0.1 (predicting the mean
#    gives about 1.8, the same training on unscaled features about 26, the noise floor
#    is 0.008); with mae the printed val_loss is the val_mae;
#  - two float target columns: test mae below 0.05 and the learned kernel equal to the
#    least-squares solution in numpy (so the columns are not swapped or mixed);
#  - integer classes 0..11 (more than 10) from .npy, and the same with target = one_hot
#    and mse: test accuracy above 0.9 resp. test mse below 0.05 (predicting zeros gives
#    1/12 = 0.083), and in both the kernel maps input i (a noisy one-hot of class i) to
#    output i, so a shifted or permuted class mapping fails;
#  - an embedding model on text (format = text, tokens = chars): lines of the letters
#    a-m are one class, n-z the other; test accuracy above 0.9;
#  - data.scale = 1/255 with an embedding first layer (text ids, or uint8 .npy ids) is an
#    error (exit 2) naming data.scale where it was set; without it the uint8 ids are
#    not scaled;
#  - preprocess.json of a checkpoint: the standardization's mean and std equal numpy's
#    (float64, ddof 0) over the training split (the rows before the validation tail) to
#    1e-6 relative; the vocabulary of the text run is the characters of its training
#    lines by count, then by bytes, after "" and "[UNK]"; the class names of an image
#    folder are its sorted sub-folders; no key appears twice.
source "$(dirname "$0")/lib.sh"

require_python "numpy, PIL"
cd "$TMP" || exit 1

"$PY" - <<'EOF' && pass || fail "writing the data files"
import csv, os
import numpy as np
from PIL import Image
rng = np.random.default_rng(15)

def write_csv(path, names, cols):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in zip(*cols):
            w.writerow([int(v) if np.issubdtype(type(v), np.integer) else repr(float(v)) for v in row])

for split, n in (("train", 400), ("test", 200)):
    a, b = rng.normal(size=n), rng.normal(size=n)
    write_csv(f"bin_{split}.csv", ["a", "b", "y"], [a, b, (a + 0.5 * b > 0).astype(np.int64)])

for split, n in (("train", 500), ("test", 200)):
    z = rng.normal(size=(n, 3))
    x = (z * [20.0, 0.1, 300.0] + [100.0, -5.0, 1000.0]).astype(np.float32)
    y = (2 * z[:, 0] - z[:, 1] + 0.5 * z[:, 2] + 1 + 0.01 * rng.normal(size=n)).astype(np.float32)
    write_csv(f"reg_{split}.csv", ["x1", "x2", "x3", "y"], [x[:, 0], x[:, 1], x[:, 2], y])
    np.save(f"reg_{split}_x.npy", x)
    np.save(f"reg_{split}_y.npy", y.reshape(n, 1))
    t = np.stack([z[:, 0] + z[:, 1], z[:, 1] - z[:, 2]], 1).astype(np.float32)
    write_csv(f"two_{split}.csv", ["x1", "x2", "x3", "t1", "t2"], [x[:, 0], x[:, 1], x[:, 2], t[:, 0], t[:, 1]])

for split, n in (("train", 600), ("test", 240)):
    c = rng.integers(0, 12, size=n)
    np.save(f"c12_{split}_x.npy", (3 * np.eye(12)[c] + 0.5 * rng.normal(size=(n, 12))).astype(np.float32))
    np.save(f"c12_{split}_y.npy", c.astype(np.int64))

for split, n in (("train", 400), ("test", 100)):
    ids, labels = [], []
    with open(f"text_{split}.tsv", "w") as f:
        for i in range(n):
            hi = int(rng.integers(0, 2))
            letters = "nopqrstuvwxyz" if hi else "abcdefghijklm"
            k = int(rng.integers(4, 11))
            text = "".join(rng.choice(list(letters), k))
            f.write(("hi" if hi else "lo") + "\t" + text.upper() if i % 7 == 0 else
                    ("hi" if hi else "lo") + "\t" + text)
            f.write("\n")
            ids.append([ord(ch) - ord("a") + 2 for ch in text] + [0] * (10 - k))
            labels.append(hi)
    np.save(f"ids_{split}_x.npy", np.array(ids, np.uint8))
    np.save(f"ids_{split}_y.npy", np.array(labels, np.int64))

for cls, base in (("bright", 200), ("dark", 40)):
    os.makedirs(f"img/{cls}")
    for i in range(24):
        px = np.clip(base + rng.normal(0, 20, (4, 4, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px, "RGB").save(f"img/{cls}/{i:02d}.png")
EOF

common='[optimizer]
type = adam
[train]
batch_size = 16
lr = 0.05
seed = 1
[tensorboard]
enabled = false'
cat >bin.ini <<EOF
[data]
format = csv
train = bin_train.csv
test = bin_test.csv
targets = y
[model]
loss = binary_crossentropy
[layer.1]
type = dense
units = 1
activation = sigmoid
$common
EOF
cat >reg.ini <<EOF
[data]
format = csv
train = reg_train.csv
test = reg_test.csv
targets = y
validation_split = 0.2
scale = standardize
[model]
loss = mse
[layer.1]
type = dense
units = 1
$common
EOF
cat >regnpy.ini <<EOF
[data]
format = numpy
train_x = reg_train_x.npy
train_y = reg_train_y.npy
test_x = reg_test_x.npy
test_y = reg_test_y.npy
validation_split = 0.2
scale = standardize
[model]
loss = mae
[layer.1]
type = dense
units = 1
$common
EOF
cat >c12.ini <<EOF
[data]
format = numpy
train_x = c12_train_x.npy
train_y = c12_train_y.npy
test_x = c12_test_x.npy
test_y = c12_test_y.npy
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 12
$common
EOF
cat >text.ini <<EOF
[data]
format = text
train = text_train.tsv
test = text_test.tsv
tokens = chars
max_tokens = 30
sequence_length = 10
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = embedding
input_dim = 30
output_dim = 8
[layer.2]
type = global_avg_pool
[layer.3]
type = dense
units = 2
$common
EOF
sed -e 's/^format = text/format = numpy/' -e '/^train = /c train_x = ids_train_x.npy\ntrain_y = ids_train_y.npy' \
  -e '/^test = /c test_x = ids_test_x.npy\ntest_y = ids_test_y.npy' -e '/^tokens\|^max_tokens\|^sequence_length/d' \
  text.ini >ids.ini
cat >img.ini <<EOF
[data]
format = images
train = img
validation_split = 0.25
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 2
$common
EOF

# run NAME ARGS...: a run that must succeed; log in NAME.log, parameters in NAME.bin.
run() {
  local name=$1
  shift
  if "$WORKER" --no-progress --save-params "$name.bin" "$@" >"$name.log" 2>&1; then pass; else
    fail "$name: exit status $?: $(cat "$name.log")"
  fi
  grep -E '^(Data: [a-z]|Classes|Epoch|Test)' "$name.log" | sed "s/^/$name: /"
}
# test_metric NAME KEY: the value of KEY (loss, accuracy, mae) on the run's Test line.
test_metric() { sed -nE "s/^Test: .*\\b$2: ([0-9.]+)[ ].*/\\1/p" "$1.log"; }
# expect_below NAME KEY BAR / expect_above NAME KEY BAR
expect_below() {
  local v
  v=$(test_metric "$1" "$2")
  [ -n "$v" ] && awk -v v="$v" -v b="$3" 'BEGIN { exit !(v < b) }' && pass ||
    fail "$1: test $2 '${v}', expected below $3: $(grep '^Test' "$1.log")"
}
expect_above() {
  local v
  v=$(test_metric "$1" "$2")
  [ -n "$v" ] && awk -v v="$v" -v b="$3" 'BEGIN { exit !(v > b) }' && pass ||
    fail "$1: test $2 '${v}', expected above $3: $(grep '^Test' "$1.log")"
}
expect_line() { # NAME REGEX WHAT
  grep -qE -- "$2" "$1.log" && pass || fail "$1: $3: $(cat "$1.log")"
}
# check_py NAME SCRIPT ARGS...: a Python check that prints problems and exits non-zero.
check_py() {
  local name=$1 out
  shift
  if out=$("$PY" - "$@" 2>&1); then pass; else fail "$name: $out"; fi
}
# latest CKPT_ROOT: the newest checkpoint's directory.
latest() { echo "$1/$(cat "$1/latest")"; }

# ---- 0/1 labels, one sigmoid unit, binary cross-entropy ----
run bin --config bin.ini --set train.epochs=3
expect_line bin "^Data: csv, 360 training, 40 validation .*; 1 target value; scale none" "not 1 target value"
expect_line bin "^Epoch 3/3 .* - accuracy: [0-9.]+ - val_loss: [0-9.]+ - val_accuracy: [0-9.]+ " \
  "no binary accuracy on the epoch line"
expect_above bin accuracy 0.95

# ---- regression: mse (CSV), mae (NumPy), standardized inputs ----
run reg --config reg.ini --set train.epochs=6 --set checkpoint.dir=ck_reg
expect_line reg "^Data: csv, 400 training, 100 validation .*; 1 target value; scale standardize" "not standardized"
expect_line reg "^Epoch 6/6 .* - loss: [0-9.]+ - val_loss: [0-9.]+ - val_mae: [0-9.]+ - " "no val_mae"
expect_line reg "^Test: loss: [0-9.]+ - mae: [0-9.]+ \\(200 samples\\)$" "no test mae"
expect_below reg mae 0.1
run regnpy --config regnpy.ini --set train.epochs=6
expect_line regnpy "^Data: numpy, 400 training, 100 validation .*; 1 target value; scale standardize" "not standardized"
expect_line regnpy "^Epoch 6/6 .* - val_loss: ([0-9.]+) - val_mae: \\1 - " "val_loss is not the val_mae"
expect_below regnpy mae 0.1

# The statistics in preprocess.json are numpy's over the 400 training rows.
check_py "standardization statistics" "$(latest ck_reg)/preprocess.json" reg_train_x.npy <<'EOF'
import json, sys
import numpy as np
def no_dups(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "a key appears twice: %s" % keys
    return dict(pairs)
p = json.load(open(sys.argv[1]), object_pairs_hook=no_dups)
x = np.load(sys.argv[2]).astype(np.float64)[:400]
want_mean, want_std = x.mean(0), x.std(0)
assert p["scale"] == "standardize", p
assert p["features"] == ["x1", "x2", "x3"] and p["targets"] == ["y"], p
for key, want in (("mean", want_mean), ("std", want_std)):
    got = np.array(p[key], np.float64)
    rel = np.abs(got - want) / np.abs(want)
    assert got.shape == want.shape and (rel <= 1e-6).all(), "%s %s, numpy %s (relative %s)" % (key, got, want, rel)
print("preprocess.json mean/std = numpy's to 1e-6:", p["mean"], p["std"])
EOF

# ---- two target columns ----
run two --config reg.ini --set data.train=two_train.csv --set data.test=two_test.csv \
  --set data.targets=t1,t2 --set layer.1.units=2 --set train.epochs=6
expect_line two "^Data: csv, 400 training, .*; 2 target values; scale standardize" "not 2 target values"
expect_below two mae 0.05
check_py "two targets: kernel" two.bin two_train.csv <<'EOF'
import sys
import numpy as np
p = np.fromfile(sys.argv[1], np.float32).astype(np.float64)
d = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, dtype=np.float32).astype(np.float64)[:400]
x, t = d[:, :3], d[:, 3:]
xs = (x - x.mean(0)) / x.std(0)
a = np.hstack([xs, np.ones((400, 1))])
want = np.linalg.lstsq(a, t, rcond=None)[0]          # (4, 2): kernel rows, then the bias
got = np.vstack([p[:6].reshape(3, 2), p[6:8]])        # kernel (in, units), bias (units)
assert p.size == 8 and np.abs(got - want).max() < 0.01, "kernel+bias\n%s\nleast squares\n%s" % (got, want)
EOF

# ---- 12 classes: labels, and one-hot targets with mse ----
DIAG='import sys
import numpy as np
k = np.fromfile(sys.argv[1], np.float32)[:144].reshape(12, 12)
assert (k.argmax(1) == np.arange(12)).all(), "input i does not map to output i: %s" % k.argmax(1)'
run c12 --config c12.ini --set train.epochs=3
expect_line c12 "^Data: numpy, 540 training, 60 validation .*; 12 classes; scale none" "not 12 classes"
expect_above c12 accuracy 0.9
check_py "12 classes: kernel" c12.bin <<<"$DIAG"
run onehot --config c12.ini --set train.epochs=3 --set model.loss=mse --set model.target=one_hot
expect_line onehot "^Epoch 3/3 .* - loss: [0-9.]+ - val_loss: [0-9.]+ - " "no epoch line"
expect_line onehot "^Test: loss: [0-9.]+ \\(240 samples\\)$" "no test loss"
expect_below onehot loss 0.05
check_py "one_hot mse: kernel" onehot.bin <<<"$DIAG"

# ---- text, characters, an embedding ----
run text --config text.ini --set train.epochs=3 --set checkpoint.dir=ck_text
expect_line text "^Data: text, 360 training, 40 validation .*; 2 classes; scale none" "not text ids"
expect_line text "^Classes: 0=hi, 1=lo$" "no class names"
expect_above text accuracy 0.9
check_py "text: preprocess.json" "$(latest ck_text)/preprocess.json" text_train.tsv <<'EOF'
import collections, json, sys
def no_dups(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "a key appears twice: %s" % keys
    return dict(pairs)
p = json.load(open(sys.argv[1]), object_pairs_hook=no_dups)
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()[:360]
count = collections.Counter(ch for l in lines for ch in l.split("\t", 1)[1].lower())
want = ["", "[UNK]"] + sorted(count, key=lambda t: (-count[t], t.encode()))[:28]
assert p["vocabulary"] == want, "vocabulary %s, expected %s" % (p["vocabulary"], want)
assert p["class_names"] == ["hi", "lo"] and p["tokens"] == "chars" and p["sequence_length"] == 10, p
EOF

# ---- data.scale = 1/255 with an embedding first layer ----
expect_exit 2 "--set data.scale: data.scale = 1/255, but the inputs are token ids for an embedding" \
  "1/255 on text ids" -- "$WORKER" --config text.ini --set data.scale=1/255
sed 's/^sequence_length = 10/&\nscale = 1\/255/' text.ini >text_scaled.ini
line=$(grep -n '^scale = 1/255' text_scaled.ini | cut -d: -f1)
expect_exit 2 "text_scaled.ini:$line: data.scale = 1/255, but the inputs are token ids" \
  "1/255 on text ids, in the file" -- "$WORKER" --config text_scaled.ini
expect_exit 2 "--set data.scale: data.scale = 1/255, but the inputs are token ids for an embedding" \
  "1/255 on uint8 ids of an embedding" -- "$WORKER" --config ids.ini --set data.scale=1/255
# The same uint8 ids without data.scale are not scaled (1/255 is the default for
# uint8 elsewhere), and they learn the rule.
run ids --config ids.ini --set train.epochs=3
expect_line ids "^Data: numpy, 360 training, .*; 2 classes; scale none" "uint8 ids were scaled"
expect_above ids accuracy 0.9

# ---- class names of an image folder ----
run img --config img.ini --set train.epochs=1 --set train.batch_size=8 --set checkpoint.dir=ck_img
expect_line img "^Classes: 0=bright, 1=dark$" "no class names"
check_py "images: preprocess.json" "$(latest ck_img)/preprocess.json" <<'EOF'
import json, sys
def no_dups(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "a key appears twice: %s" % keys
    return dict(pairs)
p = json.load(open(sys.argv[1]), object_pairs_hook=no_dups)
assert p["class_names"] == ["bright", "dark"] and p["num_classes"] == 2, p
assert p["image_size"] == [4, 4] and p["channels"] == 3 and p["input_shape"] == [4, 4, 3], p
assert p["scale"] == "1/255", p
EOF
finish
