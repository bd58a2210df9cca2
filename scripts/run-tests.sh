#!/usr/bin/env bash
# The test job: installs what is needed (Debian packages, and TensorBoard/safetensors
# in a Python venv for checking our files with real clients), then builds and runs
# the whole ctest suite twice: a warnings-as-errors build, and an ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ -x scripts/setup-python-venv.sh ]; then scripts/setup-python-venv.sh; fi

jobs=$(nproc)
run_suite() {
  local dir=$1; shift
  echo "=== build $dir ($*)"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "=== test $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

run_suite build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDT_WERROR=ON
# Leak checks stay on; UBSan findings abort the test that triggered them.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DDT_WERROR=ON -DDT_SANITIZE=ON
echo "=== all test suites passed (normal and ASan+UBSan)"
