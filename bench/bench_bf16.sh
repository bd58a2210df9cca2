#!/usr/bin/env bash
# The CNN (examples/fmnist-cnn.ini, batch 64, the first CNN_LIMIT samples, CNN_EPOCHS
# epochs, 1 thread, as bench/bench_cnn.sh runs it) with each convolution path and
# precision (issue 16): dtrain train.conv = im2col, train.conv = onednn (fp32), and
# train.precision = bf16 (oneDNN, AMX or AVX-512 BF16), against PyTorch 2.x from the
# anchors' venv as installed (fp32) and under CPU autocast to bfloat16
# (bench/torch_anchor.py --bf16). Epoch 2's training samples/s (the steady state) and the
# final test accuracy; rounds interleaved, medians, ratios against dtrain's fp32 paths.
# Prints the CPU, its bf16 flags and OpenBLAS's 1-thread sgemm rate (gemm_peak.c).
#
# usage: bench/bench_bf16.sh [ROUNDS]   (default 3; DT_ANCHORS_VENV names the venv;
#        CNN_LIMIT (6000), CNN_EPOCHS (3); NO_TORCH=1 leaves PyTorch out)
source "$(dirname "$0")/common.sh"
rounds=${1:-3}
VENV=${DT_ANCHORS_VENV:-$ROOT/.anchors-venv}
PY="$VENV/bin/python"
CNN_LIMIT=${CNN_LIMIT:-6000} CNN_EPOCHS=${CNN_EPOCHS:-3}
contenders=(im2col onednn bf16)
if [ -z "${NO_TORCH:-}" ]; then
  if ! [ -x "$PY" ] || ! "$PY" -c "import torch" 2>/dev/null; then
    echo "bench_bf16: no PyTorch venv at $VENV (../shared/anchors/setup-anchors.sh; or NO_TORCH=1)" >&2
    exit 1
  fi
  contenders+=(torch torch_bf16)
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target dtrain-worker >/dev/null
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 "$ANCHORS/gemm_peak.c" -lopenblas -o "$tmp/gemm_peak"
sgemm_rate() { "$tmp/gemm_peak" | sed -nE 's/^sgemm +512x +512x +512: +([0-9.]+) GFLOP\/s/\1/p'; }

cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -oE '\b(avx512f|avx512_bf16|amx_bf16|amx_tile)\b' | tr '\n' ' ')
echo "CPU: $cpu ($(getconf _NPROCESSORS_ONLN) cores; ${flags% }), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "OpenBLAS 1-thread sgemm 512^3 (gemm_peak.c): $(sgemm_rate) GFLOP/s at start"
[ -z "${NO_TORCH:-}" ] && echo "PyTorch: $("$PY" -c 'import torch; print(torch.__version__)')"

# run CONTENDER: prints "epoch2_rate test_acc"
run() {
  local cmd=()
  case $1 in
    im2col | onednn | bf16)
      cmd=("$WORKER" --config "$ROOT/examples/fmnist-cnn.ini" --no-progress
        --set train.epochs="$CNN_EPOCHS" --set train.batch_size=64 --set train.threads=1
        --set data.threads=0 --set data.validation_split=0 --set data.train_limit="$CNN_LIMIT"
        --set train.lr=0.05 --set tensorboard.enabled=false)
      case $1 in
        im2col) cmd+=(--set train.conv=im2col) ;;
        onednn) cmd+=(--set train.conv=onednn) ;;
        bf16) cmd+=(--set train.precision=bf16) ;;
      esac ;;
    torch | torch_bf16)
      cmd=("$PY" "$ROOT/bench/torch_anchor.py")
      [ "$1" = torch_bf16 ] && cmd+=(--bf16)
      cmd+=("$ANCHORS/torch_fmnist.py" --model cnn --epochs "$CNN_EPOCHS" --batch 64 --threads 1
        --limit "$CNN_LIMIT") ;;
  esac
  (cd "$tmp" && "${cmd[@]}" >"$tmp/out" 2>"$tmp/err") || {
    echo "bench_bf16: $1 failed:" >&2; tail -5 "$tmp/err" >&2; exit 1
  }
  awk -v who="$1" '
    /^Epoch 2\/[0-9]+ - .* samples\/s$/ { rate = $(NF - 1) }
    /^Test: / { acc = $NF; if (acc ~ /\)/) acc = $(NF - 2) }
    /^epoch 2 samples\/s/ { rate = $4 }
    /^epoch [0-9]+ samples\/s/ { for (i = 7; i < NF; i++) if ($i == "test_acc") acc = $(i + 1) }
    /^test_acc / { acc = $2 }
    END { printf "%s %s\n", rate, acc }' "$tmp/out"
}

declare -A RATE ACC
for ((r = 1; r <= rounds; r++)); do
  echo "round $r: sgemm $(sgemm_rate) GFLOP/s, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for who in "${contenders[@]}"; do
    line=$(run "$who") || exit 1
    read -r a acc <<<"$line"
    RATE[$who]+=" $a" ACC[$who]+=" $acc"
    echo "  $who: epoch 2 $a samples/s, test acc $acc" >&2
  done
done
med() { local -a v; read -r -a v <<<"$1"; median "${v[@]}"; }
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "CNN, batch 64, $CNN_LIMIT samples, $CNN_EPOCHS epochs, 1 thread: epoch 2 training samples/s and final test accuracy, medians of $rounds rounds"
echo '| run | samples/s | / dtrain im2col | / dtrain onednn fp32 | test accuracy |'
echo '|---|---|---|---|---|'
i=$(med "${RATE[im2col]}") o=$(med "${RATE[onednn]}")
for who in "${contenders[@]}"; do
  v=$(med "${RATE[$who]}")
  printf '| %s | %s | %sx | %sx | %s |\n' "$who" "$v" "$(ratio "$v" "$i")" "$(ratio "$v" "$o")" "$(med "${ACC[$who]}")"
done
