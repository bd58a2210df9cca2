# Batch norm under 2-rank sync training: each rank's moving averages follow its own
# batches during an epoch, and the epoch's end averages them, so after training both
# ranks hold identical moving statistics, which are also what the checkpoint's model
# file holds; and they have moved away from their initial values (zeros and ones).
# The test reads the final checkpoint's per-rank files (each rank's own copy).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"
python="${DT_PYTHON:-$SRC/.venv/bin/python}"
[[ -x "$python" ]] && "$python" -c "import numpy" 2>/dev/null ||
  { echo "FAIL: no Python with numpy at $python: run scripts/setup-python-venv.sh" >&2; exit 1; }

D="$TMP/data"
make_subset "$D" 1000
cat >"$TMP/bn.ini" <<'INI'
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 16
[layer.2]
type = batch_norm
[layer.3]
type = relu
[layer.4]
type = dense
units = 10
[optimizer]
type = adam
[train]
epochs = 2
batch_size = 16
lr = 0.003
[tensorboard]
enabled = false
INI
# shellcheck disable=SC2046
"${MPIEXEC[@]}" -n 2 "$WORKER" --config "$TMP/bn.ini" $(data_args "$D") --no-progress \
  --set checkpoint.dir="$TMP/ck" >"$TMP/run.log" 2>&1 || fail "2-rank run: exit status $?: $(cat "$TMP/run.log")"
grep '^Test:' "$TMP/run.log"
ck="$TMP/ck/$(cat "$TMP/ck/latest")"
if out=$("$python" - "$ck" 2>&1 <<'PY'
import json, struct, sys
import numpy as np

def tensors(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    hdr = json.loads(blob[8:8 + n]); hdr.pop("__metadata__", None)
    return {k: np.frombuffer(blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4")
            for k, v in hdr.items()}

ck = sys.argv[1]
r0, r1, model = (tensors(f"{ck}/{f}") for f in ("rank-0.safetensors", "rank-1.safetensors", "model.safetensors"))
names = ["batch_norm_1.moving_mean", "batch_norm_1.moving_variance"]
assert sorted(r0) == sorted(names) == sorted(r1), f"rank files hold {sorted(r0)} / {sorted(r1)}"
for k in names:
    assert np.array_equal(r0[k].view(np.uint32), r1[k].view(np.uint32)), f"{k}: ranks differ: {r0[k]} vs {r1[k]}"
    assert np.array_equal(r0[k], model[k]), f"{k}: the model file differs from the ranks'"
assert np.abs(r0[names[0]]).max() > 1e-3, "moving_mean never moved from zeros"
assert np.abs(r0[names[1]] - 1).max() > 1e-3, "moving_variance never moved from ones"
print(f"batch norm: moving statistics identical on both ranks and in the model file; "
      f"mean |moving_mean| {np.abs(r0[names[0]]).mean():.4f}, mean moving_variance {r0[names[1]].mean():.4f}")
PY
); then pass; else fail "$out"; fi
echo "$out"
finish
