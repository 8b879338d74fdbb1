#!/usr/bin/env bash
# The compression grid (paper §2 / Table 1) on SmolLM2-135M-Instruct at $SCALE (default quick): writes
# runs/decoding-comp-trust/compress/<name>/{models/<setting>/, results.json, table.md, figures/perplexity_per_setting.png}.
# PRESET=compress-all-seeds runs every setting at seeds 0, 1, 2. Needs REPRO_DATA_DIR (or --data-dir) with dpopt/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCALE="${SCALE:-quick}"
OUT="${OUT:-runs}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
if [[ -n "${PRESET:-}" ]]; then
    uv run repro run --config "$HERE/../configs/$PRESET.yaml" --scale "$SCALE" --out "$OUT" \
        --name "$SCALE-$PRESET-seed0" --threads "$OMP_NUM_THREADS" "$@"
else
    uv run repro run decoding-comp-trust:compress --scale "$SCALE" --out "$OUT" --threads "$OMP_NUM_THREADS" "$@"
fi
