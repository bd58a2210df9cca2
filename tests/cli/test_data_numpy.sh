#!/usr/bin/env bash
# NumPy (.npy, .npz) and IDX datasets of every type and rank, written by the real writers
# (numpy; Python's struct for IDX) and read by dtrain's loaders through
# tests/tools/data_dump: every value gathered must equal numpy's astype(float32) bit for
# bit, targets joined from a second file included. Then each bad input, with its exit
# status and a message naming the file and the place; then a memory-mapped .npy of about
# 1.5 GB gathered sample by sample by a process that cannot hold it in its memory.
source "$(dirname "$0")/lib.sh"

DUMP="$BUILD/tests/data_dump"
PY="${DT_PYTHON:-$SRC/.venv/bin/python}"
HELPER="$SRC/tests/python/data_numpy.py"
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "SKIP: numpy cannot be imported by $PY (run scripts/setup-python-venv.sh)"
  exit 0
fi

D="$TMP/d"
mkdir -p "$D/out"
"$PY" "$HELPER" write "$D" && pass || fail "writing the files with numpy"

# ---- every good file: loaded, gathered, compared with numpy bit for bit ----
while read -r name loader spec tloader tspec; do
  args=("--$loader" "$spec")
  [ -n "${tloader:-}" ] && args+=("--targets-$tloader" "$tspec")
  if "$DUMP" "${args[@]}" --values >"$D/out/$name.txt" 2>"$D/out/$name.err"; then pass; else
    fail "$name: data_dump ${args[*]} failed: $(cat "$D/out/$name.err")"
  fi
done <"$D/cases.txt"
n_cases=$(wc -l <"$D/cases.txt")
check=$("$PY" "$HELPER" check "$D")
n_ok=$(grep -c '^ok ' <<<"$check")
grep '^FAIL' <<<"$check" >&2
[ "$n_ok" -eq "$n_cases" ] && pass || fail "$n_ok of $n_cases cases equal numpy's values"
echo "$n_ok of $n_cases files read exactly as numpy's astype(float32)"

# ---- bad input: exit status 1 and a message naming the file and the place ----
B="$D/bad"
npy() { "$DUMP" --npy "$@"; }
idx() { "$DUMP" --idx "$@"; }
expect_exit 1 "'$B/complex.npy': unsupported dtype '<c8' (complex)" complex -- npy "$B/complex.npy"
expect_exit 1 "'$B/unicode.npy': unsupported dtype '<U5' (unicode strings)" unicode -- npy "$B/unicode.npy"
expect_exit 1 "'$B/bigendian.npy': big-endian dtype '>f4' is not supported" bigendian -- npy "$B/bigendian.npy"
expect_exit 1 "'$B/fortran.npy': the array is in Fortran order (fortran_order True)" fortran -- npy "$B/fortran.npy"
expect_exit 1 "'$B/truncated.npy': truncated: expected 48 data bytes (shape (3, 4) of <f4) after the 128-byte header, got 43" \
  truncated -- npy "$B/truncated.npy"
expect_exit 1 "'$B/trailing.npy': 3 unexpected bytes after the data (shape (3, 4) of <f4 is 48 bytes" \
  trailing -- npy "$B/trailing.npy"
expect_exit 1 "'$B/header_cut.npy': truncated: expected a 118-byte header after the first 10 bytes, got 30" \
  header_cut -- npy "$B/header_cut.npy"
expect_exit 1 "'$B/bad_header.npy': bad .npy header at byte 60: expected a tuple '(' for the shape, got '[3, 4]" \
  bad_header -- npy "$B/bad_header.npy"
