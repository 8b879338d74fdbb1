#!/usr/bin/env bash
# The paper's transfer table: prompts generated on one model, evaluated on others.
# Usage: scripts/reproduce_transfer_table.sh [smoke|quick|paper] [out dir]. Quick scale has only SmolLM2 offline,
# so it evaluates on the generating model only unless eval_models is set in configs/transfer-<task>.yaml.
set -euo pipefail
. "$(dirname "$0")/_run_tasks.sh"
run_tasks transfer "${1:-quick}" "${2:-runs}"
