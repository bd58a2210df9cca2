# One dataset, every format, the same training (issue 15): the first 400 Fashion-MNIST
# training and test samples as IDX, CSV (784 pixel columns + label), NumPy (.npy uint8
# (n, 28, 28, 1) with int64 labels, and a deflated .npz) and PNG folders
# (scripts/fmnist-to-png.py), trained through dtrain-worker with the same model and
# seed. Every format must give bit-identical batches, shown by bit-identical final
# parameters (--save-params, cmp_params with tolerance 0) and identical printed losses
# and accuracies (epoch lines without their timings, and the test line), with
# data.threads = 0, 1 and 2 all equal.
#
# Sample order. An image folder cannot be in the IDX order: its files are listed by
# class folder, then by name, and the training list is then shuffled with train.seed
# (so that a validation_split tail holds every class; the test folder is not shuffled).
# So the PNG folders are written first, the order dt_images_load gives them is read
# back through tests/tools/images_dump (the library's own loader, with the run's seed),
# each of those samples is found in the IDX files by its pixels and label, and every
# other format is written in that order. Matching by content is exact: two samples with
# the same pixels and label are interchangeable. validation_split = 0, so the whole
# file trains and the order above is the order the epochs permute.
#
# What a broken format would show: a pixel read wrongly (a row off, a channel
# misplaced), a different scaling (CSV floats need data.scale = 1/255 explicitly; 1/255
# done as a division in one place and a multiplication in another), a label mapped
# differently, or a loader thread that hands out batches in another order, each change
# the parameters. The control at the end (the IDX files in their own order) shows that
# the comparison notices a mere reordering.
source "$(dirname "$0")/lib.sh"

require_python "numpy"
N=400
SEED=3
D="$TMP/data"
make_subset "$D/orig" $N
"$PY" "$SRC/scripts/fmnist-to-png.py" "$D/png" --limit $N >/dev/null && pass || fail "fmnist-to-png.py"
"$BUILD/tests/images_dump" folder "$D/png/train" "$D/png-train.f32" --shuffle $SEED >"$D/png-train.txt" &&
  "$BUILD/tests/images_dump" folder "$D/png/test" "$D/png-test.f32" >"$D/png-test.txt" && pass ||
  fail "images_dump could not read the PNG folders"

# Every other format, in the PNG dataset's order.
"$PY" - "$D" <<'EOF' && pass || fail "writing the formats in the PNG order"
import csv, os, struct, sys
import numpy as np
d = sys.argv[1]

def idx(path, ndims):
    data = open(path, "rb").read()
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndims).reshape(dims)

def png_order(split):
    """The IDX indices of the samples in the order dt_images_load gives them."""
    x = idx(f"{d}/orig/{split}-images", 3)
    y = idx(f"{d}/orig/{split}-labels", 1)
    lines = dict(l.split(" ", 1) for l in open(f"{d}/png-{split}.txt").read().splitlines())
    labels = [int(v) for v in lines["labels"].split()]
    got = np.fromfile(f"{d}/png-{split}.f32", np.float32).reshape(len(labels), 28, 28)
    free = {}
    for i in range(len(y)):
        free.setdefault((x[i].tobytes(), int(y[i])), []).append(i)
    order = [free[(got[k].astype(np.uint8).tobytes(), labels[k])].pop() for k in range(len(labels))]
    assert sorted(order) == list(range(len(y))), "not a permutation"
    assert (got == x[order]).all()
    return x[order], y[order]

