#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (-fsanitize=fuzzer,address,
# undefined) from the library sources each one needs and the protobuf-c code that the
# main build generated. Each library source is compiled once (instrumented for the
# fuzzer, in parallel) and linked into every target that uses it.
# usage: tests/fuzz/build.sh BUILD_DIR SRC_DIR [TARGET...]
#   -> BUILD_DIR/fuzz/fuzz_<target> for every target (default: all of them)
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
shift 2
CLANG=${CLANG:-$(command -v clang || command -v clang-14 || true)}
if [ -z "$CLANG" ]; then
  echo "tests/fuzz/build.sh: clang not found (Debian package clang)" >&2
  exit 1
fi
for gen in "$BUILD/src/psproto/proto/ps.pb-c.c" "$BUILD/src/tb/proto/tensorboard_event.pb-c.c"; do
  [ -f "$gen" ] || { echo "tests/fuzz/build.sh: $gen is missing: build dtrain first" >&2; exit 1; }
done

# What each target links besides its own file: sources relative to SRC (or to BUILD for
# generated ones, marked @), then libraries.
declare -A SOURCES=(
  [ps_frame]="src/psproto/ps_frame.c src/psproto/ps_range.c src/core/error.c @src/psproto/proto/ps.pb-c.c"
  [config]="src/core/config.c src/core/error.c"
  [json]="src/core/json.c src/core/error.c"
  [idx]="src/io/idx.c src/io/finite.c src/io/data.c src/core/rng.c src/core/error.c"
  [safetensors]="src/io/safetensors.c src/io/checkpoint.c src/core/crc32c.c src/core/log.c src/core/json.c src/core/tensor.c src/core/error.c"
  [manifest]="src/io/checkpoint.c src/core/json.c src/core/crc32c.c src/core/log.c src/core/error.c"
  [events]="src/tb/event_reader.c src/core/crc32c.c src/core/error.c @src/tb/proto/tensorboard_event.pb-c.c"
  [npy]="src/io/numpy.c src/io/zip.c src/io/finite.c src/io/data.c src/core/rng.c src/core/error.c"
  [npz]="src/io/numpy.c src/io/zip.c src/io/finite.c src/io/data.c src/core/rng.c src/core/error.c"
  [image]="src/io/image.c src/io/png_decode.c src/io/jpeg_decode.c src/io/image_resize.c src/core/error.c"
  [csv]="src/io/csv.c src/io/textfile.c src/io/data.c src/core/json.c src/core/rng.c src/core/error.c"
  [text]="src/io/text.c src/io/text_tokens.c src/io/textfile.c src/io/data.c src/core/json.c src/core/rng.c src/core/error.c"
  [keras_config]="src/keras/keras_config.c src/keras/ini_out.c src/core/config.c src/core/json.c src/core/error.c"
)
declare -A LIBS=(
  [ps_frame]="libprotobuf-c" [config]="" [json]="" [idx]="zlib" [safetensors]=""
  [manifest]="" [events]="libprotobuf-c" [npy]="zlib" [npz]="zlib"
  [image]="libpng libjpeg" [csv]="" [text]=""
  [keras_config]=""
)
ALL="ps_frame config json idx safetensors manifest events npy npz image csv text keras_config"
targets=${*:-$ALL}
for t in $targets; do
  [ -n "${SOURCES[$t]+x}" ] || { echo "tests/fuzz/build.sh: unknown target '$t' (have: $ALL)" >&2; exit 1; }
done

OUT="$BUILD/fuzz"
OBJ="$OUT/obj"
mkdir -p "$OBJ"
CFLAGS=(-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer
  -fno-sanitize-recover=undefined -Wall -Wextra
  -I"$SRC/src/core/include" -I"$SRC/src/train/include" -I"$SRC/src/io/include"
  -I"$SRC/src/tb/include" -I"$SRC/src/tb" -I"$SRC/src/psproto/include"
  -I"$BUILD/src/psproto/proto" -I"$BUILD/src/tb/proto" -I"$SRC/src/keras")
# shellcheck disable=SC2207
CFLAGS+=($(pkg-config --cflags libprotobuf-c zlib))

# The library objects: instrumented for coverage and the sanitizers, without libFuzzer's
# main(). Written to a temporary name first so that an interrupted build leaves no
# half-written object behind.
declare -A objs=()
for t in $targets; do
  for s in ${SOURCES[$t]}; do
    if [[ $s == @* ]]; then path="$BUILD/${s#@}"; else path="$SRC/$s"; fi
    objs[$path]="$OBJ/$(echo "${s#@}" | tr / _).o"
  done
done
compile_one() {
  "$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$1" -o "$2.tmp" &&
    mv "$2.tmp" "$2"
}
jobs=$(nproc 2>/dev/null || echo 2)
failed=0
pids=()
for path in "${!objs[@]}"; do
  # Bounded parallelism without GNU parallel: wait for the oldest job when all are busy.
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
  compile_one "$path" "${objs[$path]}" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" -eq 0 ] || { echo "tests/fuzz/build.sh: compiling the library sources failed" >&2; exit 1; }

for t in $targets; do
  link=()
  for s in ${SOURCES[$t]}; do
    if [[ $s == @* ]]; then path="$BUILD/${s#@}"; else path="$SRC/$s"; fi
    link+=("${objs[$path]}")
  done
  libs=()
  # shellcheck disable=SC2086  # a list of pkg-config modules
  [ -z "${LIBS[$t]}" ] || read -ra libs <<<"$(pkg-config --libs ${LIBS[$t]})"
  "$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined "$SRC/tests/fuzz/fuzz_$t.c" \
    "${link[@]}" "${libs[@]}" -lpthread -o "$OUT/fuzz_$t.tmp"
  # A rename, not a rewrite, so that a fuzzer still running the old binary is not hurt.
  mv "$OUT/fuzz_$t.tmp" "$OUT/fuzz_$t"
done
