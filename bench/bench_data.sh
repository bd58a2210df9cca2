#!/usr/bin/env bash
# Input pipeline throughput (issue 15): how fast each data format delivers training
# batches, against how fast the MLP and the CNN consume them, and against Keras'
# image_dataset_from_directory + tf.data on the same image folder.
#
# 1. Writes Fashion-MNIST's 60,000 training samples into a temporary folder as a PNG
#    folder tree (scripts/fmnist-to-png.py), a CSV of label + 784 pixel columns and
#    .npy files (bench/fmnist_formats.py, numpy from ./.venv).
# 2. bench_data_rate per format (batches of 64, shuffled, the worker's default scaling):
#    samples/s with the caller's thread gathering (threads 0: the rate of one thread)
#    and with one background loader thread, and the one-time load cost.
# 3. The training rates (1 thread, batch 64) of examples/fmnist-mlp.ini (1 epoch of
#    60,000) and examples/fmnist-cnn.ini (1 epoch of the first 6,000), from their epoch
#    lines; ratios pipeline / training above 1 mean one data thread can keep up.
# 4. Keras (../shared/anchors/setup-anchors.sh's venv, DT_ANCHORS_VENV): one epoch of the
#    PNG folder through image_dataset_from_directory + tf.data with augmentation, 1 thread
#    (bench/keras_data.py), against our PNG decode + augment with one thread.
# 5. Real training on the PNG folder with [augment] on, data.threads = 1 and
#    train.threads = 1: the share of step time the trainer waited for batches, from
#    dtrain-worker's "Data: ... waiting for batches took X s, Y% of step time" line
#    (the CNN on 6,400 samples for 2 epochs; the MLP on all 60,000 for 1 epoch).
# Steps 2-5 run in ROUNDS interleaved rounds; the tables give medians, the individual
# runs go to stderr. Rates are also given per CPU-second (the process's CPU time over
# the timed part), which a machine shared with other jobs disturbs less than wall time.
#
# usage: bench/bench_data.sh [ROUNDS]   (default 3; a round takes about 2 minutes)
source "$(dirname "$0")/common.sh"
rounds=${1:-3}
VENV_PY="$ROOT/.venv/bin/python"
KERAS_PY="${DT_ANCHORS_VENV:-$ROOT/.anchors-venv}/bin/python"
FMNIST=/usr/share/datasets/fashion-mnist
RATE="$BUILD/bench/bench_data_rate"
AUG_FLAGS=(--flip --crop-padding 2 --brightness 0.1)
AUG_SET=(--set augment.flip=horizontal --set augment.crop_padding=2 --set augment.brightness=0.1)

