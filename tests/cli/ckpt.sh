# Shared setup for the checkpoint script tests (tests/cli/test_*ckpt*.sh), sourced
# after lib.sh: a small model that exercises everything a resume must restore
# (dropout noise from the rank's PRNG, Adam's two moments and step count, a cosine
# schedule, ReduceLROnPlateau's scale, EarlyStopping's wait and best weights), a
# data subset, and helpers to kill a run part-way.
D="$TMP/data"
make_subset "$D" 1500
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
[schedule]
type = cosine
min_lr = 0.0001
[train]
lr = 0.003
batch_size = 16
seed = 7
[tensorboard]
enabled = false
[early_stopping]
enabled = true
patience = 6
restore_best_weights = true
[reduce_lr]
enabled = true
patience = 2
factor = 0.5
EOF
# shellcheck disable=SC2046
CKPT_ARGS=(--config "$TMP/model.ini" $(data_args "$D") --no-progress)

# wait_for_file FILE SECONDS: true once FILE exists.
wait_for_file() {
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    [ -e "$1" ] && return 0
    sleep 0.05
  done
  return 1
}

# wait_for_step ROOT LO HI SECONDS: picks a random step in [LO, HI] and waits until
# the checkpoint `latest` names is at least that step (true), the run has ended, or
# SECONDS pass (false). Aiming by steps, not by time, keeps the kill inside the run
# however loaded the machine is.
wait_for_step() {
  local target=$(($2 + RANDOM % ($3 - $2 + 1))) i step
  for ((i = 0; i < $4 * 50; i++)); do
    step=$(sed -nE 's/^ckpt-0*([0-9]+)$/\1/p' "$1/latest" 2>/dev/null)
    [ -n "$step" ] && [ "$step" -ge "$target" ] && return 0
    sleep 0.02
  done
  return 1
}

# random_delay LO_MS HI_MS: sleeps a random time in [LO, HI] milliseconds.
random_delay() {
  sleep "$(awk -v lo="$1" -v hi="$2" -v r="$RANDOM" 'BEGIN { printf "%.3f", (lo + (hi - lo) * r / 32767) / 1000 }')"
}

# latest_reason ROOT: the "reason" in the manifest of the checkpoint `latest` names.
latest_reason() {
  sed -nE 's/.*"reason": "([^"]*)".*/\1/p' "$1/$(cat "$1/latest")/manifest.json" | head -1
}

# expect_same NAME A B: two --save-params dumps are bit-identical.
expect_same() {
  local out
  if out=$("$BUILD/tests/cmp_params" "$2" "$3" 0 2>&1); then
    pass
  else
    fail "$1: parameters differ: $out"
  fi
}
