# Shared helpers for the script tests. Each test sources this with $1 = build dir,
# $2 = source dir, and ends with `finish`, which prints the counts and sets the status.
set -u
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
WORKER="$BUILD/src/worker/dtrain-worker"
FMNIST=/usr/share/datasets/fashion-mnist
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect_exit CODE NEEDLE NAME -- command...: the command exits with CODE and its
# stderr contains NEEDLE (a fixed string).
expect_exit() {
  local code=$1 needle=$2 name=$3
  shift 4
  local out rc
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -ne "$code" ]; then
    fail "$name: exit status $rc, expected $code; stderr: $out"
  elif ! grep -qF -- "$needle" <<<"$out"; then
    fail "$name: stderr does not contain '$needle'; stderr: $out"
  else
    pass
  fi
}

# write_be32 FILE OFFSET VALUE: overwrites 4 bytes with VALUE, big-endian.
write_be32() {
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($3 >> 24 & 255)) $(($3 >> 16 & 255)) \
    $(($3 >> 8 & 255)) $(($3 & 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# make_subset DIR N: the first N Fashion-MNIST training and test samples as plain IDX
# files in DIR (train-images, train-labels, test-images, test-labels).
make_subset() {
  local dir=$1 n=$2
  mkdir -p "$dir"
  zcat "$FMNIST/train-images-idx3-ubyte.gz" | head -c $((16 + 784 * n)) >"$dir/train-images"
  zcat "$FMNIST/train-labels-idx1-ubyte.gz" | head -c $((8 + n)) >"$dir/train-labels"
  zcat "$FMNIST/t10k-images-idx3-ubyte.gz" | head -c $((16 + 784 * n)) >"$dir/test-images"
  zcat "$FMNIST/t10k-labels-idx1-ubyte.gz" | head -c $((8 + n)) >"$dir/test-labels"
  for f in train-images train-labels test-images test-labels; do write_be32 "$dir/$f" 4 "$n"; done
}

# A config that trains on the files in DIR.
data_args() {
  echo --set data.dir="$1" --set data.train_images=train-images --set data.train_labels=train-labels \
    --set data.test_images=test-images --set data.test_labels=test-labels
}

# expect_test_accuracy OUTPUT SAMPLES MIN: the worker's "Test:" line over SAMPLES
# samples shows an accuracy above MIN.
expect_test_accuracy() {
  local acc
  acc=$(sed -nE "s/^Test: loss: [0-9.]+ - accuracy: ([0-9.]+) \\($2 samples\\)$/\\1/p" <<<"$1")
  if [ -z "$acc" ]; then
    fail "no test accuracy over $2 samples in the output"
  elif awk -v a="$acc" -v m="$3" 'BEGIN { exit !(a > m) }'; then
    pass
  else
    fail "test accuracy $acc, expected > $3"
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

# wait_log FILE PATTERN SECONDS: waits until FILE has a line matching the extended
# regex PATTERN; fails after SECONDS.
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# bg NAME COMMAND...: runs COMMAND in the background in a process group of its own,
# output in $TMP/NAME.log, pid in PID_NAME. A guard ends within a second of it and
# kills it with its children after BG_LIMIT seconds (default 400), even if the script
# itself was killed; bg_kill_all (for the caller's EXIT trap) kills what is left.
BG_PIDS=()
bg() {
  local name=$1
  shift
  setsid "$@" >"$TMP/$name.log" 2>&1 &
  local pid=$!
  BG_PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
  (
    for ((t = 0; t < ${BG_LIMIT:-400}; t++)); do
      kill -0 "$pid" 2>/dev/null || exit 0
      sleep 1
    done
    kill -9 -- "-$pid"
  ) >/dev/null 2>&1 &
}

bg_kill_all() {
  local p
  for p in "${BG_PIDS[@]}"; do kill -9 -- "-$p" 2>/dev/null; done
  wait 2>/dev/null
}

# require_python MODULES: PY becomes the test venv's Python (the real writers and readers
# of our files: numpy, Pillow, tensorboard, safetensors), and the test stops with a clear
# message if it cannot import MODULES (e.g. "numpy, PIL").
require_python() {
  PY="${DT_PYTHON:-$SRC/.venv/bin/python}"
  "$PY" -c "import $1" 2>/dev/null ||
    { echo "FAIL: no Python with $1 at $PY: run scripts/setup-python-venv.sh" >&2; exit 1; }
}
