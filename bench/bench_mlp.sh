#!/usr/bin/env bash
# Single-process speed and memory of the MLP example against PyTorch on CPU.
#
# Runs our worker and ../shared/anchors/torch_fmnist.py on the same model
# (784-256-128-10, SGD momentum 0.9), the same 60,000 training samples per epoch, the
# same batch and 1 thread, interleaved round by round so that machine noise hits both
# alike, and prints the ratio of the median training samples/s. Peak RSS of a whole
# run (data loading included) comes from GNU time for both.
#
# usage: bench/bench_mlp.sh [ROUNDS]   (default 5)
source "$(dirname "$0")/common.sh"
rounds=${1:-5}
bench_build

ours_run() {
  "$WORKER" --config "$ROOT/examples/fmnist-mlp.ini" --no-progress --set train.epochs=1 \
    --set data.validation_split=0 --set train.threads=1 --set train.batch_size="$1" |
    sed -nE 's/^Epoch 1\/1 .* - ([0-9]+) samples\/s$/\1/p'
}
# Debian's torch multiplies matrices in OpenBLAS, whose threads torch.set_num_threads
# does not limit: without this a "1-thread" PyTorch run uses every core.
export OPENBLAS_NUM_THREADS=1
torch_run() {
  /usr/bin/python3 "$ANCHORS/torch_fmnist.py" --model mlp --epochs 1 --threads 1 --batch "$1" |
    sed -nE 's/^epoch 1 samples\/s\(global\) ([0-9]+) .*/\1/p'
}

echo "MLP 784-256-128-10, 1 thread, 1 epoch of 60,000 samples, $rounds interleaved rounds"
printf '| batch | dtrain samples/s | PyTorch samples/s | ratio |\n|---|---|---|---|\n'
for batch in 64 16; do
  ours=() torch=()
  for ((r = 0; r < rounds; r++)); do
    ours+=("$(ours_run "$batch")")
    torch+=("$(torch_run "$batch")")
  done
  o=$(median "${ours[@]}") t=$(median "${torch[@]}")
  printf '| %s | %s | %s | %sx |\n' "$batch" "$o" "$t" "$(ratio "$o" "$t")"
  echo "  batch $batch runs: dtrain ${ours[*]}; PyTorch ${torch[*]}" >&2
done

ours_rss=$( { /usr/bin/time -f '%M' "$WORKER" --config "$ROOT/examples/fmnist-mlp.ini" --no-progress \
  --set train.epochs=1 >/dev/null; } 2>&1 | tail -1)
torch_rss=$( { /usr/bin/time -f '%M' /usr/bin/python3 "$ANCHORS/torch_fmnist.py" --model mlp \
  --epochs 1 --threads 1 >/dev/null; } 2>&1 | tail -1)
printf '\n| peak RSS (1-epoch run) | dtrain | PyTorch | ratio |\n|---|---|---|---|\n'
printf '| MiB | %.1f | %.1f | %sx |\n' "$(awk -v k="$ours_rss" 'BEGIN{print k/1024}')" \
  "$(awk -v k="$torch_rss" 'BEGIN{print k/1024}')" "$(ratio "$ours_rss" "$torch_rss")"
