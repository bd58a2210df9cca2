#!/usr/bin/env bash
# The MLP (batch 64, 15 epochs; batch 16) part of bench/bench_anchors.sh:
# dtrain against PyTorch 2.x (as installed and with denormals flushed) and Keras 3 from
# ../shared/anchors/setup-anchors.sh's venv, 1 thread each, steady-state epochs and whole
# runs, interleaved rounds; see that script.
# (Until issue 16 this bench ran Debian's PyTorch 1.13 on epoch 1 only.)
#
# usage: bench/bench_mlp.sh [ROUNDS]   (default 3; DT_ANCHORS_VENV names the venv)
exec "$(dirname "$0")/bench_anchors.sh" "${1:-3}" "mlp64 mlp16"
