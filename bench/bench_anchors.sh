#!/usr/bin/env bash
# Single-process training speed against the modern anchors (issue 16): dtrain against
# PyTorch 2.x as installed from PyPI (MKL, oneDNN), the same PyTorch with
# torch.set_flush_denormal(True), and Keras 3 on TensorFlow, all from the venv of
# ../shared/anchors/setup-anchors.sh, on the same models as ../shared/anchors'
# torch_fmnist.py and keras_fmnist.py (mlp, cnn, lstm): SGD with momentum 0.9, lr 0.05,
# the same batch, 1 thread each (dtrain: train.threads = 1 and data.threads = 0, so the
# training thread gathers its own batches as the anchors' loops do; PyTorch:
# torch.set_num_threads(1); TensorFlow: intra- and inter-op parallelism 1; and
# OMP/MKL/OPENBLAS_NUM_THREADS=1 for all).
#
# Cases (each a whole process, timed from start to exit by GNU time):
#   mlp64   MLP 784-256-128-10, batch 64, all 60,000 samples, 15 epochs: the whole run
#           of examples/fmnist-mlp.ini (its validation split off, so every side trains
#           on the same 60,000 samples per epoch)
#   mlp16   the same at batch 16, 2 epochs
#   cnn64   CNN (conv 5x5x32, pool, conv 5x5x64, pool, dense 1024, dense 10), batch 64,
#           the first CNN_LIMIT (6,000) samples, CNN_EPOCHS (3) epochs
#   lstm64  LSTM 128 over the 28 image rows -> dense 10, batch 64, the first LSTM_LIMIT
#           (12,000) samples, LSTM_EPOCHS (3) epochs
# From each run: epoch 2's training samples/s (the steady state: epoch 1 carries Keras'
# tracing and first-touch costs), the last epoch's, the whole-run seconds, the seconds
# outside the training epochs (start-up, data loading, evaluation), peak RSS and the
# final test accuracy. dtrain keeps its examples' cosine schedules (the anchors use a
# constant rate; the cost is one scalar per step) and evaluates the test set once at the
# end, like keras_fmnist.py; torch_fmnist.py evaluates all 10,000 test samples after
# every epoch, which its whole-run times include.
#
# The ceiling: OpenBLAS's 1-thread sgemm rate (gemm_peak.c, 512^3), measured once per
# round, median. Each rate is also given as a fraction of ceiling / FLOPs per sample,
# the FLOPs per sample being the multiply-adds of the layers (x2), forward plus backward:
# weight gradients of every layer, input gradients of every layer but the first (which
# nothing needs), element-wise work not counted.
#
# Rounds are interleaved (each case runs all four contenders back to back in every
# round); tables give medians, individual runs go to stderr.
#
# usage: bench/bench_anchors.sh [ROUNDS] [CASES]   (defaults: 3, "mlp64 mlp16 cnn64 lstm64")
#   env: DT_ANCHORS_VENV (default .anchors-venv at the repo root), CNN_LIMIT, CNN_EPOCHS,
#        LSTM_LIMIT, LSTM_EPOCHS, MLP16_EPOCHS
source "$(dirname "$0")/common.sh"
rounds=${1:-3}
read -r -a cases <<<"${2:-mlp64 mlp16 cnn64 lstm64}"
VENV=${DT_ANCHORS_VENV:-$ROOT/.anchors-venv}
PY="$VENV/bin/python"
CNN_LIMIT=${CNN_LIMIT:-6000} CNN_EPOCHS=${CNN_EPOCHS:-3}
LSTM_LIMIT=${LSTM_LIMIT:-12000} LSTM_EPOCHS=${LSTM_EPOCHS:-3}
MLP16_EPOCHS=${MLP16_EPOCHS:-2}

if ! [ -x "$PY" ] || ! "$PY" -c "import torch, tensorflow, keras" 2>/dev/null; then
  echo "bench_anchors: no PyTorch/TensorFlow/Keras venv at $VENV." >&2
  echo "  Make one (PyTorch 2.x, Keras 3 on TensorFlow; about 5 GB, several minutes):" >&2
  echo "    ../shared/anchors/setup-anchors.sh $VENV" >&2
  echo "  or point DT_ANCHORS_VENV at an existing one." >&2
  exit 1
