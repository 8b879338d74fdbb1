#!/usr/bin/env bash
# The paper's character-level LM comparison (BPC, ARMIN vs LSTM) and its short-TBPTT claim (segments of 50 and 10
# steps). SCALE=quick|paper, OUT=runs dir.
source "$(dirname "$0")/_run.sh"
run_preset charlm "$@"
run_preset charlm-short-bptt "$@"
uv run repro report "$OUT"
