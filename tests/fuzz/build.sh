#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (-fsanitize=fuzzer,address,
# undefined) from the few library sources they need and the protobuf-c code that the
# main build generated.
# usage: tests/fuzz/build.sh BUILD_DIR SRC_DIR   -> BUILD_DIR/fuzz/fuzz_ps_frame
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
CLANG=${CLANG:-$(command -v clang || command -v clang-14 || true)}
if [ -z "$CLANG" ]; then
  echo "tests/fuzz/build.sh: clang not found (Debian package clang)" >&2
  exit 1
fi
gen="$BUILD/src/psproto/proto/ps.pb-c.c"
[ -f "$gen" ] || { echo "tests/fuzz/build.sh: $gen is missing: build dtrain first" >&2; exit 1; }
mkdir -p "$BUILD/fuzz"
# shellcheck disable=SC2046
"$CLANG" -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I"$SRC/src/core/include" -I"$SRC/src/train/include" \
  -I"$SRC/src/psproto/include" -I"$BUILD/src/psproto/proto" $(pkg-config --cflags libprotobuf-c) \
  "$SRC/tests/fuzz/fuzz_ps_frame.c" "$SRC/src/psproto/ps_frame.c" "$SRC/src/psproto/ps_range.c" \
  "$SRC/src/core/error.c" "$gen" $(pkg-config --libs libprotobuf-c) \
  -o "$BUILD/fuzz/fuzz_ps_frame"
