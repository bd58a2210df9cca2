#!/usr/bin/env bash
# The main job: installs what is needed, builds dtrain, and trains the Fashion-MNIST
# MLP example (examples/fmnist-mlp.ini) to its test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
build/src/worker/dtrain-worker --config examples/fmnist-mlp.ini "$@"
