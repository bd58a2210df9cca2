#!/usr/bin/env bash
# Parameter server on this machine (loopback), against its anchors, in the same run:
#
# (a) Push + pull round trip of a 1M-parameter (4 MB) model through one dtrain-ps, as
#     the worker's PS client does it (bench_ps_roundtrip: one exchange at a time,
#     plain SGD applied by the server), in MB/s counting both directions, against a
#     raw TCP loopback transfer of the same bytes (bench_tcp_roundtrip: 4 MB out, 4 MB
#     back over one 127.0.0.1 connection between two threads). Target >= 0.7x.
# (b) Global training samples/s of the MLP example (batch 64 per worker, 1 BLAS
#     thread each, 1 epoch of 60,000 samples, no validation split, TensorBoard off):
#     2 async workers through 1 server (sum of both workers' rates; with and without
#     ps.overlap) and 2 sync-mode workers, against 2-rank synchronous all-reduce
#     under mpirun. Interleaved round by round; medians.
#
# usage: bench/bench_ps.sh [ROUNDS]   (default 5)
source "$(dirname "$0")/common.sh"
rounds=${1:-5}
bench_build
PSBIN="$BUILD/src/paramserver/dtrain-ps"
TMPD=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMPD"
}
trap cleanup EXIT

# server NAME ARGS...: starts dtrain-ps on a free port, which it puts in PORT.
server() {
  local name=$1
  shift
  rm -f "$TMPD/$name.port"
  "$PSBIN" --listen 127.0.0.1:0 --port-file "$TMPD/$name.port" -q "$@" >"$TMPD/$name.log" 2>&1 &
  PIDS+=($!)
  while [ ! -s "$TMPD/$name.port" ]; do sleep 0.05; done
  PORT=$(cat "$TMPD/$name.port")
}
stop_servers() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  PIDS=()
}

mpi=(mpirun --oversubscribe -np 2)
[ "$(id -u)" -ne 0 ] || mpi+=(--allow-run-as-root)
common=(--config "$ROOT/examples/fmnist-mlp.ini" --no-progress --set train.epochs=1
  --set data.validation_split=0 --set train.threads=1 --set tensorboard.enabled=false)
rate() { sed -nE 's/^Epoch 1\/1 .* - ([0-9]+) samples\/s$/\1/p'; }

# ps_run CONSISTENCY [worker args...]: global samples/s of 2 workers through 1 server
ps_run() {
  local mode=$1 w pids=()
  shift
  server "w" --set ps.consistency="$mode"
  for w in 0 1; do
    "$WORKER" "${common[@]}" --set sync.mode=ps --set ps.servers="127.0.0.1:$PORT" \
      --set ps.worker_id=$w --set ps.num_workers=2 "$@" >"$TMPD/w$w.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  stop_servers
  echo $(($(rate <"$TMPD/w0.log") + $(rate <"$TMPD/w1.log")))
}

echo "(a) round trips of 1,000,000 parameters" >&2
ps_mbps=() tcp_mbps=()
for ((r = 0; r < rounds; r++)); do
  server rt
  ps_mbps+=("$("$BUILD/bench/bench_ps_roundtrip" "127.0.0.1:$PORT" 1000000 40 "$r" |
    sed -nE 's/.*mbps=([0-9.]+)/\1/p')")
  stop_servers
  tcp_mbps+=("$("$BUILD/bench/bench_tcp_roundtrip" 1000000 40 | sed -nE 's/.*mbps=([0-9.]+)/\1/p')")
  echo "  round $((r + 1)): ps ${ps_mbps[-1]} MB/s, raw tcp ${tcp_mbps[-1]} MB/s" >&2
done

echo "(b) training throughput" >&2
a=() o=() s=() m=()
for ((r = 0; r < rounds; r++)); do
  a+=("$(ps_run async --set optimizer.momentum=0.5 --set train.lr=0.1)")
  o+=("$(ps_run async --set optimizer.momentum=0.5 --set train.lr=0.1 --set ps.overlap=true)")
  s+=("$(ps_run sync)")
  m+=("$("${mpi[@]}" "$WORKER" "${common[@]}" | rate)")
  echo "  round $((r + 1)): async ${a[-1]}, async+overlap ${o[-1]}, ps sync ${s[-1]}, all-reduce ${m[-1]}" >&2
done

pm=$(median "${ps_mbps[@]}") tm=$(median "${tcp_mbps[@]}")
echo
echo "(a) Push+pull round trip, 1M float32 parameters (4 MB each way), loopback, $rounds rounds of 40"
printf '| | MB/s (both directions) | ratio | target |\n|---|---|---|---|\n'
printf '| dtrain-ps push+pull (PS client, SGD applied) | %s | %sx | >= 0.7x |\n' "$pm" "$(ratio "$pm" "$tm")"
printf '| raw TCP loopback, same bytes | %s | 1.00x | |\n' "$tm"
echo "  runs: ps ${ps_mbps[*]}; tcp ${tcp_mbps[*]}" >&2

ma=$(median "${a[@]}") mo=$(median "${o[@]}") ms=$(median "${s[@]}") mm=$(median "${m[@]}")
echo
echo "(b) Global samples/s, MLP example, 2 workers, batch 64 each, 1 epoch, $rounds interleaved rounds"
printf '| | global samples/s | vs 2-rank all-reduce |\n|---|---|---|\n'
printf '| 2 async workers, 1 server | %s | %sx |\n' "$ma" "$(ratio "$ma" "$mm")"
printf '| 2 async workers, 1 server, ps.overlap = true | %s | %sx |\n' "$mo" "$(ratio "$mo" "$mm")"
printf '| 2 sync-mode workers, 1 server | %s | %sx |\n' "$ms" "$(ratio "$ms" "$mm")"
printf '| 2-rank all-reduce (mpirun) | %s | 1.00x |\n' "$mm"
echo "  runs: async ${a[*]}; overlap ${o[*]}; ps sync ${s[*]}; all-reduce ${m[*]}" >&2
