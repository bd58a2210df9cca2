# --help, --version, --print-config with overrides, and the progress display: a live
# bar on a terminal, plain epoch lines otherwise.
source "$(dirname "$0")/lib.sh"

out=$("$WORKER" --help) && grep -q "Usage: dtrain-worker --config FILE" <<<"$out" && pass || fail "--help: $out"
out=$("$WORKER" --version) && grep -qE "^dtrain-worker [0-9]+\.[0-9]+\.[0-9]+$" <<<"$out" && pass || fail "--version: $out"

out=$("$WORKER" --config "$SRC/examples/fmnist-mlp.ini" --set train.lr=0.125 --set layer.2.units=64 --print-config)
grep -qx "lr = 0.125" <<<"$out" && pass || fail "--print-config does not show the override lr: $out"
grep -qx "units = 64" <<<"$out" && pass || fail "--print-config does not show the override units: $out"

D="$TMP/data"
make_subset "$D" 600
# shellcheck disable=SC2046
args=(--config "$SRC/examples/fmnist-mlp.ini" $(data_args "$D") --set train.epochs=2)

# Not a terminal: one line per epoch, no carriage returns.
out=$("$WORKER" "${args[@]}")
[ "$(grep -c '^Epoch [12]/2 - ' <<<"$out")" -eq 2 ] && pass || fail "expected 2 epoch lines: $out"
grep -q $'\r' <<<"$out" && fail "carriage return in non-terminal output" || pass
grep -qE '^Test: loss: [0-9.]+ - accuracy: [0-9.]+ \(600 samples\)$' <<<"$out" && pass || fail "no test line: $out"

# -q (issue 14): nothing but the final result, which --help promises.
out=$("$WORKER" "${args[@]}" -q 2>&1)
[ "$(wc -l <<<"$out")" -eq 1 ] && grep -qE '^Test: loss: [0-9.]+ - accuracy: [0-9.]+ \(600 samples\)$' <<<"$out" &&
  pass || fail "-q: expected the test line alone: '$out'"

# A terminal (a pty from script(1)): the live bar with ETA appears.
if command -v script >/dev/null; then
  out=$(script -qec "$(printf '%q ' "$WORKER" "${args[@]}")" /dev/null)
  grep -q "ETA:" <<<"$out" && pass || fail "no progress bar on a terminal: $out"
else
  fail "script(1) is missing (util-linux)"
fi

# --quiet leaves only the test line.
out=$("$WORKER" "${args[@]}" --quiet)
[ "$out" = "$(grep '^Test:' <<<"$out")" ] && pass || fail "--quiet printed more than the test line: $out"
finish
