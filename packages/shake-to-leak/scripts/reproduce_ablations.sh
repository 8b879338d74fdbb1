#!/usr/bin/env bash
# The blog's ablations: LoRA-rank sweep, Textual-Inversion token sweep, Gaussian weight perturbation.
source "$(dirname "$0")/_run.sh"
run_preset lora-rank "$@"
run_preset ti-tokens "$@"
run_preset perturbation "$@"
uv run repro report "$OUT/shake-to-leak"
