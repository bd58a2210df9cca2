#!/usr/bin/env bash
# Single-process training speed of the LSTM example against PyTorch on CPU.
#
# Runs our worker on examples/fmnist-lstm.ini and bench/torch_lstm.py on the same model
# (LSTM of 128 units over the 28 image rows, its last state into a dense layer of 10;
# Adam; batch 64; 1 thread) over the same first N training samples (default 12,800 of
# the 60,000: a full PyTorch epoch takes about a minute here), interleaved round by
# round so that machine noise hits both alike, and prints the ratio of the median
# training samples/s. Both sides time only the training loop of the epoch.
#
# usage: bench/bench_lstm.sh [ROUNDS] [SAMPLES]   (defaults 5, 12800)
source "$(dirname "$0")/common.sh"
rounds=${1:-5}
samples=${2:-12800}
batch=64
bench_build

ours_run() {
  "$WORKER" --config "$ROOT/examples/fmnist-lstm.ini" --no-progress --set train.epochs=1 \
    --set data.validation_split=0 --set data.train_limit="$samples" --set train.threads=1 \
    --set train.batch_size="$batch" |
    sed -nE 's/^Epoch 1\/1 .* - ([0-9]+) samples\/s$/\1/p'
}
torch_run() {
  /usr/bin/python3 "$ROOT/bench/torch_lstm.py" --epochs 1 --threads 1 --batch "$batch" \
    --limit "$samples" |
    sed -nE 's/^epoch 1 samples\/s ([0-9]+) .*/\1/p'
}

echo "LSTM 28x28 -> 128 -> dense 10, Adam, batch $batch, 1 thread, $samples samples," \
  "$rounds interleaved rounds"
ours=() torch=()
for ((r = 0; r < rounds; r++)); do
  ours+=("$(ours_run)")
  torch+=("$(torch_run)")
done
o=$(median "${ours[@]}") t=$(median "${torch[@]}")
printf '| batch | dtrain samples/s | PyTorch samples/s | ratio |\n|---|---|---|---|\n'
printf '| %s | %s | %s | %sx |\n' "$batch" "$o" "$t" "$(ratio "$o" "$t")"
echo "  runs: dtrain ${ours[*]}; PyTorch ${torch[*]}" >&2