# Only what this bench runs (bench_build would also install PyTorch for the others).
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target dtrain-worker bench_data_rate >/dev/null
[ -x "$VENV_PY" ] || { echo "no $VENV_PY: run scripts/setup-python-venv.sh" >&2; exit 1; }
have_keras=1
[ -x "$KERAS_PY" ] || { have_keras=0; echo "no $KERAS_PY: Keras skipped (set DT_ANCHORS_VENV or run ../shared/anchors/setup-anchors.sh .anchors-venv)" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The machine: CPU and the single-thread sgemm ceiling (OpenBLAS, 512^3).
cpu=$(lscpu | sed -nE 's/^Model name:[[:space:]]+//p' | head -1)
gcc -O2 "$ANCHORS/gemm_peak.c" -lopenblas -o "$tmp/gemm_peak"
sgemm=$(OPENBLAS_NUM_THREADS=1 "$tmp/gemm_peak" | sed -nE 's/^sgemm +512x +512x +512: +([0-9.]+) GFLOP\/s/\1/p')
echo "CPU: $cpu ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start)"
echo "OpenBLAS 1-thread sgemm 512^3: $sgemm GFLOP/s"

echo "preparing data in $tmp ..." >&2
"$VENV_PY" "$ROOT/scripts/fmnist-to-png.py" "$tmp/png" --src "$FMNIST" >/dev/null
"$VENV_PY" "$ROOT/bench/fmnist_formats.py" "$tmp/fmt" --src "$FMNIST"

# value of KEY=NUMBER in the line of stdin that starts with PREFIX
field() { sed -nE "/^$1/s/.*[[:space:]]$2=([0-9.]+).*/\1/p" | head -1; }

# The pipeline cases: name and bench_data_rate arguments.
cases=(png png_aug csv npy_u8 npy_f32 idx)
declare -A args=(
  [png]="images $tmp/png/train"
  [png_aug]="${AUG_FLAGS[*]} images $tmp/png/train"
  [csv]="csv $tmp/fmt/train.csv label"
  [npy_u8]="npy $tmp/fmt/x_u8.npy $tmp/fmt/y.npy"
  [npy_f32]="npy $tmp/fmt/x_f32.npy $tmp/fmt/y.npy"
  [idx]="idx $FMNIST/train-images-idx3-ubyte.gz $FMNIST/train-labels-idx1-ubyte.gz")
declare -A label=(
  [png]="PNG folder: decode"
  [png_aug]="PNG folder: decode + augment (flip, crop_padding 2, brightness 0.1)"
  [csv]="CSV (785 columns, 133 MB): gather"
  [npy_u8]="NPY uint8, memory-mapped: gather"
  [npy_f32]="NPY float32, memory-mapped: gather"
  [idx]="IDX (gzip, in memory): gather")
declare -A r0 r1 c0 load_s load_rate   # space-separated runs per case

worker() { "$WORKER" --no-progress --set train.threads=1 --set tensorboard.enabled=false "$@" 2>&1; }
epoch_rate() { grep '^Epoch ' | tail -1 | sed -nE 's/.* - ([0-9]+) samples\/s$/\1/p'; }
wait_pct() { sed -nE 's/.*waiting for batches took ([0-9.]+) s, ([0-9.]+)% of step time.*/\2/p'; }
# shellcheck disable=SC2054  # image_size=28,28 is one value
png_set=(--set data.format=images --set data.train="$tmp/png/train" --set data.color_mode=grayscale
         --set data.image_size=28,28 --set data.validation_split=0 --set data.threads=1)

mlp=() cnn=() keras=() keras_cpu=() cnn_png=() cnn_png_rate=() mlp_png=() mlp_png_rate=() mlp_idx=()
for ((r = 0; r < rounds; r++)); do
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086  # the arguments are split on purpose
    out=$("$RATE" --seconds 3 ${args[$c]})
    r0[$c]+="$(field "gather threads=0" samples_per_s <<<"$out") "
    c0[$c]+="$(field "gather threads=0" samples_per_cpu_s <<<"$out") "
    r1[$c]+="$(field "gather threads=1" samples_per_s <<<"$out") "
    load_s[$c]+="$(field load seconds <<<"$out") "
    load_rate[$c]+="$(field load samples_per_s <<<"$out") "
  done
  out=$(worker --config "$ROOT/examples/fmnist-mlp.ini" --set train.epochs=1 \
    --set data.validation_split=0)
  mlp+=("$(epoch_rate <<<"$out")") mlp_idx+=("$(wait_pct <<<"$out")")
  cnn+=("$(worker --config "$ROOT/examples/fmnist-cnn.ini" --set train.epochs=1 \
    --set data.train_limit=6000 --set data.test_limit=1000 | epoch_rate)")
  if ((have_keras)); then
    out=$("$KERAS_PY" "$ROOT/bench/keras_data.py" "$tmp/png/train" 2>/dev/null)
    keras+=("$(field keras samples_per_s <<<"$out")")
    keras_cpu+=("$(awk -v l="$out" 'BEGIN { match(l, /cpu_s=[0-9.]+/); c = substr(l, RSTART + 6, RLENGTH - 6);
      match(l, /samples=[0-9]+/); n = substr(l, RSTART + 8, RLENGTH - 8); printf "%.0f", n / c }')")
  fi
  out=$(worker --config "$ROOT/examples/fmnist-cnn.ini" "${png_set[@]}" "${AUG_SET[@]}" \
    --set data.train_limit=6400 --set train.epochs=2)
  cnn_png+=("$(wait_pct <<<"$out")") cnn_png_rate+=("$(epoch_rate <<<"$out")")
  out=$(worker --config "$ROOT/examples/fmnist-mlp.ini" "${png_set[@]}" "${AUG_SET[@]}" \
    --set train.epochs=1)
  mlp_png+=("$(wait_pct <<<"$out")") mlp_png_rate+=("$(epoch_rate <<<"$out")")
  echo "  round $((r + 1)) of $rounds done" >&2
done

m_mlp=$(median "${mlp[@]}") m_cnn=$(median "${cnn[@]}")
echo
echo "Pipeline rate per format (batch 64, shuffled, $rounds interleaved rounds, medians):"
echo
printf '| input | load (once) | samples/s, 1 thread | per CPU-second | samples/s, 1 loader thread | / MLP training | / CNN training |\n'
printf '|---|---|---|---|---|---|---|\n'
for c in "${cases[@]}"; do
  # shellcheck disable=SC2086
  m0=$(median ${r0[$c]}) mc=$(median ${c0[$c]}) m1=$(median ${r1[$c]})
  # shellcheck disable=SC2086
  ls_=$(median ${load_s[$c]}) lr=$(median ${load_rate[$c]})
  printf '| %s | %s s (%s samples/s) | %s | %s | %s | %sx | %sx |\n' "${label[$c]}" "$ls_" "$lr" \
    "$m0" "$mc" "$m1" "$(ratio "$m0" "$m_mlp")" "$(ratio "$m0" "$m_cnn")"
  echo "  ${c}: 1 thread ${r0[$c]}; per CPU-s ${c0[$c]}; loader thread ${r1[$c]}; load s ${load_s[$c]}" >&2
done
echo
echo "Training (1 thread, batch 64, IDX input): MLP $m_mlp samples/s (runs ${mlp[*]}), CNN $m_cnn samples/s on 6,000 samples (runs ${cnn[*]})"

if ((have_keras)); then
  k=$(median "${keras[@]}") kc=$(median "${keras_cpu[@]}")
  # shellcheck disable=SC2086
  o=$(median ${r0[png_aug]}) oc=$(median ${c0[png_aug]})
  echo
  echo "PNG folder, decode + augment, 1 thread, one pass of 60,000 images:"
  echo
  printf '| | samples/s | per CPU-second |\n|---|---|---|\n'
  printf '| dtrain (bench_data_rate, threads 0) | %s | %s |\n' "$o" "$oc"
  printf '| Keras image_dataset_from_directory + tf.data | %s | %s |\n' "$k" "$kc"
  printf '| ratio dtrain / Keras | %sx | %sx |\n' "$(ratio "$o" "$k")" "$(ratio "$oc" "$kc")"
  echo "  keras runs: ${keras[*]}; per CPU-s ${keras_cpu[*]}" >&2
fi

echo
echo "Training on the PNG folder, [augment] on, data.threads = 1, train.threads = 1:"
echo
printf '| run | waiting for batches, %% of step time | samples/s (last epoch) |\n|---|---|---|\n'
printf '| CNN, 6,400 samples, 2 epochs | %s | %s |\n' "$(median "${cnn_png[@]}")" "$(median "${cnn_png_rate[@]}")"
printf '| MLP, 60,000 samples, 1 epoch | %s | %s |\n' "$(median "${mlp_png[@]}")" "$(median "${mlp_png_rate[@]}")"
printf '| MLP on the IDX files, no augmentation (reference) | %s | %s |\n' "$(median "${mlp_idx[@]}")" "$m_mlp"
echo "  runs: CNN wait ${cnn_png[*]} (samples/s ${cnn_png_rate[*]}); MLP wait ${mlp_png[*]} (samples/s ${mlp_png_rate[*]}); MLP IDX wait ${mlp_idx[*]}" >&2
