# GAN runs ([gan], src/worker/gan_trainer.c) through dtrain-worker:
#  - config errors exit 2 and name the place: no discriminator sections, sync.mode = ps,
#    a misspelt key in a generator layer (its file and line); --print-config works;
#  - a short run prints its epoch lines with d_loss, g_loss, D(x), D(G(z)) and writes
#    them and a grid of generated images to TensorBoard (read by the real reader);
#  - SIGKILL at a random step after the first checkpoint, then --resume: the final
#    parameters of both models are bit-identical to an uninterrupted run's;
#  - 2 MPI ranks with batch 8 end within a small tolerance of 1 rank with batch 16 (the
#    same real images and z; both models' gradients averaged);
#  - the run leaves its generator as a saved model (<run>/model) and its discriminator:
#    `generate --seed <train.seed>` remakes the run's last TensorBoard grid, its output is
#    (16, 28, 28, 1) in [0, 1] and the same for a seed, `export` writes an ONNX file that
#    ONNX Runtime runs; a resume with nothing left to train and a SIGTERM stop write it too;
#  - the DCGAN example on a subset: its samples' pixel statistics pass stated bars.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ckpt.sh"
source "$(dirname "$0")/mpi.sh"
require_python "numpy, tensorboard"

# A small GAN on 28x28 images: dense layers only, so that it runs in seconds; dropout in
# D draws from the rank's noise stream, which a resume must restore.
gan_config() {
  cat <<EOF
[gan]
latent_dim = 8
label_smoothing = 0.1
samples = 9
[generator.layer.1]
type = dense
units = 32
activation = leaky_relu
[generator.layer.2]
type = dense
units = 784
activation = sigmoid
[generator.layer.3]
type = reshape
target_shape = 28,28,1
[generator.optimizer]
type = adam
lr = 0.001
beta1 = 0.5
[discriminator.layer.1]
type = dense
units = 16
activation = leaky_relu
[discriminator.layer.2]
type = dropout
rate = $1
[discriminator.layer.3]
type = dense
units = 1
[discriminator.optimizer]
type = adam
lr = 0.001
beta1 = 0.5
[data]
validation_split = 0
[train]
batch_size = 16
seed = 3
threads = 1
[tensorboard]
enabled = false
logdir = $TMP/runs
EOF
}
gan_config 0.2 >"$TMP/gan.ini"
gan_config 0 >"$TMP/gan-nodrop.ini"
G="$TMP/gdata"
make_subset "$G" 640
# shellcheck disable=SC2046
ARGS=(--config "$TMP/gan.ini" $(data_args "$G") --no-progress)

# Config errors.
sed '/^\[discriminator/,$d' "$TMP/gan.ini" >"$TMP/nod.ini"
echo "[train]" >>"$TMP/nod.ini"
expect_exit 2 "nod.ini [gan]: a GAN run ([gan]) needs [discriminator.layer.1]" "no discriminator" -- \
  "$WORKER" --config "$TMP/nod.ini" $(data_args "$G") --no-progress
expect_exit 2 "--set sync.mode: [sync] mode = ps: a GAN run ([gan]) trains in sync mode only" "ps mode" -- \
  "$WORKER" "${ARGS[@]}" --set sync.mode=ps
line=$(($(grep -n '^units = 32' "$TMP/gan.ini" | cut -d: -f1) + 1))
sed "s/^units = 32/units = 32\nunitz = 32/" "$TMP/gan.ini" >"$TMP/typo.ini"
expect_exit 2 "typo.ini:$line: unknown key 'unitz'" "misspelt generator key" -- \
  "$WORKER" --config "$TMP/typo.ini" $(data_args "$G") --no-progress

# --print-config reads a GAN config and shows the [gan] defaults.
out=$("$WORKER" "${ARGS[@]}" --print-config 2>&1) && grep -qF "# d_steps = 1  (default)" <<<"$out" &&
  pass || fail "--print-config of a GAN run: $out"

