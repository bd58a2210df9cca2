#!/usr/bin/env bash
# This tree's build against another revision's, on whole training runs of the MLP, CNN
# and LSTM examples: one thread, interleaved round by round so that machine noise hits
# both alike. Prints, per model, the median wall time of each build over the rounds
# and their ratio (speed of this tree relative to the other: >= 1.00 is not slower),
# with the CPU and the 1-thread OpenBLAS sgemm rate, as docs/benchmarks.md wants.
#
# usage: bench/bench_builds.sh [REV] [ROUNDS]   (defaults: HEAD~1, 3)
# The other revision is checked out in a temporary git worktree and built in Release
# beside this tree's build-bench.
source "$(dirname "$0")/common.sh"
rev=${1:-HEAD~1}
rounds=${2:-3}
# No anchors framework needed here, only the two builds (and the GEMM anchor).
"$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
OTHER_SRC=$(mktemp -d)
OTHER_BUILD="$ROOT/build-bench-other"
cleanup() { git -C "$ROOT" worktree remove --force "$OTHER_SRC" >/dev/null 2>&1 || rm -rf "$OTHER_SRC"; }
trap cleanup EXIT
git -C "$ROOT" worktree add --detach "$OTHER_SRC" "$rev" >/dev/null 2>&1
cmake -S "$OTHER_SRC" -B "$OTHER_BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$OTHER_BUILD" -j"$(nproc)" >/dev/null
OTHER="$OTHER_BUILD/src/worker/dtrain-worker"

cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)
gemm_bin="$BUILD/gemm_peak"
cc -O2 "$ANCHORS/gemm_peak.c" -lopenblas -o "$gemm_bin"
gemm=$(OPENBLAS_NUM_THREADS=1 "$gemm_bin" | sed -nE 's/^sgemm  512x 512x 512: +([0-9.]+) GFLOP\/s/\1/p')

# The runs: whole processes, data loading and evaluation included.
MLP=(--config "$ROOT/examples/fmnist-mlp.ini" --set train.epochs=3)
CNN=(--config "$ROOT/examples/fmnist-cnn.ini" --set train.epochs=1 --set data.train_limit=20000
  --set data.test_limit=1000)
LSTM=(--config "$ROOT/examples/fmnist-lstm.ini" --set train.epochs=2 --set data.train_limit=12800
  --set data.test_limit=1000)

# seconds WORKER ARGS...: wall time of one run in seconds.
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" --no-progress --set train.threads=1 --set tensorboard.enabled=false >/dev/null ||
    { echo "run failed: $*" >&2; exit 1; }
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }'
}

echo "CPU: $cpu; OpenBLAS 1-thread sgemm 512^3: $gemm GFLOP/s"
echo "this tree ($(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo +changes))" \
  "against $rev ($(git -C "$ROOT" rev-parse --short "$rev")), $rounds interleaved rounds"
printf '| model | this tree s | %s s | speed ratio |\n|---|---|---|---|\n' "$rev"
for model in MLP CNN LSTM; do
  declare -n args=$model
  ours=() theirs=()
  for ((r = 0; r < rounds; r++)); do
    ours+=("$(seconds "$WORKER" "${args[@]}")")
    theirs+=("$(seconds "$OTHER" "${args[@]}")")
  done
  o=$(median "${ours[@]}") t=$(median "${theirs[@]}")
  printf '| %s | %s | %s | %sx |\n' "$model" "$o" "$t" "$(ratio "$t" "$o")"
  echo "  $model runs: this tree ${ours[*]}; $rev ${theirs[*]}" >&2
done
