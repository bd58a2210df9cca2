# --help, --version, --print-config with overrides, and the progress display: a live
# bar on a terminal that fits its width, plain progress lines otherwise; -q.
source "$(dirname "$0")/lib.sh"

out=$("$WORKER" --help) && grep -q "Usage: dtrain-worker --config FILE" <<<"$out" && pass || fail "--help: $out"
out=$("$WORKER" --version) && grep -qE "^dtrain-worker [0-9]+\.[0-9]+\.[0-9]+$" <<<"$out" && pass || fail "--version: $out"

out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set train.lr=0.125 --set layer.2.units=64 --print-config)
grep -qx "lr = 0.125" <<<"$out" && pass || fail "--print-config does not show the override lr: $out"
grep -qx "units = 64" <<<"$out" && pass || fail "--print-config does not show the override units: $out"
# ... and the defaults the run would use, marked (issue 14), as comments: the printed
# text is a config that prints the same again.
grep -qx "# train_limit = 0  (default)" <<<"$out" && grep -qx "# bias_initializer = zeros  (default)" <<<"$out" &&
  pass || fail "--print-config does not show the defaults: $out"
printf '%s\n' "$out" >"$TMP/printed.ini"
again=$("$WORKER" --config "$TMP/printed.ini" --print-config)
[ "$again" = "$out" ] && pass || fail "the printed config prints differently: $(diff <(echo "$out") <(echo "$again"))"

D="$TMP/data"
make_subset "$D" 600
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --set train.epochs=2)

# Not a terminal: one line per epoch, no carriage returns.
out=$("$WORKER" "${args[@]}")
[ "$(grep -c '^Epoch [12]/2 - ' <<<"$out")" -eq 2 ] && pass || fail "expected 2 epoch lines: $out"
grep -q $'\r' <<<"$out" && fail "carriage return in non-terminal output" || pass
grep -qE '^Test: loss: [0-9.]+ - accuracy: [0-9.]+ \(600 samples\)$' <<<"$out" && pass || fail "no test line: $out"
# Training runs with denormals flushed (issue 16); the worker reads its training
# thread's floating-point mode back and says so. The loader's threads: test_loader.
if [ "$(uname -m)" = x86_64 ]; then
  grep -q "; denormals flushed to zero in the training thread$" <<<"$out" && pass ||
    fail "the training thread does not flush denormals: $(grep '^dtrain-worker' <<<"$out")"
fi

# -q (issue 14): nothing but the final result, which --help promises.
out=$("$WORKER" "${args[@]}" -q 2>&1)
[ "$(wc -l <<<"$out")" -eq 1 ] && grep -qE '^Test: loss: [0-9.]+ - accuracy: [0-9.]+ \(600 samples\)$' <<<"$out" &&
  pass || fail "-q: expected the test line alone: '$out'"

# A terminal (a pty from script(1)): the live bar with ETA appears.
if command -v script >/dev/null; then
  out=$(script -qec "$(printf '%q ' "$WORKER" "${args[@]}")" /dev/null)
  grep -q "ETA:" <<<"$out" && pass || fail "no progress bar on a terminal: $out"
  # On an 80- and a 40-column terminal every redraw fits (issue 14: the bar wrapped,
  # leaving a line behind at every redraw). Redraws are separated by carriage returns.
  for cols in 80 40; do
    out=$(script -qec "stty cols $cols; $(printf '%q ' "$WORKER" "${args[@]}")" /dev/null)
    longest=$(tr '\r' '\n' <<<"$out" | sed 's/\x1b\[K//g' | grep "ETA:" |
      awk '{ if (length > m) m = length } END { print m + 0 }')
    grep -q "ETA:" <<<"$out" && [ "$longest" -lt "$cols" ] && pass ||
      fail "on $cols columns the longest line has $longest characters: $out"
  done
else
  fail "script(1) is missing (util-linux)"
fi

# --quiet leaves only the test line.
out=$("$WORKER" "${args[@]}" --quiet)
[ -n "$out" ] && [ "$out" = "$(grep '^Test:' <<<"$out")" ] && pass ||
  fail "--quiet printed more than the test line, or nothing: $out"

# Into a log (not a terminal): plain progress lines inside each epoch (issue 14: there
# was nothing between epoch lines); --progress-every 0 prints one per step but the last,
# whose epoch line follows. 540 training samples, batch 64: 8 steps per epoch.
out=$("$WORKER" "${args[@]}" --progress-every 0)
n=$(grep -cE '^  epoch [12]/2: [1-7]/8 steps \([0-9]+%\) - [0-9]+s - ETA [0-9]+s - loss: [0-9.]+ - accuracy: [0-9.]+$' <<<"$out")
[ "$n" -eq 14 ] && pass || fail "expected 14 progress lines, got $n: $out"
[ "$(grep -c '^Epoch [12]/2 - ' <<<"$out")" -eq 2 ] && pass || fail "the epoch lines are not all there: $out"
out=$("$WORKER" "${args[@]}" --progress-every 0 --no-progress)
grep -q "^  epoch" <<<"$out" && fail "--no-progress still printed progress lines: $out" || pass
expect_exit 2 "--progress-every 'soon'" "bad --progress-every" -- "$WORKER" "${args[@]}" --progress-every soon
finish