# A short run: epoch lines and TensorBoard.
out=$("$WORKER" "${ARGS[@]}" --set train.epochs=2 --set tensorboard.enabled=true \
  --set tensorboard.logdir="$TMP/tb" --set tensorboard.run=gan 2>&1) || fail "short run: $out"
n=$(grep -cE '^Epoch [12]/2 - 40 steps - .* - d_loss: [0-9.]+ - g_loss: [0-9.]+ - D\(x\): 0\.[0-9]+ - D\(G\(z\)\): 0\.[0-9]+' <<<"$out")
[ "$n" -eq 2 ] && pass || fail "expected 2 GAN epoch lines: $out"
"$PY" - "$TMP/tb/gan/train" <<'EOF' && pass || fail "TensorBoard of the GAN run"
import io, sys
import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={"images": 0, "scalars": 0})
acc.Reload()
tags = acc.Tags()
for t in ["epoch_d_loss", "epoch_g_loss", "epoch_D(x)", "epoch_D(G(z))", "batch_d_loss"]:
    assert t in tags["scalars"], (t, tags["scalars"])
assert [e.step for e in acc.Scalars("epoch_g_loss")] == [1, 2]
d = [e.value for e in acc.Scalars("epoch_D(x)")]
assert all(0 < v < 1 for v in d), d
imgs = acc.Images("generated")
assert [e.step for e in imgs] == [1, 2], [e.step for e in imgs]
# 9 samples: a 3x3 grid of 28x28 tiles with one-pixel borders.
im = np.asarray(Image.open(io.BytesIO(imgs[-1].encoded_image_string)))
assert im.shape == (3 * 29 + 1, 3 * 29 + 1), im.shape
assert im[1:29, 1:29].std() > 0, "a blank sample"
EOF

# The run's saved models: the generator remakes the last grid from generate's z for
# seed train.seed (its first 9 of 16 samples; the grid is rounded to 8 bits).
GM="$TMP/tb/gan/model"
[ -f "$GM/manifest.json" ] && [ -f "$TMP/tb/gan/discriminator/manifest.json" ] && pass ||
  fail "no saved generator and discriminator in $TMP/tb/gan: $(ls "$TMP/tb/gan")"
grep -qF "Model saved to $GM (weights: generator, final, epoch 2)" <<<"$out" && pass ||
  fail "no 'Model saved to $GM' line: $out"
for s in 3 3b 4; do
  "$WORKER" generate --model "$GM" -o "$TMP/s$s.npy" --count 16 --seed "${s%b}" -q ||
    fail "generate --seed ${s%b} from the GAN's model"