expect_exit 1 "'$B/version4.npy': .npy format version 4.0 is not supported" version4 -- npy "$B/version4.npy"
expect_exit 1 "'$B/text.npy': not a .npy file: expected the magic \\x93NUMPY" text -- npy "$B/text.npy"
expect_exit 1 "'$B/five_d.npy': shape (2, 2, 2, 2, 2) has 5 dimensions; at most 4" five_d -- npy "$B/five_d.npy"
expect_exit 1 "'$B/scalar.npy': a 0-d array (shape ()) has no samples" scalar -- npy "$B/scalar.npy"
expect_exit 1 "cannot open '$B/missing.npy': No such file or directory" missing -- npy "$B/missing.npy"
expect_exit 1 "'$B/nan.npy': sample 2, value 1 (index [1]) is NaN" nan -- npy "$B/nan.npy"
expect_exit 1 "'$B/inf.npy': sample 1, value 2 (index [0, 2]) is -inf" inf -- npy "$B/inf.npy"
expect_exit 1 "'$B/f64_range.npy': sample 1, value 1 (index [1]) is 1e+300, beyond float32's range" \
  f64_range -- npy "$B/f64_range.npy"
expect_exit 1 "'$B/nan.npz', entry 'a.npy': sample 2, value 1 (index [1]) is NaN" nan_npz -- npy "$B/nan.npz:a"
expect_exit 1 "'$B/ab.npz' has no array 'zz' (no entry 'zz.npy'; it has 'a', 'b')" npz_missing -- npy "$B/ab.npz:zz"
expect_exit 1 "'$B/ab.npz' is an .npz archive: name one of its arrays as '$B/ab.npz:NAME' (it has 'a', 'b')" \
  npz_unnamed -- npy "$B/ab.npz"
expect_exit 1 "'$B/bad_deflate.npz', entry 'b.npy': corrupt deflate stream: invalid block type" \
  npz_deflate -- npy "$B/bad_deflate.npz:b"
expect_exit 1 "'$B/bad_crc.npz', entry 'b.npy': CRC-32 mismatch: expected 0x" npz_crc -- npy "$B/bad_crc.npz:b"
expect_exit 1 "'$B/bad_crc_stored.npz', entry 'a.npy': CRC-32 mismatch: expected 0x" npz_crc_stored -- \
  npy "$B/bad_crc_stored.npz:a"
expect_exit 1 "'$B/bzip2.npz', entry 'a.npy': compression method 12 (bzip2) is not supported" npz_bzip2 -- \
  npy "$B/bzip2.npz:a"
expect_exit 1 "'$B/cut.npz': not a zip archive (no end-of-central-directory record" npz_cut -- npy "$B/cut.npz:a"
# The other entries of the damaged archives still load: the damage is found where it is.
npy "$B/bad_crc.npz:a" >/dev/null 2>&1 && pass || fail "bad_crc.npz:a (undamaged) does not load"
npy "$B/bad_crc_stored.npz:b" >/dev/null 2>&1 && pass || fail "bad_crc_stored.npz:b (undamaged) does not load"
expect_exit 1 "sample count mismatch: '$B/x10.npy' has 10 samples, '$B/y9.npy' has 9 targets" count_mismatch -- \
  npy "$B/x10.npy" --targets-npy "$B/y9.npy"
expect_exit 1 "'$B/nan.idx': sample 3, value 2 (index [2]) is NaN" idx_nan -- idx "$B/nan.idx"
expect_exit 1 "'$B/doubles_truncated.idx': truncated: expected 96 data bytes after the header, got 92" \
  idx_truncated -- idx "$B/doubles_truncated.idx"
expect_exit 1 "'$B/doubles_trailing.idx': 8 unexpected bytes after the data" idx_trailing -- \
  idx "$B/doubles_trailing.idx"
expect_exit 1 "'$B/type0a.idx': unsupported IDX data type 0x0A" idx_type -- idx "$B/type0a.idx"
expect_exit 1 "'$B/five_d.idx': an IDX file of 5 dimensions; at most 4" idx_five_d -- idx "$B/five_d.idx"
expect_exit 1 "'$B/huge.idx': IDX dimensions describe more than 17179869184 bytes of data" idx_huge -- \
  idx "$B/huge.idx"
expect_exit 1 "'$B/corrupt.idx.gz': corrupt gzip stream" idx_gzip -- idx "$B/corrupt.idx.gz"
idx "$B/doubles.idx" >/dev/null 2>&1 && pass || fail "doubles.idx (undamaged) does not load"

