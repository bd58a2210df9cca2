#!/usr/bin/env bash
# The model a run leaves behind, and the commands that use it: a short training run
# writes <run folder>/model; predict on its test set gives classes that are the argmax
# of its probabilities and the accuracy the run printed; .csv and .npy agree; evaluate
# prints the run's own "Test:" line; the real safetensors package reads the same
# tensors as the checkpoint and --save-params hold; a SIGTERM without checkpoint.dir
# still leaves the model; bad input exits with the status and a message naming the file.
source "$(dirname "$0")/lib.sh" "$1" "$2"
require_python "numpy, safetensors"
make_subset "$TMP/d" 300
cd "$TMP" || exit 1
read -ra DATA <<<"$(data_args "$TMP/d")"
run() {
  "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" "${DATA[@]}" --set tensorboard.enabled=false \
    --set tensorboard.logdir="$TMP/runs" --no-progress "$@"
}

# A short run with checkpoints and --save-params: its final model goes to runs/r1/model.
run --set tensorboard.run=r1 --set train.epochs=2 --set checkpoint.dir="$TMP/ck" \
  --save-params "$TMP/params.bin" >"$TMP/train.log" 2>&1 || fail "training failed: $(cat "$TMP/train.log")"
M="$TMP/runs/r1/model"
grep -qF "Model saved to $M (weights: final, epoch 2)" "$TMP/train.log" && pass ||
  fail "no 'Model saved to $M' line: $(grep -i model "$TMP/train.log")"
for f in model.safetensors preprocess.json manifest.json; do
  [ -f "$M/$f" ] && pass || fail "the final model has no $f"
done
test_line=$(grep '^Test:' "$TMP/train.log")
acc=$(sed -nE 's/^Test: .* accuracy: ([0-9.]+) .*/\1/p' <<<"$test_line")

# predict: probabilities and classes, as .npy and .csv.
P=(predict --model "$M" --input "$TMP/d/test-images")
"$WORKER" "${P[@]}" --output "$TMP/p.npy" >"$TMP/p.log" 2>&1 || fail "predict: $(cat "$TMP/p.log")"
"$WORKER" "${P[@]}" --output "$TMP/p.csv" -q >"$TMP/pc.log" 2>&1 || fail "predict csv: $(cat "$TMP/pc.log")"
"$WORKER" "${P[@]}" --output "$TMP/c.npy" --kind classes -q || fail "predict classes"
"$WORKER" "${P[@]}" --output "$TMP/c.csv" --kind classes -q || fail "predict classes csv"
grep -qF "probabilities of shape (300, 10) written to $TMP/p.npy" "$TMP/p.log" && pass ||
  fail "predict's summary: $(cat "$TMP/p.log")"
out=$("$PY" - "$TMP" "$acc" <<'EOF' 2>&1
import csv, gzip, sys
import numpy as np
tmp, acc = sys.argv[1], float(sys.argv[2])
p = np.load(f"{tmp}/p.npy"); c = np.load(f"{tmp}/c.npy")
assert p.shape == (300, 10) and p.dtype == np.float32, (p.shape, p.dtype)
assert c.shape == (300,) and c.dtype == np.int64, (c.shape, c.dtype)
assert np.allclose(p.sum(axis=1), 1, atol=1e-5), "probabilities do not sum to 1"
assert (p.argmax(axis=1) == c).all(), "classes are not the argmax of the probabilities"
labels = np.frombuffer(open(f"{tmp}/d/test-labels", "rb").read()[8:], dtype=np.uint8)
mine = (c == labels).mean()
assert f"{mine:.4f}" == f"{acc:.4f}", f"accuracy from predict {mine:.4f}, the run printed {acc:.4f}"
with open(f"{tmp}/p.csv") as f:
    rows = list(csv.reader(f))
assert rows[0] == [f"p{j}" for j in range(10)], rows[0]
pc = np.array(rows[1:], dtype=np.float32)
assert (pc == p).all(), f"csv and npy differ: max {np.abs(pc - p).max()}"
with open(f"{tmp}/c.csv") as f:
    rows = list(csv.reader(f))
assert rows[0] == ["class"] and (np.array(rows[1:], dtype=np.int64)[:, 0] == c).all(), "class csv"
print("ok")
EOF
)
[ "$out" = ok ] && pass || fail "predict's outputs: $out"

# evaluate: the run's own test line, from the saved model, a checkpoint and the root.
for m in "$M" "$TMP/ck" "$M/model.safetensors"; do
  line=$("$WORKER" evaluate --model "$m" -q 2>&1)
  [ "$line" = "$test_line" ] && pass || fail "evaluate --model $m: '$line', the run printed '$test_line'"
done
line=$("$WORKER" evaluate --model "$M" --input "$TMP/d/test-images" --targets "$TMP/d/test-labels" -q)
[ "${line#Evaluation: }" = "${test_line#Test: }" ] && pass || fail "evaluate --input: '$line'"

