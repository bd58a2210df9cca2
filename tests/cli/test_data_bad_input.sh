# Bad data through dtrain-worker (issue 15): each case exits with status 1 (bad data)
# or 2 (a bad config: data.format without its training data, validation files together
# with validation_split), and the message names the file and the place (line and
# column, sample and value, entry, or the training step). Files are written by numpy,
# Pillow and Python's csv module, each a copy of a good file with one defect; the good
# files themselves train (checked first), so each failure is the defect's.
source "$(dirname "$0")/lib.sh"

require_python "numpy, PIL"
cd "$TMP" || exit 1

"$PY" - <<'EOF' && pass || fail "writing the data files"
import csv, os, shutil, struct, zlib
import numpy as np
from PIL import Image
rng = np.random.default_rng(3)

def wcsv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["a", "b", "y"])
        w.writerows(rows)
# Row k of the data is on line k + 2.
good = [[round(float(v), 3) for v in rng.normal(size=2)] + [i % 3] for i in range(60)]
def bad(path, k, col, value):
    rows = [list(r) for r in good]
    if col is None:
        rows[k] = rows[k][:2]
    else:
        rows[k][col] = value
    wcsv(path, rows)
wcsv("good.csv", good)
bad("ragged.csv", 6, None, None)          # line 8: 2 fields of 3
bad("word.csv", 9, 1, "abc")              # line 11, column 2
bad("nan.csv", 12, 0, "nan")              # line 14, column 1
bad("negative.csv", 20, 2, -1)            # line 22
bad("half.csv", 30, 2, 1.5)               # line 32
wcsv("bce.csv", [[a, b, int(y == 1)] for a, b, y in good])
rows = [[a, b, int(y == 1)] for a, b, y in good]
rows[15][2] = 2.0                          # line 17
wcsv("bce2.csv", rows)

x = rng.normal(size=(60, 4)).astype(np.float32)
y = (np.arange(60) % 3).astype(np.int64)
np.save("x.npy", x)
np.save("y.npy", y)
np.save("y59.npy", y[:59])
xn = x.copy()
xn[17, 2] = np.nan
np.save("xnan.npy", xn)
np.save("xcomplex.npy", x.astype(np.complex64))
np.save("xfortran.npy", np.asfortranarray(rng.normal(size=(60, 4))))
open("xtrunc.npy", "wb").write(open("x.npy", "rb").read()[:-10])

for c in ("a", "b", "c"):
    os.makedirs(f"img/{c}")
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(f"img/{c}/{i}.png")
# A broken header (the IHDR's CRC), found when the folder is listed.
shutil.copytree("img", "img_header")
b = bytearray(open("img_header/b/3.png", "rb").read())
b[20] ^= 0xFF
open("img_header/b/3.png", "wb").write(b)
# A good header, but the image data (IDAT) is garbage with a correct chunk CRC: only
# decoding the pixels finds it, which the loader does when the image's batch is read.
shutil.copytree("img", "img_data")
b = bytearray(open("img_data/c/7.png", "rb").read())
i = b.find(b"IDAT")
n = struct.unpack(">I", b[i - 4:i])[0]
b[i + 6:i + 4 + n] = bytes([0xAB]) * (n - 2)
b[i + 4 + n:i + 8 + n] = struct.pack(">I", zlib.crc32(bytes(b[i:i + 4 + n])))
open("img_data/c/7.png", "wb").write(b)
shutil.copytree("img", "img_empty")
os.makedirs("img_empty/d")
shutil.copytree("img", "img_rgb")
Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB").save("img_rgb/b/5.png")

with open("t_train.tsv", "w") as f:
    for i in range(40):
        f.write(("x\tab cd" if i % 2 else "y\tef gh") + "\n")
with open("t_empty.tsv", "w") as f:
    for i in range(40):
        f.write(("x\t" if i == 13 else "x\tab cd" if i % 2 else "y\tef gh") + "\n")   # line 14
with open("t_test.tsv", "w") as f:
    f.write("x\tab\ny\tef\nzz\tcd\n")                                                   # line 3
EOF

common='[train]
epochs = 2
batch_size = 4
[tensorboard]
enabled = false'
cat >csv.ini <<EOF
[data]
format = csv
train = good.csv
targets = y
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 3
$common
EOF
sed -e 's/^format = csv/format = numpy/' -e 's/^train = good.csv/train_x = x.npy\ntrain_y = y.npy/' \
  -e '/^targets/d' csv.ini >npy.ini
sed -e 's/^format = csv/format = images/' -e 's/^train = good.csv/train = img\nvalidation_split = 0/' \
  -e '/^targets/d' csv.ini >img.ini
cat >text.ini <<EOF
[data]
format = text
train = t_train.tsv
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = embedding
input_dim = 10
output_dim = 2
[layer.2]
type = global_avg_pool
[layer.3]
type = dense
units = 2
$common
EOF
bce=(--config csv.ini --set data.train=bce.csv --set model.loss=binary_crossentropy --set layer.1.units=1)

