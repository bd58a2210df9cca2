# Checkpoints that are intact as files (every checksum fits) but hold numbers no run
# can reach, as a hand edit or a bug elsewhere could leave them (issue 14, defect 10):
# --resume refuses them with a message naming the file and the value, and does not
# train from a wrapped-around position. tests/tools/ckpt_edit re-seals the edited copy.
source "$(dirname "$0")/lib.sh"
EDIT="$BUILD/tests/ckpt_edit"
D="$TMP/data"
make_subset "$D" 700
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --no-progress
  --set tensorboard.enabled=false --set train.epochs=2 --set checkpoint.dir="$TMP/ck")
"$WORKER" "${args[@]}" --set train.epochs=1 >"$TMP/first.log" 2>&1 ||
  fail "first run: exit $?: $(cat "$TMP/first.log")"
good="$TMP/ck/$(cat "$TMP/ck/latest")"
# Edits start from a copy outside the root, which a misbehaving resume cannot prune.
src="$TMP/original"
cp -r "$good" "$src"

# edited NAME FROM TO NEEDLE: a copy of the checkpoint with FROM replaced by TO in
# trainer.json is the newest; --resume must exit 1 naming NEEDLE.
edited() {
  rm -rf "$TMP/ck/ckpt-9999999999"
  if ! out=$("$EDIT" "$src" "$TMP/ck" ckpt-9999999999 trainer.json "$2" "$3" 2>&1); then
    fail "$1: ckpt_edit: $out"
    return
  fi
  # A run resumed from a wrapped-around position may never end: killed after 120 s.
  expect_exit 1 "$4" "$1" -- timeout -s KILL 120 "$WORKER" "${args[@]}" --resume
}
edited "epoch 1e19" '"epoch": 1,' '"epoch": 1e19,' '"epoch" = 1e+19 is outside [0, 1099511627776]'
edited "negative step" '"step": ' '"step": -' '"step" = -'
edited "world 0" '"world": 1,' '"world": 0,' '"world" = 0 is outside [1, 16777216]'
# The untouched checkpoint still resumes (so the failures above are the edits').
rm -rf "$TMP/ck"
mkdir -p "$TMP/ck"
cp -r "$src" "$good"
printf '%s\n' "${good##*/}" >"$TMP/ck/latest"
out=$("$WORKER" "${args[@]}" --resume 2>&1) && grep -q "^Resumed from $good" <<<"$out" && pass ||
  fail "the original checkpoint does not resume: $out"
finish
