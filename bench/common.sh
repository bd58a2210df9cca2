# Shared helpers for the bench scripts: building a Release tree and taking medians.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
WORKER="$BUILD/src/worker/dtrain-worker"
ANCHORS=${DT_ANCHORS:-$ROOT/../shared/anchors}

bench_build() {
  "$ROOT/scripts/install-deps.sh" --bench
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" >/dev/null
  [ -f "$ANCHORS/torch_fmnist.py" ] || { echo "anchors not found at $ANCHORS (set DT_ANCHORS)" >&2; exit 1; }
}

# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ratio A B with 2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
