#!/usr/bin/env bash
# The paper's transfer table: prompts generated on one model, evaluated on others.
# Usage: scripts/reproduce_transfer_table.sh [smoke|quick|paper] [out dir]. Quick scale has only SmolLM2 offline,
# so it evaluates on the generating model only unless you add --set 'eval_models=[<model>]' below.
set -euo pipefail
scale=${1:-quick}
out=${2:-runs}
here=$(cd "$(dirname "$0")/.." && pwd)
seeds=(0)
[ "$scale" = paper ] && seeds=(1 2 3)
for task in sst2 trec mpqa disaster; do
    extra=()
    if [ "$scale" = paper ] && [ "$task" != sst2 ]; then extra=(--set num_voters=40 --set demos_per_voter=2); fi
    for seed in "${seeds[@]}"; do
        repro run --config "$here/configs/transfer-$task.yaml" --scale "$scale" --seed "$seed" --out "$out" \
            "${extra[@]}"
    done
done
repro report "$out"
