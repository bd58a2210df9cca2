#!/usr/bin/env bash
# Synchronous data parallelism on this machine: scaling, the gradient exchange's bus
# bandwidth, and how much of it backward does not hide.
#
# (a) Scaling: global training samples/s of the MLP example (784-256-128-10, batch
#     64 per rank, 1 BLAS thread per rank, 1 epoch of 60,000 samples, no validation
#     split, TensorBoard off) with 2 ranks under mpirun vs 1 process; the same for
#     PyTorch (../shared/anchors/torch_fmnist.py: DistributedDataParallel over gloo
#     with --ddp 2 vs one process). Interleaved round by round; medians.
# (b) Bus bandwidth of our exchange (bench/bench_allreduce.c: dt_grad_sync with the
#     default 1 MB buckets and our ring, averaging included) vs Open MPI's raw
#     MPI_Allreduce on the same byte counts (the anchor allreduce_bw.c's loop), and
#     Open MPI's MPI_Iallreduce for reference; nccl-tests' busbw formula.
# (c) Exposed communication: the time rank 0 waits for the gradients after backward
#     (what bucketing did not hide), per step and as a fraction of step time, for a
#     few bucket sizes (0 = one all-reduce of the whole buffer after backward).
#
# Noise: on a shared 2-vCPU VM the 2-rank runs are bimodal (about 1.5x when both
# vCPUs run together, about 1.05x when they do not: every step waits for the other
# rank), so read the per-run numbers printed on stderr along with the medians.
#
# usage: bench/bench_sync.sh [ROUNDS]   (default 5)
source "$(dirname "$0")/common.sh"
rounds=${1:-5}
bench_build

# mpirun as root needs to be told; --oversubscribe lets 2 ranks run on fewer slots.
mpi=(mpirun --oversubscribe -np 2)
[ "$(id -u)" -ne 0 ] || mpi+=(--allow-run-as-root)
common=(--config "$ROOT/examples/fmnist-mlp.ini" --no-progress --set train.epochs=1
  --set data.validation_split=0 --set train.threads=1 --set tensorboard.enabled=false)

# ours RANKS [ARGS...]: prints "samples/s wait_ms wait_percent" (the last two are 0
# for one process)
ours() {
  local n=$1 out
  shift
  if [ "$n" -eq 1 ]; then
    out=$("$WORKER" "${common[@]}" "$@")
  else
    out=$("${mpi[@]}" "$WORKER" "${common[@]}" "$@")
  fi
  local s w
  s=$(sed -nE 's/^Epoch 1\/1 .* - ([0-9]+) samples\/s$/\1/p' <<<"$out")
  w=$(sed -nE 's/^Sync: .* after backward: ([0-9.]+) ms\/step, ([0-9.]+)% of step time$/\1 \2/p' <<<"$out")
  echo "$s ${w:-0 0}"
}
torch() {
  local extra=()
  [ "$1" -eq 1 ] || extra=(--ddp "$1")
  /usr/bin/python3 "$ANCHORS/torch_fmnist.py" --model mlp --epochs 1 --threads 1 "${extra[@]}" |
    sed -nE 's/^epoch 1 samples\/s\(global\) ([0-9]+) .*/\1/p'
}

buckets=(0 0.25 1)
o1=() o2=() t1=() t2=()
declare -A bs bw bp
for ((r = 0; r < rounds; r++)); do
  read -r s _ _ <<<"$(ours 1)"
  o1+=("$s")
  for b in "${buckets[@]}"; do
    read -r s w p <<<"$(ours 2 --set sync.bucket_mb="$b")"
    bs[$b]+="$s " bw[$b]+="$w " bp[$b]+="$p "
  done
  t1+=("$(torch 1)")
  t2+=("$(torch 2)")
  echo "  round $((r + 1)): dtrain 1 rank ${o1[-1]}, 2 ranks $(awk '{ print $NF }' <<<"${bs[1]}")" >&2
done
# The default bucket size (1 MB) is the 2-rank number of the scaling table.
read -ra o2 <<<"${bs[1]}"

echo
echo "(a) Scaling, MLP example, batch 64 per rank, 1 thread per rank, $rounds interleaved rounds"
printf '| | 1 process samples/s | 2 ranks samples/s (global) | scaling | target |\n|---|---|---|---|---|\n'
m1=$(median "${o1[@]}") m2=$(median "${o2[@]}")
printf '| dtrain (mpirun, ring all-reduce) | %s | %s | %sx | >= 1.8x |\n' "$m1" "$m2" "$(ratio "$m2" "$m1")"
n1=$(median "${t1[@]}") n2=$(median "${t2[@]}")
printf '| PyTorch %s (DDP, gloo) | %s | %s | %sx | |\n' \
  "$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')" "$n1" "$n2" "$(ratio "$n2" "$n1")"
echo "  runs: dtrain 1 rank ${o1[*]}; 2 ranks ${o2[*]}; PyTorch 1 ${t1[*]}; DDP 2 ${t2[*]}" >&2

echo
echo "(c) Exposed communication: rank 0's wait for the gradients after backward (2 ranks)"
printf '| sync.bucket_mb | buckets | wait ms/step | %% of step time | global samples/s |\n|---|---|---|---|---|\n'
for b in "${buckets[@]}"; do
  # shellcheck disable=SC2086
  n=$(awk -v b="$b" 'BEGIN { f = b * 262144; n = 235146; print b == 0 ? 1 : int((n + f - 1) / f) }')
  # shellcheck disable=SC2086
  printf '| %s | %s | %s | %s | %s |\n' "$b" "$n" "$(median ${bw[$b]})" "$(median ${bp[$b]})" \
    "$(median ${bs[$b]})"
done

echo
echo "(b) Bus bandwidth of the gradient exchange vs raw MPI_Allreduce (target >= 0.95x)"
"${mpi[@]}" "$BUILD/bench/bench_allreduce" $((2 * rounds + 1)) 1.0