done
cmp -s "$TMP/s3.npy" "$TMP/s3b.npy" && pass || fail "generate --seed 3 twice differs"
"$PY" - "$TMP/tb/gan/train" "$TMP/s3.npy" "$TMP/s4.npy" <<'EOF' && pass || fail "generate vs the run's grid"
import io, sys
import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={"images": 0})
acc.Reload()
grid = np.asarray(Image.open(io.BytesIO(acc.Images("generated")[-1].encoded_image_string)))
tiles = np.stack([grid[1 + k // 3 * 29:][:28, 1 + k % 3 * 29:][:, :28] for k in range(9)])
s, other = np.load(sys.argv[2]), np.load(sys.argv[3])
assert s.shape == (16, 28, 28, 1) and s.dtype == np.float32, (s.shape, s.dtype)
assert 0 <= s.min() and s.max() <= 1 and s.std() > 0, (s.min(), s.max())
d = np.abs(tiles / 255.0 - s[:9, :, :, 0]).max()
assert d <= 0.5 / 255 + 1e-4, d  # the PNG's rounding
assert np.abs(tiles / 255.0 - other[:9, :, :, 0]).max() > 0.05, "seed 4 gives the same images"
EOF
"$WORKER" export --model "$GM" -o "$TMP/g.onnx" >/dev/null && [ -s "$TMP/g.onnx" ] && pass ||
  fail "export of the GAN's generator"
if "$PY" -c "import onnxruntime" 2>/dev/null; then
  "$PY" - "$TMP/g.onnx" <<'EOF' && pass || fail "ONNX Runtime on the exported generator"
import sys
import numpy as np, onnxruntime as ort
sess = ort.InferenceSession(sys.argv[1])
z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
y = sess.run(None, {sess.get_inputs()[0].name: z})[0]
assert y.shape == (5, 28, 28, 1) and 0 <= y.min() and y.max() <= 1, (y.shape, y.min(), y.max())
EOF
else
  echo "skipped: ONNX Runtime check of the exported generator (no onnxruntime)"
fi

# SIGKILL + resume is bit-exact.
EP=(--set train.epochs=60)
CK=(--set checkpoint.every_steps=7 --set checkpoint.keep_last=2)
"$WORKER" "${ARGS[@]}" "${EP[@]}" --save-params "$TMP/ref.bin" >"$TMP/ref.log" 2>&1 ||
  fail "reference run: $(cat "$TMP/ref.log")"
K="$TMP/k"
"$WORKER" "${ARGS[@]}" "${EP[@]}" "${CK[@]}" --set checkpoint.dir="$K" >"$TMP/killed.log" 2>&1 &
pid=$!
wait_for_step "$K" 7 200 120 || fail "no checkpoint within 120 s: $(cat "$TMP/killed.log")"
random_delay 0 20
kill -KILL $pid
wait $pid
status=$?
[ $status -eq 137 ] && pass || fail "the run ended with $status before it could be killed"
echo "killed at $(cat "$K/latest")"
ls "$K/$(cat "$K/latest")" | tr '\n' ' '
echo
"$WORKER" "${ARGS[@]}" "${EP[@]}" "${CK[@]}" --set checkpoint.dir="$K" --resume \
  --set train.model_dir="$TMP/mk" --save-params "$TMP/k.bin" >"$TMP/k.log" 2>&1 ||
  fail "resume after SIGKILL: $(cat "$TMP/k.log")"
grep -q "^Resumed from $K/ckpt-" "$TMP/k.log" && pass || fail "no 'Resumed from': $(cat "$TMP/k.log")"
expect_same "GAN: SIGKILL + resume vs uninterrupted" "$TMP/ref.bin" "$TMP/k.bin"
# Both models are in the dump: G has 8*32+32 + 32*784+784 parameters, D 784*16+16 + 17.
[ "$(stat -c %s "$TMP/ref.bin")" -eq $(((288 + 25872 + 12560 + 17) * 4)) ] && pass ||
  fail "the parameter dump is not G's and D's parameters"
# A resume with nothing left to train still writes the models, the same ones.
"$WORKER" "${ARGS[@]}" "${EP[@]}" "${CK[@]}" --set checkpoint.dir="$K" --resume \
  --set train.model_dir="$TMP/mk2" >"$TMP/k2.log" 2>&1 || fail "resume at the end: $(cat "$TMP/k2.log")"
grep -qF "Model saved to $TMP/mk2 (weights: generator, final, epoch 60)" "$TMP/k2.log" &&
  [ -f "$TMP/mk2-discriminator/manifest.json" ] && pass ||
  fail "no models after a resume at the end: $(cat "$TMP/k2.log")"
"$WORKER" generate --model "$TMP/mk" -o "$TMP/mk.npy" --count 4 -q &&
  "$WORKER" generate --model "$TMP/mk2" -o "$TMP/mk2.npy" --count 4 -q &&
  cmp -s "$TMP/mk.npy" "$TMP/mk2.npy" && pass ||
  fail "the models of the run and of its resume at the end differ"

# SIGTERM: a checkpoint, and the generator of the last step as a saved model.
T="$TMP/t"
"$WORKER" "${ARGS[@]}" --set train.epochs=100000 "${CK[@]}" --set checkpoint.dir="$T" \
  --set train.model_dir="$TMP/mt" >"$TMP/term.log" 2>&1 &
pid=$!
wait_for_step "$T" 7 50 120 || fail "no checkpoint within 120 s: $(cat "$TMP/term.log")"
kill -TERM $pid
wait $pid
status=$?
[ $status -eq 0 ] &&
  grep -qE "^Model saved to $TMP/mt \(weights: generator, step [0-9]+ \(stopped by a signal\)\)" \
    "$TMP/term.log" && "$WORKER" generate --model "$TMP/mt" -o "$TMP/mt.npy" --count 2 -q && pass ||
  fail "SIGTERM: exit $status, no usable generator: $(tail -4 "$TMP/term.log")"

# 2 ranks x batch 8 = 1 rank x batch 16 (no dropout: the ranks' noise streams differ).
# shellcheck disable=SC2046
M=(--config "$TMP/gan-nodrop.ini" $(data_args "$G") --no-progress --set train.epochs=1)
"$WORKER" "${M[@]}" --save-params "$TMP/one.bin" >"$TMP/one.log" 2>&1 ||
  fail "1 rank: $(cat "$TMP/one.log")"
"${MPIEXEC[@]}" -np 2 "$WORKER" "${M[@]}" --set train.batch_size=8 --save-params "$TMP/two.bin" \
  >"$TMP/two.log" 2>&1 || fail "2 ranks: $(cat "$TMP/two.log")"
grep -q "a GAN run, 2 rank(s)" "$TMP/two.log" && pass || fail "not 2 ranks: $(cat "$TMP/two.log")"
# Sums over 16 samples in another order: float rounding, grown by 40 Adam steps
# (measured: 3.4e-8 at most, parameters up to 0.55).
if out=$("$CMP_PARAMS" "$TMP/one.bin" "$TMP/two.bin" 1e-6 2>&1); then pass; else
  fail "2 ranks vs 1 rank with twice the batch: $out"; fi
echo "2 ranks vs 1: $out"
# The tolerance is tight enough to see a real difference: another seed is far off.
"$WORKER" "${M[@]}" --set train.seed=4 --save-params "$TMP/other.bin" >/dev/null 2>&1
"$CMP_PARAMS" "$TMP/one.bin" "$TMP/other.bin" 1e-6 >/dev/null 2>&1 && fail "another seed within the tolerance" || pass

# The DCGAN example itself on a subset of Fashion-MNIST (3,000 images, 2 epochs, 94
# steps): 256 samples of its saved generator move from the untrained generator's
# statistics toward the data's. Measured: untrained, mean pixel 0.503 and a mean
# per-pixel std across samples of 0.0075; trained (seeds 1, 2, 3) 0.374 / 0.359 / 0.401
# and 0.040 / 0.040 / 0.038; the data 0.293 and 0.275. Bars: mean within 0.15 of the
# data's, std above 0.02 (the untrained generator fails both).
"$WORKER" --config "$SRC/examples/fmnist-dcgan.ini" --no-progress -q --set train.threads=1 \
  --set tensorboard.logdir="$TMP/dcgan" --set data.train_limit=3000 --set train.epochs=2 \
  >"$TMP/dcgan.log" 2>&1 || fail "fmnist-dcgan on a subset: $(tail -5 "$TMP/dcgan.log")"
"$WORKER" generate --model "$TMP"/dcgan/*/model -o "$TMP/dcgan.npy" --count 256 --seed 5 -q ||
  fail "generate from the DCGAN example's model"
if out=$("$PY" - "$TMP/dcgan.npy" <<'PY' 2>&1
import gzip, sys
import numpy as np
s = np.load(sys.argv[1]).reshape(256, -1)
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    d = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 784)[:256] / 255.0
mean, std = float(s.mean()), float(s.std(axis=0).mean())
print(f"fmnist-dcgan on 3,000 images, 2 epochs: samples' mean pixel {mean:.3f} (data "
      f"{d.mean():.3f}), per-pixel std across samples {std:.4f} (data {d.std(axis=0).mean():.3f})")
sys.exit(0 if abs(mean - d.mean()) < 0.15 and std > 0.02 else 1)
PY
); then
  echo "$out"
  pass
else
  fail "the DCGAN example's samples after a short run: $out"
fi
finish