# ---- a memory-mapped .npy larger than the process may hold ----
# (365958, 1024) float32: 1,498,963,968 bytes after the header. The tool loads it (the
# NaN check reads it all once), gathers every sample once through dt_dataset_gather and
# sums the values, which must equal the closed form the writer prints.
#
# The proof that it was mapped, not read into memory: the tool's anonymous memory
# (RssAnon: the heap, not the file's pages) stays far below the file's size; and where
# cgroup v2 lets us make a child group, the tool also runs under memory.max = 256 MiB
# (swap 0), which a copy of the file could not fit in. `ulimit -v` cannot be the check:
# it limits address space, and a mapping takes address space for the whole file
# whether or not its pages are ever resident, so it would refuse the map itself.
ROWS=$((251 * 1458))
BIG="$TMP/big.npy"
free_kb=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt $((3 * 1024 * 1024)) ]; then
  echo "SKIP: the 1.5 GB mapped-file check needs 3 GB free in $TMP (have ${free_kb:-?} kB)"
else
  want=$("$PY" "$HELPER" big "$BIG" "$ROWS") && pass || fail "writing $BIG"
  file_kb=$(($(stat -c %s "$BIG") / 1024))
  check_big() { # LABEL OUTPUT
    local got rss
    got=$(sed -n 's/^sum //p' <<<"$2")
    rss=$(sed -n 's/^rss_anon_kb //p' <<<"$2")
    grep -qx "n $ROWS" <<<"$2" && grep -qx "shape (1024,)" <<<"$2" && pass ||
      fail "$1: n/shape: $(head -2 <<<"$2")"
    [ "$got" = "$want" ] && pass || fail "$1: sum of gathered values $got, expected $want"
    if [ -n "$rss" ] && [ "$rss" -lt $((file_kb / 8)) ]; then pass; else
      fail "$1: RssAnon ${rss:-?} kB is not far below the file's $file_kb kB"
    fi
    echo "$1: gathered $ROWS samples ($file_kb kB mapped), sum $got, RssAnon $rss kB"
  }
  out=$("$DUMP" --npy "$BIG" --sum 2>&1)
  [ $? -eq 0 ] && pass || fail "data_dump on $BIG: $out"
  check_big "rss" "$out"

  # cgroup v2: a child of our own group with the memory controller, if we may make one.
  cg_ran=no
  cg_self=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
  cg_parent="/sys/fs/cgroup${cg_self%/}"
  if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -n "$cg_self" ] &&
    grep -qw memory "$cg_parent/cgroup.subtree_control" 2>/dev/null &&
    mkdir "$cg_parent/dtrain-numpy-$$" 2>/dev/null; then
    CG="$cg_parent/dtrain-numpy-$$"
    if echo $((256 << 20)) >"$CG/memory.max" 2>/dev/null &&
      { [ ! -f "$CG/memory.swap.max" ] || echo 0 >"$CG/memory.swap.max"; }; then
      out=$(sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
        "$DUMP" --npy "$BIG" --sum 2>&1)
      rc=$?
      cg_ran=yes
      [ $rc -eq 0 ] && pass || fail "data_dump under memory.max 256 MiB: exit $rc: $out"
      check_big "cgroup memory.max=256MiB" "$out"
      oom=$(sed -n 's/^oom_kill //p' "$CG/memory.events" 2>/dev/null)
      [ "${oom:-0}" -eq 0 ] && pass || fail "the cgroup recorded $oom OOM kills"
    fi
    rmdir "$CG" 2>/dev/null
  fi
  if [ $cg_ran = yes ]; then
    echo "mapped-file check: ran under a cgroup v2 memory.max of 256 MiB and by RssAnon"
  else
    echo "mapped-file check: by RssAnon only (no cgroup v2 child group with the memory" \
      "controller could be made here)"
  fi
  rm -f "$BIG"
fi
finish
