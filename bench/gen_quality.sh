#!/usr/bin/env bash
# How good are a generative model's images (issue 17)? Draws COUNT samples from a saved
# VAE or generator (dtrain-worker generate), classifies them with a Fashion-MNIST
# classifier trained by dtrain (examples/fmnist-cnn.ini; trained here into WORK/cnn
# unless --classifier names a saved model) through dtrain-worker predict, and prints
# the mean top-class probability and each class's share (bench/gen_quality.py).
# Targets: mean top-class probability >= 0.7 and every class >= 3% of the samples;
# exit status 3 when they are not met.
#
#   bench/gen_quality.sh --generator RUN/model [--classifier CNN/model] [--count 1000]
#                        [--seed 1] [--work DIR] [--grid FILE.png]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
worker=${DTRAIN_WORKER:-$root/build/src/worker/dtrain-worker}
python=${PYTHON:-$root/.venv/bin/python}
"$python" -c 'import numpy' 2>/dev/null ||
  { echo "gen_quality.sh: $python has no numpy (set PYTHON=...; scripts/setup-python-venv.sh)" >&2; exit 2; }
gen="" cls="" count=1000 seed=1 work="" grid=""
while [ $# -gt 0 ]; do
  case "$1" in
    --generator) gen=$2; shift 2 ;;
    --classifier) cls=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --grid) grid=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "gen_quality.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$gen" ] || { echo "gen_quality.sh: --generator MODEL_DIR is required" >&2; exit 2; }
[ -n "$work" ] || work=$(mktemp -d /tmp/gen_quality.XXXXXX)
mkdir -p "$work"
if [ -z "$cls" ]; then
  echo "Training the classifier (examples/fmnist-cnn.ini) into $work/cnn ..."
  "$worker" --config "$root/examples/fmnist-cnn.ini" --no-progress \
    --set tensorboard.logdir="$work" --set tensorboard.run=cnn > "$work/cnn.log" 2>&1
  grep '^Test:' "$work/cnn.log" || true
  cls=$work/cnn/model
fi
"$worker" generate --model "$gen" --count "$count" --seed "$seed" -o "$work/samples.npy"
"$python" "$root/bench/gen_quality.py" prepare "$work/samples.npy" "$work/samples255.npy" \
  ${grid:+--grid "$grid"}
"$worker" predict --model "$cls" --input "$work/samples255.npy" --output "$work/probs.npy" -q
"$python" "$root/bench/gen_quality.py" score "$work/probs.npy"