# The good files train.
for args in "--config csv.ini" "${bce[*]}" "--config npy.ini" "--config img.ini" "--config text.ini"; do
  # shellcheck disable=SC2086
  out=$("$WORKER" --no-progress $args 2>&1) && grep -q '^Epoch 2/2' <<<"$out" && pass ||
    fail "the good files do not train ($args): $out"
done

w() { "$WORKER" --no-progress "$@"; }

# ---- CSV ----
expect_exit 1 "ragged.csv:8:3: too few fields: 2 of 3 (column 'y' is missing)" "ragged row" -- \
  w --config csv.ini --set data.train=ragged.csv
expect_exit 1 "word.csv:11:2: column 'b': not a number: 'abc'" "non-numeric cell" -- \
  w --config csv.ini --set data.train=word.csv
expect_exit 1 "nan.csv:14:1: column 'a': not a finite number: 'nan'" "NaN in CSV" -- \
  w --config csv.ini --set data.train=nan.csv
expect_exit 1 "'negative.csv': sample 20 (line 22): class label -1 is not a non-negative integer" \
  "negative class label" -- w --config csv.ini --set data.train=negative.csv
expect_exit 1 "'half.csv': sample 30 (line 32): class label 1.5 is not a non-negative integer" \
  "class label 1.5" -- w --config csv.ini --set data.train=half.csv
expect_exit 1 "'bce2.csv': sample 15 (line 17): target 2, but binary_crossentropy needs targets in [0, 1]" \
  "BCE target 2.0" -- w "${bce[@]}" --set data.train=bce2.csv
# The same bad targets in a test file only: checked before training too.
expect_exit 1 "'bce2.csv': sample 15 (line 17): target 2" "BCE target 2.0 in the test file" -- \
  w "${bce[@]}" --set data.test=bce2.csv

# ---- NumPy ----
expect_exit 1 "'xnan.npy': sample 17, value 2 (index [2]) is NaN" "NaN in .npy" -- \
  w --config npy.ini --set data.train_x=xnan.npy
expect_exit 1 "'xcomplex.npy': unsupported dtype '<c8' (complex)" "complex .npy" -- \
  w --config npy.ini --set data.train_x=xcomplex.npy
expect_exit 1 "'xfortran.npy': the array is in Fortran order (fortran_order True)" "Fortran-order .npy" -- \
  w --config npy.ini --set data.train_x=xfortran.npy
expect_exit 1 "'xtrunc.npy': truncated: expected 960 data bytes (shape (60, 4) of <f4) after the 128-byte header, got 950" \
  "truncated .npy" -- w --config npy.ini --set data.train_x=xtrunc.npy
expect_exit 1 "'x.npy' has 60 samples, 'y59.npy' has 59 targets" "inputs and targets of different counts" -- \
  w --config npy.ini --set data.train_y=y59.npy

# ---- images ----
expect_exit 1 "'img_header/b/3.png': corrupt PNG: IHDR: CRC error" "corrupt PNG header" -- \
  w --config img.ini --set data.train=img_header
# Found when decoded, in a batch of the run: the message names the step and the file.
# With every loader thread count (0: the training thread decodes).
for threads in 0 1 2; do
  out=$(w --config img.ini --set data.train=img_data --set data.threads=$threads 2>&1 >/dev/null)
  rc=$?
  [ $rc -eq 1 ] && grep -qE "^error: reading the training batch of step [1-9][0-9]*: 'img_data/c/7.png': corrupt PNG" <<<"$out" &&
    pass || fail "PNG with corrupt image data, data.threads = $threads: exit $rc: $out"
done
expect_exit 1 "'img_empty/d': class folder without images" "empty class folder" -- \
  w --config img.ini --set data.train=img_empty
expect_exit 1 "'img_rgb/b/5.png': 3 channels, but the first image 'img_rgb/a/0.png' has 1" \
  "another channel count" -- w --config img.ini --set data.train=img_rgb

# ---- text ----
expect_exit 1 "t_empty.tsv:14: empty text (after the tab)" "empty text line" -- \
  w --config text.ini --set data.train=t_empty.tsv
expect_exit 1 "t_test.tsv:3: label 'zz' is not a class of the training set (its classes: 'x', 'y')" \
  "test label the training set lacks" -- w --config text.ini --set data.test=t_test.tsv

# ---- config (exit 2) ----
grep -v '^train = ' csv.ini >notrain.ini
expect_exit 2 "notrain.ini:2: data.format = csv needs the training data: set data.train" \
  "csv without data.train" -- w --config notrain.ini
expect_exit 2 "--set data.validation_split: data.validation_split = 0.2 and validation files: choose one" \
  "validation files and validation_split" -- \
  w --config csv.ini --set data.validation=good.csv --set data.validation_split=0.2
finish
