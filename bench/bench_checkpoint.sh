#!/usr/bin/env bash
# Checkpoint write and load throughput against the disk's own sequential speed,
# measured in the same run on the same file system:
#  - write: dtrain's checkpoint (every file written, fsync'd, directory renamed and
#    fsync'd, `latest` replaced) vs `dd ... conv=fsync` of the same number of bytes;
#  - load: --resume (rank 0 checks the manifest and the small files; the model and
#    optimizer files are read once, straight into place, CRC32C checked on the way)
#    vs `dd` reading the checkpoint's files (both from the page cache: the file was
#    just written, and the point is our overhead, not the device's).
# Two models: a large one (784-8192-8-10, SGD with momentum: 52 MB per checkpoint)
# for throughput, and the MLP example (1.9 MB) for the time a typical checkpoint
# takes. Target: ratio >= 0.8.
#
# usage: bench/bench_checkpoint.sh [ROUNDS] [DIR]   (default 5, a temp dir under $PWD)
source "$(dirname "$0")/common.sh"
rounds=${1:-5}
dir=${2:-$(mktemp -d "$PWD/.bench-ckpt.XXXXXX")}
trap 'rm -rf "$dir"' EXIT
bench_build

big=(--set layer.1.units=8192 --set layer.2.units=8)
common=(--config "$ROOT/examples/fmnist-mlp.ini" --no-progress --set tensorboard.enabled=false
  --set data.train_limit=640 --set data.validation_split=0 --set data.test_limit=64
  --set train.epochs=1 --set checkpoint.every_steps=3 --set checkpoint.keep_last=1)

# ours_write ARGS...: a run that writes 3 checkpoints; its log is $dir/log.
ours_write() {
  rm -rf "$dir/ck"
  "$WORKER" "${common[@]}" --set checkpoint.dir="$dir/ck" "$@" >"$dir/log" 2>&1
}
ours_write_mb() {
  sed -nE 's/^Checkpoint .* written \(every 3 steps\): ([0-9.]+) MB in .*/\1/p' "$dir/log" | head -1
}
ours_write_rate() {
  median $(sed -nE 's/^Checkpoint .* written .* ([0-9]+) MB\/s$/\1/p' "$dir/log")
}
ours_write_seconds() {
  median $(sed -nE 's/^Checkpoint .* written .* MB in ([0-9.]+) s, .*/\1/p' "$dir/log")
}
# ours_load ARGS...: MB/s of --resume from the checkpoint the last write left.
ours_load() {
  "$WORKER" "${common[@]}" --set checkpoint.dir="$dir/ck" --resume "$@" >"$dir/load.log" 2>&1
  sed -nE 's/^Resumed from .* loaded in [0-9.]+ s, ([0-9]+) MB\/s\)$/\1/p' "$dir/load.log"
}
# dd_write MB: MB/s of writing MB megabytes with a final fsync.
dd_write() {
  dd if=/dev/zero of="$dir/dd.bin" bs=1M count="$1" conv=fsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1) }' |
    awk -v mb="$1" '{ printf "%.0f", mb * 1.048576 / $1 }'
}
# dd_read: MB/s of reading the checkpoint's files.
dd_read() {
  local latest bytes start end
  latest="$dir/ck/$(cat "$dir/ck/latest")"
  bytes=$(cat "$latest"/* | wc -c)
  start=$(date +%s%N)
  for f in "$latest"/*; do dd if="$f" of=/dev/null bs=1M status=none; done
  end=$(date +%s%N)
  awk -v b="$bytes" -v ns=$((end - start)) 'BEGIN { printf "%.0f", b / 1e6 / (ns / 1e9) }'
}

echo "Checkpoint throughput, $rounds interleaved rounds, file system of $dir"
printf '| model | checkpoint | write MB/s (dtrain) | dd+fsync MB/s | ratio | load MB/s (dtrain) | dd read MB/s | ratio |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for model in big mlp; do
  w=() dw=() l=() dr=() secs=()
  for ((r = 0; r < rounds; r++)); do
    if [ $model = big ]; then extra=("${big[@]}"); else extra=(); fi
    ours_write "${extra[@]}"
    ckpt_mb=$(ours_write_mb)
    w+=("$(ours_write_rate)")
    secs+=("$(ours_write_seconds)")
    dw+=("$(dd_write "$(awk -v m="$ckpt_mb" 'BEGIN { printf "%d", m / 1.048576 + 1 }')")")
    l+=("$(ours_load "${extra[@]}")")
    dr+=("$(dd_read)")
  done
  mw=$(median "${w[@]}") mdw=$(median "${dw[@]}") ml=$(median "${l[@]}") mdr=$(median "${dr[@]}")
  printf '| %s | %s MB, %.3f s | %s | %s | %sx | %s | %s | %sx |\n' "$model" "$ckpt_mb" \
    "$(median "${secs[@]}")" "$mw" "$mdw" "$(ratio "$mw" "$mdw")" "$ml" "$mdr" "$(ratio "$ml" "$mdr")"
  echo "  $model runs: write ${w[*]}; dd ${dw[*]}; load ${l[*]}; dd read ${dr[*]}" >&2
done
