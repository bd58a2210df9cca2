# --resume reads the model and optimizer files once, straight into the model's and the
# optimizer's buffers, and checks their CRC32C as the bytes arrive (issue 16); only a
# whole checkpoint that verifies may be left loaded. Here the damage is in the last
# read chunk of a file, found only after every tensor was written over:
#  - the model file of the newest checkpoint: reported, the one before it is loaded
#    over the damaged values, and the resumed parameters (no step left to train) are
#    exactly those the run had when it wrote that checkpoint;
#  - the optimizer file (the model file before it is intact, so the damaged epoch's
#    parameters and moments were both loaded): the run falls back, trains the epoch
#    again and ends bit-identical to the run that wrote the damaged checkpoint;
#  - the same with 2 ranks, each of which reads the damaged file;
#  - a checkpoint directory named directly has nothing to fall back to: an error.
# The model file is 1.6 MB, more than one read chunk (1 MB).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mpi.sh"
D="$TMP/data"
make_subset "$D" 600
cat >"$TMP/model.ini" <<'INI'
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 512
activation = relu
[layer.2]
type = dense
units = 10
[optimizer]
type = adam
[train]
lr = 0.001
batch_size = 32
seed = 3
[tensorboard]
enabled = false
INI
# shellcheck disable=SC2046
args=(--config "$TMP/model.ini" $(data_args "$D") --no-progress --set checkpoint.keep_last=0)

# flip_last FILE: flips the last byte of FILE.
flip_last() {
  local size
  size=$(stat -c %s "$1")
  printf '\x5a' | dd of="$1" bs=1 seek=$((size - 1)) conv=notrunc status=none
}

# One epoch (its checkpoint: E1), then a second one resumed from it (E2).
CK="$TMP/ck"
"$WORKER" "${args[@]}" --set train.epochs=1 --set checkpoint.dir="$CK" \
  --save-params "$TMP/e1.bin" >"$TMP/e1.log" 2>&1 || fail "epoch 1: exit $?: $(cat "$TMP/e1.log")"
e1=$(cat "$CK/latest")
"$WORKER" "${args[@]}" --set train.epochs=2 --set checkpoint.dir="$CK" --resume \
  --save-params "$TMP/e2.bin" >"$TMP/e2.log" 2>&1 || fail "epoch 2: exit $?: $(cat "$TMP/e2.log")"
e2=$(cat "$CK/latest")
[ "$e1" != "$e2" ] && [ "$(stat -c %s "$CK/$e2/model.safetensors")" -gt 1100000 ] && pass ||
  fail "expected two checkpoints with a model file over 1 MB: $e1, $e2: $(ls -l "$CK/$e2")"
cp -r "$CK" "$TMP/ck2"
cp -r "$CK" "$TMP/ck3"

# The model file's last byte: the run falls back to E1 and, with train.epochs = 1,
# has nothing left to train: the parameters it saves are the ones loaded.
flip_last "$CK/$e2/model.safetensors"
"$WORKER" "${args[@]}" --set train.epochs=1 --set checkpoint.dir="$CK" --resume \
  --save-params "$TMP/r1.bin" >"$TMP/r1.log" 2>&1 || fail "resume past a damaged model file: exit $?: $(cat "$TMP/r1.log")"
grep -q "checkpoint $e2 (latest) cannot be used: .*$e2/model.safetensors: CRC32C .* (corrupt)" \
  "$TMP/r1.log" && pass || fail "the damaged model file is not reported: $(cat "$TMP/r1.log")"
grep -q "resuming from the older checkpoint $CK/$e1 instead" "$TMP/r1.log" && pass ||
  fail "no fallback to $e1: $(cat "$TMP/r1.log")"
grep -q "^Resumed from $CK/$e1:" "$TMP/r1.log" && pass || fail "not resumed from $e1: $(cat "$TMP/r1.log")"
"$BUILD/tests/cmp_params" "$TMP/e1.bin" "$TMP/r1.bin" 0 >/dev/null 2>&1 && pass ||
  fail "the parameters after the fallback are not E1's: $("$BUILD/tests/cmp_params" "$TMP/e1.bin" "$TMP/r1.bin" 0 2>&1)"
# (The check above can fail: the damaged E2 was loaded first and differs from E1.)
"$BUILD/tests/cmp_params" "$TMP/e1.bin" "$TMP/e2.bin" 0 >/dev/null 2>&1 &&
  fail "E1 and E2 hold the same parameters: the test above proves nothing" || pass

# The optimizer file's last byte: fall back to E1, train epoch 2 again, end as E2.
flip_last "$TMP/ck2/$e2/optimizer.safetensors"
"$WORKER" "${args[@]}" --set train.epochs=2 --set checkpoint.dir="$TMP/ck2" --resume \
  --save-params "$TMP/r2.bin" >"$TMP/r2.log" 2>&1 || fail "resume past a damaged optimizer file: exit $?: $(cat "$TMP/r2.log")"
grep -q "checkpoint $e2 (latest) cannot be used: .*optimizer.safetensors: CRC32C .* (corrupt)" \
  "$TMP/r2.log" && pass || fail "the damaged optimizer file is not reported: $(cat "$TMP/r2.log")"
grep -q "^Resumed from $TMP/ck2/$e1:" "$TMP/r2.log" && pass || fail "not resumed from $e1: $(cat "$TMP/r2.log")"
"$BUILD/tests/cmp_params" "$TMP/e2.bin" "$TMP/r2.bin" 0 >/dev/null 2>&1 && pass ||
  fail "retrained epoch 2 differs: $("$BUILD/tests/cmp_params" "$TMP/e2.bin" "$TMP/r2.bin" 0 2>&1)"

# Two ranks: each reads the damaged model file, both fall back to E1 together.
flip_last "$TMP/ck3/$e2/model.safetensors"
cp -r "$TMP/ck3" "$TMP/ck4"
"${MPIEXEC[@]}" -n 2 "$WORKER" "${args[@]}" --set train.epochs=1 --set checkpoint.dir="$TMP/ck3" \
  --resume --save-params "$TMP/r3.bin" >"$TMP/r3.log" 2>&1 || fail "2 ranks: exit $?: $(cat "$TMP/r3.log")"
grep -q "checkpoint $e2 (latest) cannot be used: .*model.safetensors: CRC32C .* (corrupt)" \
  "$TMP/r3.log" && grep -q "^Resumed from $TMP/ck3/$e1:" "$TMP/r3.log" && pass ||
  fail "2 ranks: no fallback to $e1: $(cat "$TMP/r3.log")"
"$BUILD/tests/cmp_params" "$TMP/e1.bin" "$TMP/r3.bin" 0 >/dev/null 2>&1 && pass ||
  fail "2 ranks: the parameters after the fallback are not E1's"

# The damaged checkpoint named directly: an error naming the file, nothing trained.
expect_exit 1 "$e2/model.safetensors: CRC32C" "a damaged checkpoint named directly" -- \
  "$WORKER" "${args[@]}" --set train.epochs=2 --resume "$TMP/ck4/$e2"
finish
