# Each rank reads only its own shards (issue 15), on a NumPy dataset (the first 600
# Fashion-MNIST training images as a uint8 .npy, int64 labels; validation_split 0.1
# leaves 540 training samples):
#  - mpirun -np 2 with batch 16 and --verbose: every rank says "Data: rank R read N
#    training samples" with N = steps x batch x epochs = 16 x 16 x 2 = 512 (16 global
#    steps of 32 per epoch), not the 1,080 a rank reading the whole set would say, nor
#    the 1,024 of the whole global batches;
#  - one process with batch 32 reads 16 x 32 x 2 = 1,024;
#  - and the two runs end with the same parameters within 1e-5 (the tolerance of
#    test_mpi_equivalence.sh: only the rounding of the gradient sums differs, one GEMM
#    over 32 samples vs two over 16 and an average). Ranks reading the same shard, or
#    shards that do not make up the global batch, give parameters that differ by far
#    more (the control: one process with batch 16, what a rank alone would compute).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"

require_python "numpy"
D="$TMP/data"
make_subset "$D" 600
"$PY" - "$D" <<'EOF' && pass || fail "writing the .npy files"
import sys
import numpy as np
d = sys.argv[1]
x = np.fromfile(f"{d}/train-images", np.uint8, offset=16).reshape(-1, 28, 28, 1)
y = np.fromfile(f"{d}/train-labels", np.uint8, offset=8).astype(np.int64)
np.save(f"{d}/x.npy", x)
np.save(f"{d}/y.npy", y)
EOF

cat >"$TMP/model.ini" <<EOF
[data]
format = numpy
dir = $D
train_x = x.npy
train_y = y.npy
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 32
activation = relu
[layer.2]
type = dense
units = 10
[optimizer]
type = sgd
momentum = 0.9
[train]
epochs = 2
lr = 0.05
seed = 5
[tensorboard]
enabled = false
EOF
args=(--config "$TMP/model.ini" --no-progress --verbose)

"${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" --set train.batch_size=16 --save-params "$TMP/two.bin" \
  >"$TMP/two.log" 2>&1 && pass || fail "2 ranks: exit status $?: $(cat "$TMP/two.log")"
"$WORKER" "${args[@]}" --set train.batch_size=32 --save-params "$TMP/one.bin" >"$TMP/one.log" 2>&1 &&
  pass || fail "1 process: exit status $?: $(cat "$TMP/one.log")"
"$WORKER" "${args[@]}" --set train.batch_size=16 --save-params "$TMP/half.bin" >"$TMP/half.log" 2>&1 &&
  pass || fail "1 process, batch 16: exit status $?: $(cat "$TMP/half.log")"
grep -h 'Data: rank' "$TMP/two.log" "$TMP/one.log"

grep -q "^Data: numpy, 540 training, 60 validation (validation_split tail)" "$TMP/two.log" && pass ||
  fail "2 ranks: not the NumPy set with 540 training samples: $(grep '^Data' "$TMP/two.log")"
for r in 0 1; do
  # Rank 0 prints plainly; the other ranks' lines (--verbose) start with "[rank R] ".
  n=$(grep -cE "^(\[rank $r\] )?Data: rank $r read " "$TMP/two.log")
  [ "$n" -eq 1 ] && pass || fail "rank $r printed $n read lines: $(cat "$TMP/two.log")"
  grep -qxE "(\[rank $r\] )?Data: rank $r read 512 training samples in this run \(its training split has 540\); waiting for batches took .*" \
    "$TMP/two.log" && pass || fail "rank $r did not read exactly 512 samples: $(grep "Data: rank $r" "$TMP/two.log")"
done
grep -qxE "Data: rank 0 read 1024 training samples in this run \(its training split has 540\); waiting for batches took .*" \
  "$TMP/one.log" && pass || fail "1 process did not read 1024 samples: $(grep '^Data: rank' "$TMP/one.log")"

if out=$("$CMP_PARAMS" "$TMP/one.bin" "$TMP/two.bin" 1e-5 2>&1); then pass; else
  fail "2 ranks x 16 vs 1 process x 32: $out"
fi
echo "2 ranks x 16 vs 1 process x 32: $out"
# The control: one rank's batches alone are another training.
if out=$("$CMP_PARAMS" "$TMP/half.bin" "$TMP/two.bin" 1e-3 2>&1); then
  fail "2 ranks x 16 equal 1 process x 16 within 1e-3, the comparison cannot tell shards apart: $out"
else
  pass
fi
finish
