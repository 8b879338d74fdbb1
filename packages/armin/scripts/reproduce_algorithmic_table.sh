#!/usr/bin/env bash
# The paper's algorithmic-task comparison (copy, repeat copy, associative recall, priority sort): bit errors per
# sequence and time per iteration for ARMIN, LSTM, NTM, TARDIS and AwTA. SCALE=quick|paper, OUT=runs dir.
source "$(dirname "$0")/_run.sh"
for task in copy repeat recall sort; do run_preset "$task" "$@"; done
uv run repro report "$OUT"
