#!/usr/bin/env bash
# Compute threads in one process (issue 16): the MLP example (3 epochs, all 60,000
# samples, validation off) and the CNN example (the first CNN_LIMIT samples, CNN_EPOCHS
# epochs) with train.threads = 1 and 2, TensorBoard off, data.threads = 0 (the training
# thread gathers its batches, as in bench_anchors.sh); the last epoch's training
# samples/s. Rounds are interleaved (1 then 2 threads, back to back); medians and the
# per-round ratios. Prints the CPU and OpenBLAS's 1-thread sgemm rate (gemm_peak.c).
# Run it on a quiet machine: a second thread only helps where a core is free.
#
# usage: bench/bench_threads.sh [ROUNDS]   (default 3; CNN_LIMIT (6000), CNN_EPOCHS (2))
source "$(dirname "$0")/common.sh"
rounds=${1:-3}
CNN_LIMIT=${CNN_LIMIT:-6000} CNN_EPOCHS=${CNN_EPOCHS:-2}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target dtrain-worker >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cc -O2 -o "$tmp/gemm_peak" "$ANCHORS/gemm_peak.c" -lopenblas 2>/dev/null ||
  { echo "bench_threads: cannot build $ANCHORS/gemm_peak.c" >&2; exit 1; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
  "OpenBLAS 1-thread sgemm (512^3): $(OPENBLAS_NUM_THREADS=1 "$tmp/gemm_peak" | sed -nE "s/^sgemm +512x +512x +512: +([0-9.]+) GFLOP\/s/\1/p") GFLOP/s"

# rate MODEL THREADS: the last epoch's samples/s of one run.
rate() {
  local args=(--set tensorboard.enabled=false --set data.threads=0 --set train.threads="$2"
              --set train.save_model=false --no-progress)
  case $1 in
  mlp) args+=(--config "$ROOT/examples/fmnist-mlp.ini" --set train.epochs=3
              --set data.validation_split=0) ;;
  cnn) args+=(--config "$ROOT/examples/fmnist-cnn.ini" --set train.epochs="$CNN_EPOCHS"
              --set data.train_limit="$CNN_LIMIT" --set data.validation_split=0) ;;
  esac
  "$WORKER" "${args[@]}" 2>&1 | grep '^Epoch' | tail -1 | grep -oE '[0-9]+ samples/s' |
    grep -oE '^[0-9]+'
}

printf '| model | 1 thread | 2 threads | ratio | per-round ratios |\n|---|---|---|---|---|\n'
for model in mlp cnn; do
  one=() two=() per=()
  for ((r = 1; r <= rounds; r++)); do
    a=$(rate "$model" 1)
    b=$(rate "$model" 2)
    echo "round $r $model: 1 thread $a, 2 threads $b samples/s" >&2
    one+=("$a") two+=("$b") per+=("$(ratio "$b" "$a")")
  done
  m1=$(median "${one[@]}") m2=$(median "${two[@]}")
  printf '| %s | %s | %s | %sx | %s |\n' "$model" "$m1" "$m2" "$(ratio "$m2" "$m1")" "${per[*]}"
done
