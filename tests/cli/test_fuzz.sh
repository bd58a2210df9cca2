# The libFuzzer targets of tests/fuzz (one per parser of untrusted input: PS frames,
# the INI config, JSON, IDX datasets, safetensors, checkpoint manifests, TensorBoard
# event files, PNG and JPEG images), built with clang -fsanitize=fuzzer,address,undefined, each run from a
# scratch copy of its committed seed corpus (tests/fuzz/corpus/<target>) for a fixed
# number of inputs with a fixed seed. A target fails on a crash, a sanitizer report, a
# leak, a timeout, or when it did not get through all its runs in the time it was given.
# The longer runs by hand are in docs/testing.md.
source "$(dirname "$0")/lib.sh"

if "$SRC/tests/fuzz/build.sh" "$BUILD" "$SRC"; then pass; else fail "cannot build the fuzz targets"; finish; fi

# target runs max_len min_seeds: the run counts keep every target to a few seconds
# (ps_frame: one valid frame of every type, a session, cut and oversized frames and a
# PARAMS frame larger than a read chunk need the long inputs).
TARGETS="
ps_frame     50000 140000 10
config       40000   4096  8
json        150000   4096  6
idx          40000   4096 10
safetensors  10000   4096  5
manifest     10000   2048  5
events       50000  16384  6
npy          40000   4096  8
npz          10000   4096  8
image       100000   4096  8
csv          30000   4096  6
text         20000   4096  6
keras_config 20000  16384  6
"
# The time a target may take for its runs; far above what they need on a loaded CI
# machine, so that running out of it means the target got slow.
LIMIT_S=${DT_FUZZ_LIMIT_S:-60}
while read -r target runs max_len min_seeds; do
  [ -n "$target" ] || continue
  # New inputs go to a scratch copy of the corpus, not into the source tree; so does
  # everything a target writes (crash files, temporary directories).
  work="$TMP/$target"
  mkdir -p "$work/tmp"
  cp -r "$SRC/tests/fuzz/corpus/$target" "$work/corpus"
  n_seeds=$(ls "$work/corpus" | wc -l)
  [ "$n_seeds" -ge "$min_seeds" ] && pass || fail "$target: only $n_seeds seeds in tests/fuzz/corpus/$target"
  start=$SECONDS
  out=$(cd "$work" && TMPDIR="$work/tmp" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" \
    timeout $((LIMIT_S + 30)) "$BUILD/fuzz/fuzz_$target" -runs="$runs" -max_total_time="$LIMIT_S" \
    -max_len="$max_len" -timeout=10 -seed=1 "$work/corpus" 2>&1)
  rc=$?
  done_runs=$(sed -nE 's/^Done ([0-9]+) runs in .*/\1/p' <<<"$out")
  echo "$target: rc $rc, ${done_runs:-no} runs of $runs in $((SECONDS - start)) s"
  if [ "$rc" -ne 0 ]; then
    fail "$target: the fuzzer exited with $rc: $(grep -E 'ERROR|SUMMARY|Test unit written' <<<"$out" | head -5)"
    tail -30 <<<"$out" >&2
  elif [ -z "$done_runs" ] || [ "$done_runs" -lt "$runs" ]; then
    fail "$target: the fuzzer did not finish its $runs runs in ${LIMIT_S} s (${done_runs:-no} done)"
  else
    pass
  fi
  ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:" <<<"$out" &&
    pass || fail "$target: a sanitizer or libFuzzer report in the output"
  [ -z "$(ls "$work/tmp")" ] && pass || fail "$target: left files behind in its TMPDIR: $(ls "$work/tmp")"
done <<<"$TARGETS"
finish
