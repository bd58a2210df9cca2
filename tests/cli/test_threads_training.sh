# train.threads (issue 16): the compute threads of one process.
#  - A short CNN run (convolutions split by samples, pools, element-wise passes, the
#    optimizer over ranges on the pool) and an MLP run give bit-identical parameters
#    run to run at 2 threads, and at 3 (more threads than this machine may have);
#  - the worker says how many threads it uses: the set value, and for train.threads
#    unset or 0 (automatic) every online core of a process running alone;
#  - a negative count is refused with the config's file and line.
# Under a launcher the automatic count is 1 per rank (src/worker/options.c); the MPI
# tests run their ranks that way.
source "$(dirname "$0")/lib.sh"

D="$TMP/data"
make_subset "$D" 320
# shellcheck disable=SC2046
common=($(data_args "$D") --set train.epochs=1 --no-progress)

# run NAME CONFIG ARGS...: trains and saves the parameters as $TMP/NAME.bin.
run() {
  local name=$1 config=$2
  shift 2
  "$WORKER" --config "$SRC/examples/$config" "${common[@]}" --save-params "$TMP/$name.bin" "$@" \
    >"$TMP/$name.log" 2>&1 || fail "$name: exit status $?: $(tail -3 "$TMP/$name.log")"
}

# same NAME A B: the runs A and B saved the same parameters, bit for bit.
same() {
  if [ ! -s "$TMP/$2.bin" ] || [ ! -s "$TMP/$3.bin" ]; then
    fail "$1: no parameters saved"
  elif cmp -s "$TMP/$2.bin" "$TMP/$3.bin"; then
    pass
  else
    fail "$1: parameters differ"
  fi
}

cnn=(--set layer.1.filters=16 --set layer.3.filters=32 --set layer.6.units=64
  --set train.batch_size=32)
for t in 2 3; do
  run "cnn$t-a" fmnist-cnn.ini "${cnn[@]}" --set train.threads=$t
  run "cnn$t-b" fmnist-cnn.ini "${cnn[@]}" --set train.threads=$t
  same "CNN at $t threads, run to run" "cnn$t-a" "cnn$t-b"
  grep -q "; $t compute threads; " "$TMP/cnn$t-a.log" && pass ||
    fail "the worker does not say it uses $t threads: $(grep '^dtrain-worker' "$TMP/cnn$t-a.log")"
done
run mlp2-a fmnist-mlp.ini --set train.threads=2 --set train.batch_size=256
run mlp2-b fmnist-mlp.ini --set train.threads=2 --set train.batch_size=256
same "MLP at 2 threads, run to run" mlp2-a mlp2-b

# Automatic: train.threads = 0, or no threads key at all.
cores=$(getconf _NPROCESSORS_ONLN)
want="; $cores compute thread"
run auto0 fmnist-mlp.ini --set train.threads=0
grep -q -- "$want" "$TMP/auto0.log" && pass ||
  fail "train.threads = 0: expected $cores threads: $(grep '^dtrain-worker' "$TMP/auto0.log")"
grep -v '^threads *=' "$SRC/examples/fmnist-mlp.ini" >"$TMP/unset.ini"
"$WORKER" --config "$TMP/unset.ini" "${common[@]}" >"$TMP/unset.log" 2>&1 ||
  fail "train.threads unset: exit status $?: $(tail -3 "$TMP/unset.log")"
grep -q -- "$want" "$TMP/unset.log" && pass ||
  fail "train.threads unset: expected $cores threads: $(grep '^dtrain-worker' "$TMP/unset.log")"

line=$(grep -n '^threads *=' "$SRC/examples/fmnist-mlp.ini" | cut -d: -f1)
sed 's/^threads *=.*/threads = -1/' "$SRC/examples/fmnist-mlp.ini" >"$TMP/bad.ini"
expect_exit 2 "$TMP/bad.ini:$line: [train] threads = -1" "train.threads = -1" -- "$WORKER" --config "$TMP/bad.ini" \
  "${common[@]}"

finish
