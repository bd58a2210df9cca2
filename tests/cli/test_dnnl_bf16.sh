# train.conv and train.precision (issue 16): oneDNN convolutions and bf16 in training.
#  - A short CNN run (1,000 Fashion-MNIST samples, 2 epochs) with train.conv = onednn
#    reaches the same test-accuracy bar (0.65 on 1,000 test samples) as with im2col, and
#    both are bit-identical run to run at 2 threads;
#  - with train.precision = bf16 the same run reaches the same bar, is bit-identical run
#    to run, and differs from fp32 (the bf16 path is really taken); skipped, with the
#    reason printed, on a CPU without bf16;
#  - bf16 on a CPU without it (the DT_TEST_NO_BF16 switch pretends so) and bf16 with
#    train.conv = im2col are config errors (exit 2) naming the file and line of
#    train.precision and saying why; an unknown train.conv value is refused the same way.
source "$(dirname "$0")/lib.sh"

D="$TMP/data"
make_subset "$D" 1000
# shellcheck disable=SC2046
common=($(data_args "$D") --set train.epochs=2 --no-progress --set layer.1.filters=8
  --set layer.3.filters=16 --set layer.6.units=32 --set train.batch_size=32
)

# run NAME ARGS...: trains the CNN and saves the parameters as $TMP/NAME.bin.
run() {
  local name=$1
  shift
  "$WORKER" --config "$SRC/examples/fmnist-cnn.ini" "${common[@]}" --save-params "$TMP/$name.bin" \
    "$@" >"$TMP/$name.log" 2>&1 || fail "$name: exit status $?: $(tail -3 "$TMP/$name.log")"
}
same() {
  if [ -s "$TMP/$2.bin" ] && cmp -s "$TMP/$2.bin" "$TMP/$3.bin"; then pass; else fail "$1: parameters differ"; fi
}
# accuracy NAME: the test accuracy the run printed.
accuracy() { sed -nE 's/^Test: .* accuracy: ([0-9.]+).*/\1/p' "$TMP/$1.log"; }
above() {
  local acc
  acc=$(accuracy "$2")
  echo "$1: test accuracy $acc"
  if [ -n "$acc" ] && awk -v a="$acc" -v m="$3" 'BEGIN { exit !(a >= m) }'; then pass; else
    fail "$1: test accuracy '${acc}' below $3"; fi
}

run im2col --set train.conv=im2col --set train.threads=2
run onednn-a --set train.conv=onednn --set train.threads=2
run onednn-b --set train.conv=onednn --set train.threads=2
above "im2col" im2col 0.65
above "onednn" onednn-a 0.65
same "onednn fp32 at 2 threads, run to run" onednn-a onednn-b

if grep -qE '\b(avx512_bf16|amx_bf16)\b' /proc/cpuinfo; then
  run bf16-a --set train.precision=bf16 --set train.threads=2
  run bf16-b --set train.precision=bf16 --set train.threads=2
  above "bf16" bf16-a 0.65
  same "bf16 at 2 threads, run to run" bf16-a bf16-b
  if cmp -s "$TMP/bf16-a.bin" "$TMP/onednn-a.bin"; then fail "bf16 gave the fp32 parameters"; else pass; fi
else
  echo "SKIP the bf16 training runs: this CPU has neither avx512_bf16 nor amx_bf16"
fi

cfg="$SRC/examples/fmnist-cnn.ini"
printf '\n[train]\nprecision = bf16\n' | cat "$cfg" - >"$TMP/bf16.ini"
line=$(grep -n '^precision = bf16' "$TMP/bf16.ini" | cut -d: -f1)
expect_exit 2 "$TMP/bf16.ini:$line: [train] precision = bf16" "bf16 without bf16 (where)" -- \
  env DT_TEST_NO_BF16=1 "$WORKER" --config "$TMP/bf16.ini" "${common[@]}"
expect_exit 2 "bf16 needs a CPU with bfloat16 arithmetic" "bf16 without bf16 (why)" -- \
  env DT_TEST_NO_BF16=1 "$WORKER" --config "$TMP/bf16.ini" "${common[@]}"
if grep -qE '\b(avx512_bf16|amx_bf16)\b' /proc/cpuinfo; then
  expect_exit 2 "set train.conv = auto or onednn" "bf16 with im2col" -- \
    "$WORKER" --config "$TMP/bf16.ini" "${common[@]}" --set train.conv=im2col
fi
expect_exit 2 "conv" "unknown train.conv" -- "$WORKER" --config "$cfg" "${common[@]}" --set train.conv=winograd

finish
