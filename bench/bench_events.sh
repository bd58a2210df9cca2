#!/usr/bin/env bash
# Cost of TensorBoard logging on the MLP example: training samples/s with per-step
# scalars written every step (tensorboard.every_steps=1) against logging disabled,
# interleaved round by round; prints the medians and the overhead in percent of
# step time.
#
# usage: bench/bench_events.sh [ROUNDS]   (default 7)
source "$(dirname "$0")/common.sh"
rounds=${1:-7}
bench_build
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

run() {
  "$WORKER" --config "$ROOT/examples/fmnist-mlp.ini" --no-progress --set train.epochs=1 \
    --set data.validation_split=0 --set tensorboard.logdir="$logdir" "$@" |
    sed -nE 's/^Epoch 1\/1 .* - ([0-9]+) samples\/s$/\1/p'
}

on=() off=()
for ((r = 0; r < rounds; r++)); do
  off+=("$(run --set tensorboard.enabled=false)")
  on+=("$(run --set tensorboard.every_steps=1)")
done
m_on=$(median "${on[@]}") m_off=$(median "${off[@]}")
echo "runs: logging off ${off[*]}; every step ${on[*]}" >&2
printf '| logging | samples/s (median of %d) |\n|---|---|\n' "$rounds"
printf '| off | %s |\n| every step (6 scalars/step) | %s |\n' "$m_off" "$m_on"
awk -v a="$m_off" -v b="$m_on" 'BEGIN { printf "overhead: %.2f%% of step time\n", (a / b - 1) * 100 }'
