#!/usr/bin/env bash
# The paper's trust table (Fig. 2 / num_sheet.csv): dense + compressed models on the 8 perspectives + MMLU.
# Usage: scripts/trust_reproduce_table.sh [smoke|quick|paper] [compress run dir ...]
# Without compress run dirs the dense model alone is evaluated (configs/trust-quick-dense.yaml).
set -euo pipefail
scale="${1:-quick}"
shift || true
cd "$(dirname "$0")/../../.."
if [ "$#" -eq 0 ]; then
    exec uv run repro run --config packages/decoding-comp-trust/configs/trust-quick-dense.yaml --scale "$scale" \
        --threads "${THREADS:-1}"
fi
runs=$(printf '%s,' "$@")
exec uv run repro run decoding-comp-trust:trust --scale "$scale" --threads "${THREADS:-1}" \
    --set "compressed_runs=[${runs%,}]" --name "$scale-compressed"
