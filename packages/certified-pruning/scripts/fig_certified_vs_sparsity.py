"""Figures and tables of the paper's main result from a `pruning` run directory (complete or still running).

Writes certified accuracy vs sparsity (one panel per training mode, one curve per pruning method), unstable ReLUs vs
sparsity, BaB domains vs sparsity and verification time vs sparsity as PNGs into `<run>/figures/` (or `--out`), and
prints per mode a Markdown table of certified accuracy and of unstable neurons per method and round, and the paper's
claims beside the measured values.

    uv run python packages/certified-pruning/scripts/fig_certified_vs_sparsity.py \
        runs/certified-pruning/pruning/quick-seed0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from certified_pruning.pruning_experiment import read_points
from certified_pruning.pruning_report import claims, figures, markdown_curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a runs/certified-pruning/pruning/<name> directory")
    parser.add_argument("--out", type=Path, help="folder for the PNGs (default <run_dir>/figures)")
    args = parser.parse_args(argv)
    points = read_points(args.run_dir / "points.jsonl")
    if not points:
        parser.error(f"{args.run_dir / 'points.jsonl'} holds no points yet")
    for path in figures(points, args.out or args.run_dir / "figures"):
        print(f"wrote {path}")
    print(f"\n{len(points)} points\n")
    print(markdown_curves(points, "certified_accuracy"))
    print()
    print(markdown_curves(points, "ibp_unstable", digits=0))
    print()
    print(markdown_curves(points, "mean_verify_seconds", digits=2))
    print("\n| claim | paper | measured | holds | note |\n|---|---|---|---|---|")
    for claim in claims(points):
        cells = (claim.name, claim.paper_value, claim.measured_value, claim.direction_holds, claim.note)
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
