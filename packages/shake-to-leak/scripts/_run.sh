# Shared by the reproduce_* scripts: run presets at $SCALE (default quick) into $OUT (default runs/), one thread.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIGS="$HERE/../configs"
SCALE="${SCALE:-quick}"
OUT="${OUT:-runs}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
run_preset() {  # run_preset PRESET [extra repro run arguments...]
    local preset="$1"; shift
    uv run repro run --config "$CONFIGS/$preset.yaml" --scale "$SCALE" --out "$OUT" --name "$SCALE-$preset-seed0" \
        --threads 1 "$@"
}
