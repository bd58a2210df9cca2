# The libFuzzer target of the PS frame decoder (tests/fuzz/fuzz_ps_frame.c), built with
# clang -fsanitize=fuzzer,address,undefined, runs 50,000 inputs grown from the seed
# corpus (tests/fuzz/corpus/ps_frame: one valid frame of every type, a HELLO that asks
# for a worker id, a whole session,
# a cut one, a 4 GiB length, an unknown type, a PARAMS frame larger than a read chunk
# for the payload split): no crash, no sanitizer report, no leak.
source "$(dirname "$0")/lib.sh"

if "$SRC/tests/fuzz/build.sh" "$BUILD" "$SRC"; then pass; else fail "cannot build the fuzz target"; finish; fi
# New inputs go to a scratch copy of the corpus, not into the source tree.
cp -r "$SRC/tests/fuzz/corpus/ps_frame" "$TMP/corpus"
n_seeds=$(ls "$TMP/corpus" | wc -l)
[ "$n_seeds" -ge 10 ] && pass || fail "only $n_seeds seeds in tests/fuzz/corpus/ps_frame"
out=$(cd "$TMP" && ASAN_OPTIONS=detect_leaks=1 timeout 300 "$BUILD/fuzz/fuzz_ps_frame" \
  -runs=50000 -max_total_time=120 -max_len=140000 -seed=1 "$TMP/corpus" 2>&1)
rc=$?
tail -4 <<<"$out"
[ "$rc" -eq 0 ] && pass || fail "the fuzzer exited with $rc: $(grep -E 'ERROR|SUMMARY' <<<"$out" | head -5)"
grep -qE "^Done [0-9]+ runs" <<<"$out" && pass || fail "the fuzzer did not finish its runs"
finish
