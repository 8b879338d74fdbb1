#!/usr/bin/env bash
# Table 1: SecMI AUC / TPR@1%FPR and Eidetic extraction for pre-trained, OoD, End-to-End and the six S2L methods.
# Pre-trains the tiny model first (shared with the other experiments at the same scale).
source "$(dirname "$0")/_run.sh"
run_preset main-table "$@"
uv run repro report "$OUT/shake-to-leak"