fi
[ -f "$ANCHORS/torch_fmnist.py" ] || { echo "anchors not found at $ANCHORS (set DT_ANCHORS)" >&2; exit 1; }
# Only what this bench runs (bench_build would also install Debian's PyTorch 1.13).
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target dtrain-worker >/dev/null
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 "$ANCHORS/gemm_peak.c" -lopenblas -o "$tmp/gemm_peak"
sgemm_rate() { "$tmp/gemm_peak" | sed -nE 's/^sgemm +512x +512x +512: +([0-9.]+) GFLOP\/s/\1/p'; }

# FLOPs per sample (2 per multiply-add), forward + weight grads + input grads but the first layer's.
dense_macs() { echo $(($1 * $2)); }
conv_macs() { echo $(($1 * $2 * $3 * $4 * $4 * $5)); } # H W Cout K Cin ("same" padding)
flops() { echo $((2 * (2 * $1 + $2))); }                # forward MACs, MACs of the input grads needed
mlp_f=$(dense_macs 784 256) mlp_2=$(dense_macs 256 128) mlp_3=$(dense_macs 128 10)
FLOPS_MLP=$(flops $((mlp_f + mlp_2 + mlp_3)) $((mlp_2 + mlp_3)))
cnn_1=$(conv_macs 28 28 32 5 1) cnn_2=$(conv_macs 14 14 64 5 32)
cnn_3=$(dense_macs 3136 1024) cnn_4=$(dense_macs 1024 10)
FLOPS_CNN=$(flops $((cnn_1 + cnn_2 + cnn_3 + cnn_4)) $((cnn_2 + cnn_3 + cnn_4)))
# LSTM: per step, the 4 gates from the 28 inputs and the 128 recurrent units; the input
# grads needed are those of the recurrent state (27 steps have a predecessor) and the dense layer's.
lstm_x=$((28 * $(dense_macs 28 512))) lstm_h=$((28 * $(dense_macs 128 512))) lstm_o=$(dense_macs 128 10)
FLOPS_LSTM=$(flops $((lstm_x + lstm_h + lstm_o)) $((27 * $(dense_macs 128 512) + lstm_o)))

cpu=$(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1)
first_sgemm=$(sgemm_rate)
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -oE '\b(avx2|avx512f|avx512_bf16|amx_tile)\b' | tr '\n' ' ')
echo "CPU: $cpu ($(getconf _NPROCESSORS_ONLN) cores; ${flags% }), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "OpenBLAS 1-thread sgemm 512^3 (gemm_peak.c): $first_sgemm GFLOP/s at start"
echo "Anchors: $("$PY" -c 'import torch; print("PyTorch", torch.__version__, "(MKL" if torch.backends.mkl.is_available() else "(no MKL", "oneDNN" if torch.backends.mkldnn.is_available() else "no oneDNN", end=")")' 2>/dev/null)," \
  "$("$PY" -c 'import keras, tensorflow as tf; print("Keras", keras.__version__, "on TensorFlow", tf.__version__)' 2>/dev/null)"
printf 'FLOPs per sample (forward + backward): MLP %s, CNN %s, LSTM %s\n' "$FLOPS_MLP" "$FLOPS_CNN" "$FLOPS_LSTM"

# case -> model, batch, epochs, limit (0: all 60,000)
case_args() {
  case $1 in
    mlp64) echo "mlp 64 15 0" ;;
    mlp16) echo "mlp 16 $MLP16_EPOCHS 0" ;;
    cnn64) echo "cnn 64 $CNN_EPOCHS $CNN_LIMIT" ;;
    lstm64) echo "lstm 64 $LSTM_EPOCHS $LSTM_LIMIT" ;;
    *) echo "bench_anchors: unknown case $1" >&2; exit 2 ;;
  esac
}
case_flops() { case $1 in mlp*) echo "$FLOPS_MLP" ;; cnn*) echo "$FLOPS_CNN" ;; lstm*) echo "$FLOPS_LSTM" ;; esac; }
contenders=(dtrain torch torch_ftz keras)

