# Augmentation through dtrain-worker (issue 15): [augment] with flip, crop_padding and
# brightness on the first 400 Fashion-MNIST images (IDX, 28x28x1, scaled 1/255).
# Every draw comes from (train.seed, epoch, sample), so:
#  - two identical runs end with bit-identical parameters;
#  - data.threads = 0 (the training thread augments), 1 and 2 give identical parameters
#    (a draw taken from a shared generator, or per thread, would differ with the
#    threads' interleaving);
#  - a run without [augment] ends with other parameters (the augmentation is applied);
#  - a run killed with SIGKILL in the middle of an epoch and resumed from its last
#    checkpoint (taken in the middle of an epoch too) ends bit-identical to the
#    uninterrupted run: the resumed loader draws what the original would have. The kill
#    is aimed with the DT_TEST_STALL_* hook (the training thread stops at step 35, after
#    the checkpoint of step 30, while the loader threads may be augmenting the next
#    batches), so it lands mid-run however fast or loaded the machine is.
source "$(dirname "$0")/lib.sh"

D="$TMP/data"
make_subset "$D" 400
cat >"$TMP/model.ini" <<'EOF'
[model]
loss = sparse_categorical_crossentropy
[layer.1]
type = dense
units = 32
activation = relu
[layer.2]
type = dropout
rate = 0.2
[layer.3]
type = dense
units = 10
[optimizer]
type = adam
[train]
epochs = 3
batch_size = 16
lr = 0.003
seed = 11
[tensorboard]
enabled = false
[augment]
flip = horizontal
crop_padding = 2
brightness = 0.2
EOF
# 360 training samples (validation_split 0.1): 22 steps per epoch, 66 in all.
# shellcheck disable=SC2046,SC2207
args=(--config "$TMP/model.ini" $(data_args "$D") --no-progress)

run() { # NAME ARGS...
  local name=$1
  shift
  if "$WORKER" "${args[@]}" --save-params "$TMP/$name.bin" "$@" >"$TMP/$name.log" 2>&1; then pass; else
    fail "$name: exit status $?: $(cat "$TMP/$name.log")"
  fi
}
same() { # WHAT A B
  local out
  if out=$("$BUILD/tests/cmp_params" "$TMP/$2.bin" "$TMP/$3.bin" 0 2>&1); then pass; else
    fail "$1: parameters differ: $out"
  fi
}

run aug1
grep '^Epoch\|^Test' "$TMP/aug1.log"
run aug1b
same "two identical runs" aug1 aug1b
run aug0 --set data.threads=0
same "data.threads = 0 vs 1" aug1 aug0
run aug2 --set data.threads=2
same "data.threads = 2 vs 1" aug1 aug2
run plain --set augment.flip=none --set augment.crop_padding=0 --set augment.brightness=0
"$BUILD/tests/cmp_params" "$TMP/aug1.bin" "$TMP/plain.bin" 0 >/dev/null 2>&1 &&
  fail "a run without [augment] ends with the same parameters as one with it" || pass

# SIGKILL in the middle of epoch 2, then --resume.
K="$TMP/ck"
ck=(--set checkpoint.dir="$K" --set checkpoint.every_steps=10 --set data.threads=2)
DT_TEST_STALL_RANK=0 DT_TEST_STALL_AT_STEP=35 "$WORKER" "${args[@]}" "${ck[@]}" >"$TMP/killed.log" 2>&1 &
pid=$!
if wait_log "$TMP/killed.log" "stops answering at step 35" 120; then pass; else
  fail "the run did not reach step 35: $(cat "$TMP/killed.log")"
fi
kill -KILL $pid
{ wait $pid; } 2>/dev/null
status=$?
[ $status -eq 137 ] && pass || fail "the run ended with $status before it could be killed: $(cat "$TMP/killed.log")"
[ "$(cat "$K/latest")" = ckpt-0000000030 ] && pass || fail "latest is $(cat "$K/latest"), expected ckpt-0000000030"
run resumed "${ck[@]}" --resume
grep -q "^Resumed from $K/ckpt-0000000030" "$TMP/resumed.log" && pass ||
  fail "not resumed from step 30: $(cat "$TMP/resumed.log")"
grep -q "^Epoch 2/3 - 14 of 22 steps" "$TMP/resumed.log" && pass ||
  fail "the resumed run did not start in the middle of epoch 2: $(cat "$TMP/resumed.log")"
same "SIGKILL + resume vs uninterrupted" aug1 resumed
finish
