"""The `pruning` experiment's claims over seeds from the points its runs have recorded so far, finished or not.

`repro report RUNS` aggregates finished runs; this reads each run's `points.jsonl` instead, so a grid cut short still
gives claims over the points it has (a claim whose points are missing in some run is aggregated over the others).
Per run the claims are those `pruning_report.claims` gives at the end of a run; runs are grouped by config, each group
aggregated over its seeds with repro-shared's evidence (mean ± std of the per-seed effects, t interval, verdict).

    uv run python packages/certified-pruning/scripts/claims_over_seeds.py /tmp/cp-claims/certified-pruning/pruning/*
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import yaml
from certified_pruning.pruning_experiment import read_points
from certified_pruning.pruning_report import claims
from repro_shared.aggregate import RunRecord, group_by_config, group_title, summarise_claims, text_table


def run_record(path: Path) -> RunRecord:
    """A run directory as aggregation sees it, with claims computed from its points."""
    record = yaml.safe_load((path / "config.yaml").read_text())
    config, seed = record["config"], record["seed"]
    points = read_points(path / "points.jsonl")
    found = claims(points, config.get("headline_method"), seed=seed)
    return RunRecord(path, record["experiment"], record.get("scale"), seed, config,
                     tuple(asdict(claim) for claim in found), f"{len(points)} points")


def main(paths: list[str]) -> None:
    records = [run_record(Path(path)) for path in paths if (Path(path) / "points.jsonl").exists()]
    for group in group_by_config(records):
        modes = ", ".join(group[0].config.get("modes", []))
        print(f"{group_title(group)} · modes {modes} · " + "; ".join(f"{r.path.name}: {r.state}" for r in group))
        print(text_table(summarise_claims(group)))
        for summary in summarise_claims(group):
            print(f"    {summary.name}: per seed {list(summary.measured)}")
            for run in group:  # each run's own paired bootstrap interval over its items, where it has one
                for claim in run.claims:
                    if claim["name"] == summary.name and claim.get("interval"):
                        low, high = claim["interval"]
                        print(f"      seed {run.seed}: effect {claim['effect']:.3g}, item interval [{low:.3g}, "
                              f"{high:.3g}]; {claim.get('note', '')}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
