#!/usr/bin/env bash
# The real TensorBoard reads our event files: test_events writes a sample run
# (scalars, histograms, text, images) and tests/python/check_events.py loads it with
# TensorBoard's EventAccumulator and checks every tag, step and value.
# Usage (from ctest): test_tensorboard_reader.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build="${1:?usage: $0 BUILD_DIR SOURCE_DIR}"
src="${2:?usage: $0 BUILD_DIR SOURCE_DIR}"
python="${DT_PYTHON:-$src/.venv/bin/python}"

if [[ ! -x "$python" ]] || ! "$python" -c "import tensorboard, numpy" 2>/dev/null; then
  echo "FAIL: no Python with tensorboard at $python: run scripts/setup-python-venv.sh" \
       "(or set DT_PYTHON)" >&2
  exit 1
fi

writer="$build/tests/test_events"
if [[ ! -x "$writer" ]]; then
  echo "FAIL: $writer is not built" >&2
  exit 1
fi

tmp="$(mktemp -d /tmp/dt_tensorboard.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

"$writer" "$tmp/logdir" >/dev/null
"$python" "$src/tests/python/check_events.py" "$tmp/logdir"

# A damaged file is one TensorBoard refuses too: flip a byte inside the last record
# and check that the checker notices (the record is dropped, so a tag goes missing).
file="$(ls "$tmp"/logdir/events.out.tfevents.*)"
size=$(stat -c %s "$file")
printf '\x00' | dd of="$file" bs=1 seek=$((size - 10)) conv=notrunc status=none
if "$python" "$src/tests/python/check_events.py" "$tmp/logdir" 2>/dev/null; then
  echo "FAIL: check_events.py accepted a corrupted event file" >&2
  exit 1
fi
echo "test_tensorboard_reader: ok"
