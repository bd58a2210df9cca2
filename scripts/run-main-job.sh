#!/usr/bin/env bash
# The main job: installs what is needed, builds dtrain, and trains the Fashion-MNIST
# MLP example (examples/fmnist-mlp.ini) to its test accuracy as a synchronous
# data-parallel job of 2 ranks under mpirun (one BLAS thread each: the two cores of
# the reference machine). DT_RANKS=N picks another rank count.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
# --oversubscribe: more ranks than cores is allowed (slower, still correct); Open MPI
# refuses to run as root unless told so.
mpi_args=(-np "${DT_RANKS:-2}" --oversubscribe)
[ "$(id -u)" -ne 0 ] || mpi_args+=(--allow-run-as-root)
mpirun "${mpi_args[@]}" build/src/worker/dtrain-worker --config examples/fmnist-mlp.ini "$@"