# run CONTENDER CASE: one whole process; prints "rate2 rate_last whole_s outside_s rss_mib test_acc"
run() {
  local who=$1 model batch epochs limit
  read -r model batch epochs limit <<<"$(case_args "$2")"
  local cmd=()
  case $who in
    dtrain)
      cmd=("$WORKER" --config "$ROOT/examples/fmnist-$model.ini" --no-progress
        --set train.epochs="$epochs" --set train.batch_size="$batch" --set train.threads=1
        --set data.threads=0 --set data.validation_split=0 --set data.train_limit="$limit"
        --set train.lr=0.05 --set tensorboard.enabled=false)
      [ "$model" = lstm ] && cmd+=(--set optimizer.type=sgd --set optimizer.momentum=0.9) ;;
    torch | torch_ftz)
      cmd=("$PY" "$ROOT/bench/torch_anchor.py")
      [ "$who" = torch_ftz ] && cmd+=(--flush-denormal)
      cmd+=("$ANCHORS/torch_fmnist.py" --model "$model" --epochs "$epochs" --batch "$batch"
        --threads 1 --limit "$limit") ;;
    keras)
      cmd=("$PY" "$ANCHORS/keras_fmnist.py" --model "$model" --epochs "$epochs" --batch "$batch"
        --threads 1 --limit "$limit") ;;
  esac
  (cd "$tmp" && /usr/bin/time -o "$tmp/time" -f '%e %M' "${cmd[@]}" >"$tmp/out" 2>"$tmp/err") || {
    echo "bench_anchors: $who $2 failed:" >&2; tail -5 "$tmp/err" >&2; exit 1
  }
  read -r whole rss <"$tmp/time"
  # Epoch lines: dtrain "Epoch E/N - S steps - ... - R samples/s"; torch "epoch E
  # samples/s(global) R time Ts ... test_acc A"; keras "epoch E samples/s R time Ts".
  awk -v who="$who" -v batch="$batch" -v whole="$whole" -v rss="$rss" '
    who == "dtrain" && /^Epoch [0-9]+\/[0-9]+ - [0-9]+ steps .* samples\/s$/ {
      split($2, e, "/"); r = $(NF - 1); rate[e[1]] = r; train += $4 * batch / r; last = e[1] }
    who == "dtrain" && /^Test: / { acc = $NF; if (acc ~ /\)/) { acc = $(NF - 2) } }
    who != "dtrain" && /^epoch [0-9]+ samples\/s/ {
      rate[$2] = $4; t = $6; sub(/s$/, "", t); train += t; last = $2
      for (i = 7; i < NF; i++) if ($i == "test_acc") acc = $(i + 1) }
    /^test_acc / { acc = $2 }
    END { printf "%s %s %.2f %.2f %.1f %s\n", rate[2], rate[last], whole, whole - train, rss / 1024, acc }
  ' "$tmp/out"
}

declare -A R2 RL WHOLE OUT RSS ACC
sgemms=()
for ((r = 1; r <= rounds; r++)); do
  s=$(sgemm_rate) sgemms+=("$s")
  echo "round $r: sgemm $s GFLOP/s, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for c in "${cases[@]}"; do
    for who in "${contenders[@]}"; do
      line=$(run "$who" "$c") || exit 1
      read -r a b w o m acc <<<"$line"
      R2[$c:$who]+=" $a" RL[$c:$who]+=" $b" WHOLE[$c:$who]+=" $w" OUT[$c:$who]+=" $o"
      RSS[$c:$who]+=" $m" ACC[$c:$who]+=" $acc"
      echo "  $c $who: epoch 2 $a samples/s, last epoch $b, whole run $w s ($o s outside training), $m MiB, test acc $acc" >&2
    done
  done
done
sg=$(median "${sgemms[@]}")
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; sgemm per round: ${sgemms[*]} GFLOP/s (median $sg: the ceiling below)"