# The real safetensors package: the same tensors as the last checkpoint's model file,
# and the parameters in file order are --save-params' flat buffer.
out=$("$PY" - "$M/model.safetensors" "$TMP/ck/$(cat "$TMP/ck/latest")/model.safetensors" \
  "$TMP/params.bin" <<'EOF' 2>&1
import json, struct, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
mine, ckpt = load_file(sys.argv[1]), load_file(sys.argv[2])
assert mine.keys() == ckpt.keys(), (sorted(mine), sorted(ckpt))
for k in mine:
    assert mine[k].dtype == np.float32 and (mine[k] == ckpt[k]).all(), k
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
assert meta["kind"] == "saved-model" and "[layer.1]" in meta["config"], meta
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
order = sorted((v["data_offsets"][0], k) for k, v in head.items() if k != "__metadata__")
flat = np.concatenate([mine[k].ravel() for _, k in order])
params = np.fromfile(sys.argv[3], dtype="<f4")
assert (flat[:params.size] == params).all() and flat.size == params.size, "differs from --save-params"
print("ok")
EOF
)
[ "$out" = ok ] && pass || fail "safetensors: $out"

# SIGTERM without checkpoint.dir: the model so far is kept, exit 0.
make_subset "$TMP/big" 3000
read -ra BIG <<<"$(data_args "$TMP/big")"
bg stop "$WORKER" --config "$SRC/examples/fmnist-mlp.ini" "${BIG[@]}" --set tensorboard.enabled=false \
  --set tensorboard.logdir="$TMP/runs" --set tensorboard.run=r2 --set train.epochs=1000 \
  --set train.batch_size=16 --progress-every 0
if wait_log "$TMP/stop.log" "^Epoch 1/" 120; then
  kill -TERM "$PID_stop"
  wait "$PID_stop"
  rc=$?
  [ "$rc" -eq 0 ] && pass || fail "SIGTERM without checkpoint.dir: exit $rc: $(tail -3 "$TMP/stop.log")"
  grep -qF "without a checkpoint (checkpoint.dir is not set): the model so far is in $TMP/runs/r2/model" \
    "$TMP/stop.log" && pass || fail "no stop message: $(tail -3 "$TMP/stop.log")"
  "$WORKER" predict --model "$TMP/runs/r2/model" --input "$TMP/d/test-images" --output "$TMP/s.npy" -q &&
    pass || fail "predict with the model of a stopped run"
else
  fail "the long run did not finish an epoch: $(tail -3 "$TMP/stop.log")"
fi

# Bad input.
mkdir -p "$TMP/empty"
expect_exit 2 "$TMP/empty is not a dtrain model" "not a model" -- \
  "$WORKER" predict --model "$TMP/empty" --input "$TMP/d/test-images" --output "$TMP/x.npy"
expect_exit 2 "$TMP/nothing: No such file" "no such model" -- \
  "$WORKER" evaluate --model "$TMP/nothing"
"$PY" -c "import numpy as np; np.save('$TMP/wrong.npy', np.zeros((5, 10), np.float32))"
expect_exit 2 "'$TMP/wrong.npy': samples of shape (10) (10 values), but the model in $M takes (28, 28, 1)" \
  "wrong shape" -- "$WORKER" predict --model "$M" --input "$TMP/wrong.npy" --output "$TMP/x.npy"
[ ! -e "$TMP/x.npy" ] && pass || fail "a failed predict left an output file"
expect_exit 2 "must end in .npy or .csv" "bad output name" -- \
  "$WORKER" predict --model "$M" --input "$TMP/d/test-images" --output "$TMP/x.txt"
expect_exit 2 "--kind 'logits'" "bad kind" -- \
  "$WORKER" predict --model "$M" --input "$TMP/d/test-images" --output "$TMP/x.npy" --kind logits
cp -r "$M" "$TMP/bad"
printf '\x55' | dd of="$TMP/bad/model.safetensors" bs=1 seek=5000 conv=notrunc status=none
expect_exit 1 "$TMP/bad/model.safetensors: CRC32C" "corrupt model" -- \
  "$WORKER" evaluate --model "$TMP/bad"
truncate -s 100 "$TMP/bad/model.safetensors"
expect_exit 1 "$TMP/bad/model.safetensors" "truncated model" -- \
  "$WORKER" predict --model "$TMP/bad" --input "$TMP/d/test-images" --output "$TMP/x.npy"
expect_exit 2 "unknown option '--bogus' (see predict --help)" "unknown option" -- \
  "$WORKER" predict --bogus
"$WORKER" predict --help | grep -q -- "--kind KIND" && pass || fail "predict --help"
"$WORKER" evaluate --help | grep -q -- "--targets FILE" && pass || fail "evaluate --help"
"$WORKER" --help | grep -qE "^  predict +" && pass || fail "--help lists predict"
finish
