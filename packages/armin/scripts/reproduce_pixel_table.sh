#!/usr/bin/env bash
# The paper's sequential / permuted pixel-MNIST table: test accuracy of ARMIN vs LSTM (digits at quick scale,
# MNIST from the Hub at paper scale). SCALE=quick|paper, OUT=runs dir.
source "$(dirname "$0")/_run.sh"
run_preset pixel-seq "$@"
run_preset pixel-perm "$@"
uv run repro report "$OUT"
