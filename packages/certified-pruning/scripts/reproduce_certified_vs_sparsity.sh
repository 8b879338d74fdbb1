#!/usr/bin/env bash
# The paper's main result (certified accuracy vs sparsity per pruning method and training mode, unstable neurons,
# BaB effort): run the `pruning` grid, then draw the figures and print the tables and claims.
# Run from the repository root; SCALE=smoke|quick|paper (default quick), OUT=<runs dir> (default runs);
# extra arguments go to `repro run` (e.g. --resume, --seed 1).
set -euo pipefail
SCALE=${SCALE:-quick}
OUT=${OUT:-runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
uv run repro run certified-pruning:pruning --scale "$SCALE" --out "$OUT" --threads 1 "$@"
uv run python packages/certified-pruning/scripts/fig_certified_vs_sparsity.py "$OUT/certified-pruning/pruning/$SCALE-seed0"
