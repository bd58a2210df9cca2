#!/usr/bin/env bash
# Single-process training speed of the CNN example against PyTorch on CPU.
#
# Runs our worker on examples/fmnist-cnn.ini and ../shared/anchors/torch_fmnist.py
# --model cnn on the same model (conv 5x5x32 same + ReLU + max pool 2, conv 5x5x64 same
# + ReLU + max pool 2, dense 1024 + ReLU, dense 10; SGD momentum 0.9), one epoch of all
# 60,000 training samples each (the anchor has no subset option), batch 64, 1 thread,
# interleaved round by round so that machine noise hits both alike, and prints the
# ratio of the median training samples/s. Both rates cover the training steps only
# (not data loading or the test evaluation); ours evaluates on 1,000 test samples to
# save time, the anchor on all 10,000.
#
# usage: bench/bench_cnn.sh [ROUNDS]   (default 3; a round takes about 3 minutes)
source "$(dirname "$0")/common.sh"
rounds=${1:-3}
batch=64
bench_build
# Debian's torch multiplies matrices in OpenBLAS, whose threads torch.set_num_threads
# does not limit: without this the "1-thread" anchor runs its dense layers on every core.
# (Our worker sets its BLAS threads from train.threads and ignores the variable.)
export OPENBLAS_NUM_THREADS=1

ours_run() {
  "$WORKER" --config "$ROOT/examples/fmnist-cnn.ini" --no-progress --set train.epochs=1 \
    --set data.validation_split=0 --set data.test_limit=1000 --set train.threads=1 \
    --set train.batch_size="$batch" --set tensorboard.enabled=false |
    sed -nE 's/^Epoch 1\/1 .* - ([0-9]+) samples\/s$/\1/p'
}
torch_run() {
  /usr/bin/python3 "$ANCHORS/torch_fmnist.py" --model cnn --epochs 1 --threads 1 --batch "$batch" |
    sed -nE 's/^epoch 1 samples\/s\(global\) ([0-9]+) .*/\1/p'
}

echo "CNN (2 conv + pooling, dense 1024), 1 thread, batch $batch, 1 epoch of 60,000 samples, $rounds interleaved rounds"
ours=() torch=()
for ((r = 0; r < rounds; r++)); do
  ours+=("$(ours_run)")
  torch+=("$(torch_run)")
  echo "  round $((r + 1)): dtrain ${ours[r]}, PyTorch ${torch[r]} samples/s" >&2
done
o=$(median "${ours[@]}") t=$(median "${torch[@]}")
printf '| batch | dtrain samples/s | PyTorch samples/s | ratio |\n|---|---|---|---|\n'
printf '| %s | %s | %s | %sx |\n' "$batch" "$o" "$t" "$(ratio "$o" "$t")"
echo "  runs: dtrain ${ours[*]}; PyTorch ${torch[*]}" >&2
