#!/usr/bin/env bash
# The VAE (issue 17): a short run of examples/fmnist-vae.ini on 400 samples reports
# reconstruction_loss and kl_loss whose sum is the loss, reaches a test negative ELBO
# below 330 nats per image (an untrained decoder starts near 543 = 784 ln 2), and is
# bit-identical run to run; TensorBoard gets the epoch_reconstruction_loss and
# epoch_kl_loss scalars and the "samples" and "reconstructions" images; generate writes
# (count, 28, 28, 1) float32 values in [0, 1], the same for the same seed and others for
# another; bad use of generate exits with the status and a message naming what.
source "$(dirname "$0")/lib.sh" "$1" "$2"
require_python "numpy, tensorboard"
make_subset "$TMP/d" 400
cd "$TMP" || exit 1
read -ra DATA <<<"$(data_args "$TMP/d")"
run() {
  "$WORKER" --config "$SRC/examples/fmnist-vae.ini" "${DATA[@]}" --set train.epochs=3 \
    --set train.batch_size=32 --set tensorboard.logdir="$TMP/runs" --no-progress "$@"
}
run --set tensorboard.run=a --save-params "$TMP/a.bin" >"$TMP/a.log" 2>&1 ||
  fail "training failed: $(cat "$TMP/a.log")"
run --set tensorboard.run=b --set tensorboard.enabled=false --save-params "$TMP/b.bin" \
  >"$TMP/b.log" 2>&1 ||
  fail "second run failed: $(cat "$TMP/b.log")"

# Every epoch line: loss = reconstruction_loss + kl_loss (to the printed digits).
n=0
while read -r loss rec kl; do
  n=$((n + 1))
  awk -v l="$loss" -v r="$rec" -v k="$kl" 'BEGIN { d = l - r - k; exit !(d < 2e-4 && d > -2e-4) }' &&
    pass || fail "epoch $n: loss $loss != reconstruction $rec + kl $kl"
done < <(sed -nE 's/^Epoch .* loss: ([0-9.]+) - reconstruction_loss: ([0-9.]+) - kl_loss: ([0-9.]+) .*/\1 \2 \3/p' "$TMP/a.log")
[ "$n" -eq 3 ] && pass || fail "expected 3 epoch lines with both terms, got $n: $(grep ^Epoch "$TMP/a.log")"

# The test line's negative ELBO, below the bar.
elbo=$(sed -nE 's/^Test: .*negative ELBO: ([0-9.]+) nats per sample.*/\1/p' "$TMP/a.log")
[ -n "$elbo" ] && awk -v e="$elbo" 'BEGIN { exit !(e < 330) }' && pass ||
  fail "test negative ELBO '$elbo' not below 330: $(grep ^Test: "$TMP/a.log")"

# Bit-identical run to run, TensorBoard on or off (evaluation and the pictures draw no
# training noise).
[ -s "$TMP/a.bin" ] && cmp -s "$TMP/a.bin" "$TMP/b.bin" && pass ||
  fail "two runs of the same config gave different weights"
[ "$(grep ^Test: "$TMP/a.log")" = "$(grep ^Test: "$TMP/b.log")" ] && pass ||
  fail "two runs gave different test lines"

# TensorBoard: the two terms and the two pictures, read by the real TensorBoard.
out=$("$PY" - "$TMP/runs/a" <<'EOF' 2>&1
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
def acc(d):
    a = EventAccumulator(d, size_guidance={"images": 0, "scalars": 0}); a.Reload(); return a
tr, va = acc(sys.argv[1] + "/train"), acc(sys.argv[1] + "/validation")
for a, tag in ((tr, "epoch_reconstruction_loss"), (tr, "epoch_kl_loss"),
               (va, "epoch_reconstruction_loss"), (va, "epoch_kl_loss")):
    s = a.Scalars(tag)
    assert len(s) == 3, (tag, len(s))
    assert all(e.value > 0 for e in s), (tag, s)
imgs = tr.Images("samples")
assert len(imgs) == 3 and imgs[-1].width == 8 * 29 + 1 and imgs[-1].height == 4 * 29 + 1, imgs[-1]
assert len(va.Images("reconstructions")) == 3
print("ok")
EOF
)
[ "$out" = ok ] && pass || fail "TensorBoard: $out"

# generate: shape, range, the seed.
M="$TMP/runs/a/model"
"$WORKER" generate --model "$M" --count 50 -o "$TMP/s1.npy" >"$TMP/g.log" 2>&1 || fail "generate: $(cat "$TMP/g.log")"
grep -qF "Generated 50 samples of shape (28, 28, 1)" "$TMP/g.log" && pass || fail "generate's summary: $(cat "$TMP/g.log")"
"$WORKER" generate --model "$M" --count 50 -o "$TMP/s2.npy" -q --batch-size 7 || fail "generate 2"
"$WORKER" generate --model "$M" --count 50 -o "$TMP/s3.npy" -q --seed 2 || fail "generate 3"
out=$("$PY" - "$TMP" <<'EOF' 2>&1
import sys
import numpy as np
d = sys.argv[1]
a, b, c = (np.load(f"{d}/s{i}.npy") for i in (1, 2, 3))
assert a.shape == (50, 28, 28, 1) and a.dtype == np.float32, (a.shape, a.dtype)
assert a.min() >= 0.0 and a.max() <= 1.0 and a.std() > 0.05, (a.min(), a.max(), a.std())
# The same z (drawn in order whatever the batch); GEMMs of another height may round
# differently in the last bits.
assert np.allclose(a, b, rtol=0, atol=1e-5), "the same seed gave other samples (batch size 7)"
assert not np.array_equal(a, c), "another seed gave the same samples"
assert np.abs(a[0] - a[1]).max() > 0.05, "samples are one image repeated"
print("ok")
EOF
)
[ "$out" = ok ] && pass || fail "generated samples: $out"

# Bad use.
expect_exit 2 "--model DIR and --output FILE.npy are required" "no output" -- \
  "$WORKER" generate --model "$M"
expect_exit 2 "expected a .npy file" "csv output" -- "$WORKER" generate --model "$M" -o x.csv
expect_exit 2 "the model has no layer 'nope'" "unknown layer" -- \
  "$WORKER" generate --model "$M" -o x.npy --layer nope
expect_exit 2 "layer 'z_log_var' takes 'h', which does not come from layer 'z_mean'" \
  "layer with a skip around it" -- "$WORKER" generate --model "$M" -o x.npy --layer z_mean
expect_exit 2 "--count '0': expected a whole number >= 1" "count 0" -- \
  "$WORKER" generate --model "$M" -o x.npy --count 0
expect_exit 2 "$TMP/none" "not a model" -- "$WORKER" generate --model "$TMP/none" -o x.npy
[ ! -e x.npy ] && pass || fail "a failed generate left x.npy"
finish
