"""Claims over seeds: runs of one experiment and config that differ only in their seed, aggregated claim by claim.

Runs are grouped by (experiment, scale, resolved config); a group is never mixed. Each claim (matched by name) gets
the evidence of ``repro_shared.evidence``: mean ± std of its per-seed ``effect`` over the group's seeds, a 95 %
interval (t over seeds, or the one run's bootstrap interval over test items) and the verdict that follows from it.
Claims without an effect keep their per-run direction count ("2 of 3 seeds hold").
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import io
from .config import flatten
from .errors import ConfigError
from .evidence import Evidence, seed_evidence

NO_EFFECT = "n/a (no effect measured)"


@dataclass(frozen=True)
class RunRecord:
    """What aggregation needs of one run directory."""

    path: Path
    experiment: str
    scale: str | None
    seed: int | None
    config: Mapping[str, Any]
    claims: tuple[Mapping[str, Any], ...]
    state: str

    @property
    def complete(self) -> bool:
        return self.state == "complete"


def read_run(path: str | Path) -> RunRecord:
    """A run directory's experiment, seed, config and claims (empty claims while it has no ``results.json``)."""
    path = Path(path)
    config_record = _read_yaml(path / "config.yaml")
    results = _read_json(path / "results.json")
    status = _read_json(path / "status.json")
    state = status.get("state") or ("complete" if results else "unknown")
    return RunRecord(
        path=path,
        experiment=str(results.get("experiment") or config_record.get("experiment") or path.parent.name),
        scale=results.get("scale", config_record.get("scale")),
        seed=results.get("seed", config_record.get("seed")),
        config=config_record.get("config") or {},
        claims=tuple(dict(claim) for claim in results.get("claims") or [] if isinstance(claim, Mapping)),
        state=str(state),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = io.read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def group_key(run: RunRecord) -> str:
    """Runs with equal keys differ at most in their seed (and name)."""
    return json.dumps({"experiment": run.experiment, "scale": run.scale, "config": run.config}, sort_keys=True,
                      default=str)


def group_by_config(runs: Iterable[RunRecord]) -> list[list[RunRecord]]:
    """Runs grouped by experiment, scale and config, groups and runs in a stable order (experiment, then seed)."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    ordered = [sorted(group, key=lambda run: (run.seed if run.seed is not None else -1, run.path.name))
               for group in groups.values()]
    return sorted(ordered, key=lambda group: (group[0].experiment, str(group[0].scale), group[0].path.as_posix()))


def check_same_config(runs: Sequence[RunRecord]) -> None:
    """Refuse to aggregate runs that differ in anything but their seed: a ``ConfigError`` naming the differences."""
    if not runs:
        raise ConfigError("no runs to aggregate")
    first = runs[0]
    for run in runs[1:]:
        differences = []
        if run.experiment != first.experiment:
            differences.append(f"experiment {first.experiment} vs {run.experiment}")
        if run.scale != first.scale:
            differences.append(f"scale {first.scale} vs {run.scale}")
        a, b = flatten(dict(first.config)), flatten(dict(run.config))
        differences += [f"{key} {a.get(key)!r} vs {b.get(key)!r}" for key in sorted(set(a) | set(b))
                        if a.get(key) != b.get(key)]
        if differences:
            raise ConfigError(
                f"cannot aggregate {first.path} and {run.path} over seeds: they differ in {'; '.join(differences)}",
                "aggregate only runs of one experiment and config that differ in the seed alone")


@dataclass(frozen=True)
class ClaimSummary:
    """One claim over the seeds of a group."""

    name: str
    paper_value: Any
    runs: int
    holds: int
    comparable: int
    evidence: Evidence | None
    measured: tuple[Any, ...] = field(default=())
    note: str = ""

    @property
    def verdict(self) -> str:
        return self.evidence.verdict.value if self.evidence is not None else NO_EFFECT

    def row(self) -> dict[str, Any]:
        evidence = self.evidence
        return {
            "claim": self.name,
            "paper": self.paper_value,
            "measured (per seed)": _measured_text(self.measured),
            "effect mean ± std (n)": evidence.summary() if evidence else _EMPTY,
            "95 % interval": evidence.interval_text() if evidence else _EMPTY,
            "verdict": self.verdict,
            "direction holds": f"{self.holds} of {self.comparable}" if self.comparable else "n/a",
            "interval from": evidence.method if evidence else "",
        }


_EMPTY = "—"


def _measured_text(values: Sequence[Any]) -> str:
    numeric = [float(v) for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool)
               and math.isfinite(float(v))]
    if len(numeric) == len(values) and len(numeric) >= 2:
        mean = sum(numeric) / len(numeric)
        std = math.sqrt(sum((v - mean) ** 2 for v in numeric) / (len(numeric) - 1))
        return f"{mean:.4g} ± {std:.2g} (n={len(numeric)})"
    if len(values) == 1:
        return _short(values[0])
    return ", ".join(_short(value) for value in values)


def _short(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{float(value):.4g}"
    return _EMPTY if value is None else str(value)


def summarise_claims(runs: Sequence[RunRecord]) -> list[ClaimSummary]:
    """Every claim of a group of runs (which must share their config), in first-seen order, with its evidence."""
    check_same_config(runs)
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        for claim in run.claims:
            by_name.setdefault(str(claim.get("name", "")), []).append(claim)
    return [_summarise(name, claims) for name, claims in by_name.items()]


def _summarise(name: str, claims: list[Mapping[str, Any]]) -> ClaimSummary:
    effects = [claim.get("effect") for claim in claims]
    finite = [float(e) for e in effects if isinstance(e, numbers.Real) and math.isfinite(float(e))]
    evidence = None
    if finite:
        with_effect = [claim for claim in claims if isinstance(claim.get("effect"), numbers.Real)
                       and math.isfinite(float(claim["effect"]))]
        intervals = [tuple(claim["interval"]) if claim.get("interval") else None for claim in with_effect]
        exact = all(bool(claim.get("exact", False)) for claim in with_effect)
        evidence = seed_evidence(finite, exact=exact, item_intervals=intervals)
    directions = [claim.get("direction_holds") for claim in claims]
    notes = sorted({str(claim.get("note")) for claim in claims if claim.get("note")})
    return ClaimSummary(
        name=name, paper_value=claims[0].get("paper_value"), runs=len(claims),
        holds=sum(1 for d in directions if d is not None and bool(d)),
        comparable=sum(1 for d in directions if d is not None), evidence=evidence,
        measured=tuple(claim.get("measured_value") for claim in claims),
        note=notes[0] if len(notes) == 1 else "",
    )


def group_title(runs: Sequence[RunRecord]) -> str:
    seeds = [run.seed for run in runs]
    return f"{runs[0].experiment} · {runs[0].scale} · seeds {', '.join(str(s) for s in seeds)}"


def verdict_counts(summaries: Iterable[ClaimSummary]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for summary in summaries:
        counts[summary.verdict] = counts.get(summary.verdict, 0) + 1
    return counts


def text_table(summaries: Sequence[ClaimSummary]) -> str:
    """The claims of one group as aligned plain text, for the terminal."""
    rows = [("claim", "paper", "effect mean ± std (n)", "95 % interval", "verdict")]
    for s in summaries:
        rows.append((s.name, _short(s.paper_value), s.evidence.summary() if s.evidence else _EMPTY,
                     s.evidence.interval_text() if s.evidence else _EMPTY, s.verdict))
    widths = [min(max(len(row[i]) for row in rows), 70 if i == 0 else 32) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [(cell if len(cell) <= width else cell[: width - 1] + "…").ljust(width)
                 for cell, width in zip(row, widths, strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def group_text(group: Sequence[RunRecord], require_evidence: bool = False) -> str:
    """A group's title and claims table as plain text ("" when it has no claims, or none with evidence if required)."""
    summaries = summarise_claims(group)
    if not summaries or (require_evidence and len(group) == 1 and not any(s.evidence for s in summaries)):
        return ""
    return f"\n{group_title(group)}\n{text_table(summaries)}"
