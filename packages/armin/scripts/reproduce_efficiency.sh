#!/usr/bin/env bash
# The paper's efficiency argument: parameters, multiply-adds per step, training/inference time per step and
# activation memory vs sequence length, ARMIN vs LSTM vs NTM vs TARDIS vs AwTA at the paper's sizes.
source "$(dirname "$0")/_run.sh"
run_preset efficiency "$@"
uv run repro report "$OUT"