med() { local -a v; read -r -a v <<<"$1"; median "${v[@]}"; }
frac() { awk -v r="$1" -v f="$2" -v g="$3" 'BEGIN { printf "%.2f", r * f / (g * 1e9) }'; }
label() {
  local model batch epochs limit
  read -r model batch epochs limit <<<"$(case_args "$1")"
  local n=$limit
  [ "$n" = 0 ] && n=60000
  printf '%s, %s (%s samples, %s epochs)' "${model^^}" "$batch" "$n" "$epochs"
}
echo
echo "Steady state: epoch 2 training samples/s, medians of $rounds rounds; 'of ceiling' = samples/s x FLOPs per sample / sgemm rate"
echo '| model, batch | dtrain | PyTorch | PyTorch flushed | Keras | dtrain / PyTorch | / PyTorch flushed | / Keras | dtrain of ceiling | PyTorch flushed of ceiling | Keras of ceiling |'
echo '|---|---|---|---|---|---|---|---|---|---|---|'
for c in "${cases[@]}"; do
  d=$(med "${R2[$c:dtrain]}") t=$(med "${R2[$c:torch]}") f=$(med "${R2[$c:torch_ftz]}") k=$(med "${R2[$c:keras]}")
  fl=$(case_flops "$c")
  printf '| %s | %s | %s | %s | %s | %sx | %sx | %sx | %s | %s | %s |\n' "$(label "$c")" "$d" "$t" "$f" "$k" \
    "$(ratio "$d" "$t")" "$(ratio "$d" "$f")" "$(ratio "$d" "$k")" "$(frac "$d" "$fl" "$sg")" \
    "$(frac "$f" "$fl" "$sg")" "$(frac "$k" "$fl" "$sg")"
done
echo
echo "Last epoch training samples/s, medians"
echo '| model, batch | dtrain | PyTorch | PyTorch flushed | Keras | dtrain / PyTorch | / PyTorch flushed | / Keras | dtrain of ceiling |'
echo '|---|---|---|---|---|---|---|---|---|'
for c in "${cases[@]}"; do
  d=$(med "${RL[$c:dtrain]}") t=$(med "${RL[$c:torch]}") f=$(med "${RL[$c:torch_ftz]}") k=$(med "${RL[$c:keras]}")
  printf '| %s | %s | %s | %s | %s | %sx | %sx | %sx | %s |\n' "$(label "$c")" "$d" "$t" "$f" "$k" \
    "$(ratio "$d" "$t")" "$(ratio "$d" "$f")" "$(ratio "$d" "$k")" "$(frac "$d" "$(case_flops "$c")" "$sg")"
done
echo
echo "Whole runs from process start to exit (s), medians; in brackets the part outside the training epochs (start-up, data, evaluation); speed ratios are other / dtrain"
echo '| run | dtrain | PyTorch | PyTorch flushed | Keras | vs PyTorch | vs flushed | vs Keras |'
echo '|---|---|---|---|---|---|---|---|'
for c in "${cases[@]}"; do
  d=$(med "${WHOLE[$c:dtrain]}") t=$(med "${WHOLE[$c:torch]}") f=$(med "${WHOLE[$c:torch_ftz]}") k=$(med "${WHOLE[$c:keras]}")
  printf '| %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %sx | %sx | %sx |\n' "$(label "$c")" \
    "$d" "$(med "${OUT[$c:dtrain]}")" "$t" "$(med "${OUT[$c:torch]}")" "$f" "$(med "${OUT[$c:torch_ftz]}")" \
    "$k" "$(med "${OUT[$c:keras]}")" "$(ratio "$t" "$d")" "$(ratio "$f" "$d")" "$(ratio "$k" "$d")"
done
echo
echo "Peak RSS (MiB, GNU time) and final test accuracy of the whole runs, medians"
echo '| run | dtrain | PyTorch | PyTorch flushed | Keras |'
echo '|---|---|---|---|---|'
for c in "${cases[@]}"; do
  printf '| %s |' "$(label "$c")"
  for who in "${contenders[@]}"; do printf ' %s MiB, %s |' "$(med "${RSS[$c:$who]}")" "$(med "${ACC[$c:$who]}")"; done
  echo
done
