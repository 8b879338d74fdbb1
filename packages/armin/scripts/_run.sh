# Shared by the reproduce_* scripts: run presets at $SCALE (default quick) and seeds $SEEDS (default 0-4, the
# README's tables) into $OUT/<preset>/ (default runs/), so that `repro report` groups each preset over its seeds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIGS="$HERE/../configs"
SCALE="${SCALE:-quick}"
SEEDS="${SEEDS:-0-4}"
OUT="${OUT:-runs}"
run_preset() {  # run_preset PRESET [extra repro run arguments...]
    local preset="$1"; shift
    uv run repro run --config "$CONFIGS/$preset.yaml" --scale "$SCALE" --out "$OUT/$preset" --seeds "$SEEDS" "$@"
}
