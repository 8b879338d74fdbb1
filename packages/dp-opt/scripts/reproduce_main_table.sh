#!/usr/bin/env bash
# The paper's main table (test accuracy of 0-shot, ICL, OPT, DP-OPT at eps=8 and DLN-1) on the four tasks.
# Usage: scripts/reproduce_main_table.sh [smoke|quick|paper] [out dir]. Paper scale runs seeds 1-3 (the paper's).
set -euo pipefail
. "$(dirname "$0")/_run_tasks.sh"
run_tasks main-table "${1:-quick}" "${2:-runs}"