os.makedirs(f"{d}/idx"), os.makedirs(f"{d}/csv"), os.makedirs(f"{d}/npy")
arrays = {}
for split in ("train", "test"):
    x, y = png_order(split)
    n = len(y)
    with open(f"{d}/idx/{split}-images", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + x.tobytes())
    with open(f"{d}/idx/{split}-labels", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + y.tobytes())
    with open(f"{d}/csv/{split}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"p{i}" for i in range(784)] + ["label"])
        for i in range(n):
            w.writerow([int(v) for v in x[i].reshape(-1)] + [int(y[i])])
    arrays[f"{split}_x"] = x.reshape(n, 28, 28, 1)
    arrays[f"{split}_y"] = y.astype(np.int64)
for name, a in arrays.items():
    np.save(f"{d}/npy/{name}.npy", a)
np.savez_compressed(f"{d}/npy/all.npz", **arrays)
EOF

cat >"$TMP/model.ini" <<EOF
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 24
activation = relu
[layer.2]
type = dense
units = 10
[optimizer]
type = adam
[train]
epochs = 2
batch_size = 16
lr = 0.003
seed = $SEED
[tensorboard]
enabled = false
[data]
validation_split = 0
EOF

declare -A FMT
FMT[idx]="--set data.dir=$D/idx --set data.train_images=train-images --set data.train_labels=train-labels
  --set data.test_images=test-images --set data.test_labels=test-labels"
FMT[csv]="--set data.format=csv --set data.dir=$D/csv --set data.train=train.csv --set data.test=test.csv
  --set data.targets=label --set data.scale=1/255"
FMT[npy]="--set data.format=numpy --set data.dir=$D/npy --set data.train_x=train_x.npy
  --set data.train_y=train_y.npy --set data.test_x=test_x.npy --set data.test_y=test_y.npy"
FMT[npz]="--set data.format=numpy --set data.dir=$D/npy --set data.train_x=all.npz:train_x
  --set data.train_y=all.npz:train_y --set data.test_x=all.npz:test_x --set data.test_y=all.npz:test_y"
FMT[png]="--set data.format=images --set data.dir=$D/png --set data.train=train --set data.test=test
  --set data.color_mode=grayscale"
declare -A NAME=([idx]=idx [csv]=csv [npy]=numpy [npz]=numpy [png]=images)

# run NAME FORMAT THREADS: the run's parameters in $TMP/NAME.bin, its log in $TMP/NAME.log,
# and the lines that must agree (epoch lines without time and speed, the test line) in
# $TMP/NAME.lines.
run() {
  local name=$1 fmt=$2 threads=$3
  # shellcheck disable=SC2086
  if "$WORKER" --config "$TMP/model.ini" --no-progress ${FMT[$fmt]} --set data.threads="$threads" \
    --save-params "$TMP/$name.bin" >"$TMP/$name.log" 2>&1; then
    pass
  else
    fail "$name: exit status $?: $(cat "$TMP/$name.log")"
  fi
  sed -nE -e 's/^(Epoch [0-9/]+ - [0-9]+ steps) - [0-9.]+s (- .*) - [0-9]+ samples\/s$/\1 \2/p' \
    -e '/^Test: /p' "$TMP/$name.log" >"$TMP/$name.lines"
  # The format really is the one asked for, with 400 samples and 10 classes.
  grep -q "^Data: ${NAME[$fmt]}, $N training, no validation, $N test samples of shape .*; 10 classes; scale 1/255; $threads loader thread" \
    "$TMP/$name.log" && pass || fail "$name: no Data line for ${NAME[$fmt]}: $(grep '^Data' "$TMP/$name.log")"
}

run ref idx 1
[ "$(grep -c '^Epoch' "$TMP/ref.lines")" -eq 2 ] && grep -q '^Test: .*(400 samples)' "$TMP/ref.lines" &&
  pass || fail "the reference run printed no 2 epoch lines and a test line: $(cat "$TMP/ref.log")"
cat "$TMP/ref.lines"
for fmt in idx csv npy npz png; do
  for threads in 0 1 2; do
    [ "$fmt$threads" = idx1 ] && continue
    run "$fmt-$threads" "$fmt" "$threads"
    if out=$("$BUILD/tests/cmp_params" "$TMP/ref.bin" "$TMP/$fmt-$threads.bin" 0 2>&1); then pass; else
      fail "$fmt, data.threads = $threads: parameters differ from IDX with 1 thread: $out"
    fi
    if cmp -s "$TMP/ref.lines" "$TMP/$fmt-$threads.lines"; then pass; else
      fail "$fmt, data.threads = $threads: printed metrics differ: $(diff "$TMP/ref.lines" "$TMP/$fmt-$threads.lines")"
    fi
  done
done
grep -q "^Classes: 0=0-tshirt_top, 1=1-trouser, .* 9=9-ankle_boot" "$TMP/png-1.log" && pass ||
  fail "the PNG run shows no class names: $(cat "$TMP/png-1.log")"

# Control: the same samples in the IDX files' own order train to other parameters, so
# the comparisons above would notice batches that differ only in their order.
FMT[orig]="$(data_args "$D/orig")"
NAME[orig]=idx
run control orig 1
"$BUILD/tests/cmp_params" "$TMP/ref.bin" "$TMP/control.bin" 0 >/dev/null 2>&1 &&
  fail "the control run (another sample order) gave the same parameters" || pass
finish
