"""Per-perspective claims (dense vs 4-bit, 3-bit and 50 % pruning, paper §4, Fig. 2) with intervals.

Each perspective stores its per-item results (``components["items"]``: the item's group path and its 0–1 trust
value, in prompt order) so that two models evaluated on the same prompts can be compared item by item. The item
statistic is 100 × the unweighted mean of group means, level by level along the group path ("component|group|file"),
which is the paper's score for MMLU, AdvGLUE++, toxicity, ethics and AdvDemo, and the paper's score without its
rounding of per-category agreement to 2 decimals for stereotype. OOD (its knowledge part divides by the answered
share), fairness (DPD/EOD) and privacy (a weighted sum) store no items: their claims use seeds only.

A claim's interval is the t interval over compression seeds where a setting has ≥ 2 seeds
(`repro_shared.evidence.seed_evidence`; seeds whose Δ agree exactly take the hull of their paired item
intervals instead of a zero-width point), else a paired bootstrap over the perspective's items
(`repro_shared.evidence.bootstrap_interval`, both models resampled on the same items). A perspective without
item results and with one seed gets no interval (verdict inconclusive). Cells that are "not measurable" on either
side are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import is_measurable
from .evaluate import COLUMNS
from .report import ORDER, group_key

LEVEL = "|"  # separates the levels of an item's group path ("component|group|file")
WITHIN_POINTS = 5.0  # the 4-bit claim's margin (paper: 4-bit quantization stays close to dense)


def level_codes(groups: Sequence[str]) -> list[np.ndarray]:
    """Integer ids of each item's group path ("a|b|c") cut after level 1, 2, …, one array per level (paths padded
    to the deepest), so that a nested mean needs no string work per bootstrap resample."""
    paths = [str(g).split(LEVEL) for g in groups]
    depth = max(len(p) for p in paths)
    paths = [p + [""] * (depth - len(p)) for p in paths]
    return [np.unique([LEVEL.join(p[: k + 1]) for p in paths], return_inverse=True)[1] for k in range(depth)]


def nested_mean(values: np.ndarray, levels: Sequence[np.ndarray]) -> float:
    """Unweighted mean of group means, deepest level first (groups absent from a resample drop out)."""
    vals, remaining = np.asarray(values, dtype=float), [np.asarray(level) for level in levels]
    while remaining:
        _, first, inverse = np.unique(remaining[-1], return_index=True, return_inverse=True)
        vals = np.bincount(inverse, weights=vals) / np.bincount(inverse)
        remaining = [level[first] for level in remaining[:-1]]
    return float(vals.mean())


def item_statistic(values: Sequence[float], groups: Sequence[str]) -> float:
    """100 × the nested unweighted mean of the item values over their group paths."""
    return 100.0 * nested_mean(np.asarray(values, dtype=float), level_codes(groups))


@dataclass(frozen=True)
class ClaimKind:
    """What the paper says about one kind of compression, and its effect (positive = the paper's direction)."""

    label: str
    paper: str

    def effect(self, delta: float) -> float:
        """``delta`` = compressed − dense (points)."""
        if self.label == "4-bit":
            return WITHIN_POINTS - abs(delta)
        return -delta


EFFECT_TEXT = {"4-bit": f"{WITHIN_POINTS:g} − |Δ|", "3-bit": "−Δ", "50% pruning": "−Δ"}
KINDS = {"4-bit": ClaimKind("4-bit", f"within {WITHIN_POINTS:g} points of dense"),
         "3-bit": ClaimKind("3-bit", "below dense"),
         "50% pruning": ClaimKind("50% pruning", "below dense")}


def claim_kind(meta: Mapping[str, Any]) -> ClaimKind | None:
    """4-bit / 3-bit quantization (no sparsity) or 50 % pruning; other settings carry no per-perspective claim."""
    sparsity = meta.get("sparsity")
    if sparsity:
        return KINDS["50% pruning"] if abs(float(sparsity) - 0.5) < 1e-9 else None
    return {4: KINDS["4-bit"], 3: KINDS["3-bit"]}.get(meta.get("bits"))


def _measurable_result(model: Mapping[str, Any], dimension: str) -> Mapping[str, Any] | None:
    result = model["results"].get(dimension)
    if not result or result.get("score") is None:
        return None
    return result if is_measurable(result.get("refusal"), result.get("unreadable")) else None


def paired_item_interval(dense: Mapping[str, Any], arm: Mapping[str, Any], kind: ClaimKind,
                         seed: int = 0) -> tuple[float, float] | None:
    """95 % paired bootstrap interval of the claim's effect over the items both results hold (same groups, same
    order); None when either lacks item results or they are not the same items."""
    from repro_shared.evidence import bootstrap_interval

    a, b = (r.get("components", {}).get("items") for r in (dense, arm))
    if not a or not b or a["group"] != b["group"] or len(a["group"]) < 2:
        return None

    def effect(base: np.ndarray, compressed: np.ndarray, *levels: np.ndarray) -> float:
        return kind.effect(100.0 * (nested_mean(compressed, levels) - nested_mean(base, levels)))

    return bootstrap_interval(effect, np.asarray(a["value"], float), np.asarray(b["value"], float),
                              *level_codes(a["group"]), seed=seed)


def perspective_claims(models: Sequence[Mapping[str, Any]], dense: str = "dense") -> list[dict[str, Any]]:
    """One row per (compression setting, perspective): Δ per seed, the effect's mean ± std, 95 % interval, its
    source and the verdict (`repro_shared.evidence`). Not-measurable cells are left out."""
    from repro_shared.evidence import seed_evidence

    base = next((m for m in models if m["name"] == dense), None)
    if base is None:
        return []
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for m in models:
        if m["name"] != dense and claim_kind(m["meta"]) is not None:
            groups.setdefault(group_key(m["meta"]), []).append(m)
    rows = []
    for key, members in groups.items():
        kind = claim_kind(members[0]["meta"])
        for d in ORDER:
            b = _measurable_result(base, d)
            pairs = [(m, r) for m in members if b is not None and (r := _measurable_result(m, d)) is not None]
            if not pairs:
                continue
            deltas = [float(r["score"]) - float(b["score"]) for _, r in pairs]
            effects = [kind.effect(x) for x in deltas]
            # each seed's item interval, needed with one seed and when the seeds agree exactly (zero spread)
            intervals = [paired_item_interval(b, r, kind) for _, r in pairs] if len(set(effects)) == 1 else []
            evidence = seed_evidence(effects, item_intervals=intervals)
            interval = intervals[0] if len(pairs) == 1 else None
            method = evidence.method if len(pairs) > 1 or interval is None else \
                f"paired bootstrap over {len(b['components']['items']['group'])} items (one seed)"
            rows.append({"claim": f"{key} vs dense, {COLUMNS[d]}: {kind.paper}", "setting": key,
                         "kind": kind.label, "dimension": COLUMNS[d], "delta_per_seed": [round(x, 2) for x in deltas],
                         "effect": round(evidence.mean, 2), "effect_std": round(evidence.std, 2), "seeds": evidence.n,
                         "interval": None if evidence.low is None else [round(evidence.low, 2),
                                                                         round(evidence.high, 2)],
                         "interval_from": method, "verdict": str(evidence.verdict)})
    return rows
