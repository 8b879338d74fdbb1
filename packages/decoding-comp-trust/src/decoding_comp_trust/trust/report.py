"""The paper's outputs from per-model scores: the score table (num_sheet.csv layout), differences vs dense (Fig. 2),
seed mean ± std (Fig. 3/7), refusal rates, and the paper's direction-of-effect claims."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .common import is_measurable
from .evaluate import COLUMNS

ORDER = ("mmlu", "advglue", "ood", "adv_demo", "ethics", "fairness", "toxicity", "privacy", "stereotype")


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def average(scores: Mapping[str, float | None]) -> float | None:
    """The paper's Average = mean of the 9 columns incl. MMLU; here over the evaluated columns (named in the table)."""
    values = [v for v in scores.values() if v is not None]
    return float(np.mean(values)) if values else None


NOT_MEASURABLE = "not measurable"


def cell_measurable(result: Mapping[str, Any]) -> bool:
    """Less than NOT_MEASURABLE_AT % of the answers refused or unreadable (results written before the split count
    their refusal rate alone)."""
    return is_measurable(_num(result.get("refusal")), _num(result.get("unreadable")))


def cell_score(result: Mapping[str, Any], key: str = "score", measurable_only: bool = False) -> float | None:
    if measurable_only and not cell_measurable(result):
        return None
    value = _num(result.get(key))
    return _num(result.get("score")) if value is None and key != "score" else value


def score_table(models: Sequence[Mapping[str, Any]], key: str = "score",
                mark_not_measurable: bool = False) -> list[dict[str, Any]]:
    """One row per model. ``key="score"``: the paper's formula; ``"score_unreadable_wrong"``: unreadable answers
    wrong. ``mark_not_measurable``: such cells read "not measurable" and leave the average."""
    rows = []
    for m in models:
        results = {d: m["results"][d] for d in ORDER if d in m["results"]}
        scores = {d: cell_score(r, key, mark_not_measurable) for d, r in results.items()}
        row = {"setting": m["name"], "method": m["meta"].get("method", "none"), "bits": m["meta"].get("bits"),
               "sparsity": m["meta"].get("sparsity"), "pattern": m["meta"].get("pattern"),
               "seed": m["meta"].get("seed")}
        for d, v in scores.items():
            evaluated = _num(results[d].get("score")) is not None
            row[COLUMNS[d]] = (NOT_MEASURABLE if v is None and evaluated and mark_not_measurable
                               else None if v is None else round(v, 1))
        avg = average(scores)
        row["Average"] = None if avg is None else round(avg, 1)
        rows.append(row)
    return rows


def rate_table(models: Sequence[Mapping[str, Any]], key: str = "refusal") -> list[dict[str, Any]]:
    """``key="refusal"``: % of answers refused; ``"unreadable"``: % the parser could not read (parse failures)."""
    return [{"setting": m["name"], **{COLUMNS[d]: None if _num(m["results"][d].get(key)) is None
                                      else round(m["results"][d][key], 1)
                                      for d in ORDER if d in m["results"]}} for m in models]


def refusal_table(models: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return rate_table(models, "refusal")


def difference_table(models: Sequence[Mapping[str, Any]], dense: str = "dense",
                     measurable_only: bool = False) -> list[dict[str, Any]]:
    """Score − dense score per dimension (the paper's Fig. 2 shows this difference, in points); with
    ``measurable_only`` a pair with a not-measurable cell on either side is left out (None)."""
    base = next((m for m in models if m["name"] == dense), None)
    if base is None:
        return []
    rows = []
    for m in models:
        if m["name"] == dense:
            continue
        row = {"setting": m["name"]}
        for d in ORDER:
            a = cell_score(m["results"].get(d, {}), measurable_only=measurable_only)
            b = cell_score(base["results"].get(d, {}), measurable_only=measurable_only)
            row[COLUMNS[d]] = None if a is None or b is None else round(a - b, 1)
        rows.append(row)
    return rows


def group_key(meta: Mapping[str, Any]) -> str:
    """A compression setting without its calibration seed (for seed means)."""
    parts = [str(meta.get("method", "none"))]
    if meta.get("bits") not in (None, 16):
        parts.append(f"{meta['bits']}bit")
    if meta.get("pattern"):
        parts.append(str(meta["pattern"]))
    elif meta.get("sparsity"):
        parts.append(f"{meta['sparsity']}")
    return "-".join(parts)


def seed_groups(models: Sequence[Mapping[str, Any]],
                measurable_only: bool = False) -> dict[str, dict[str, tuple[float, float, int]]]:
    """group → dimension → (mean, sample std, number of seeds) (``measurable_only``: measurable cells only)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for m in models:
        groups.setdefault(group_key(m["meta"]), []).append(m)
    out = {}
    for key, members in groups.items():
        out[key] = {}
        for d in ORDER:
            values = [v for m in members
                      if (v := cell_score(m["results"].get(d, {}), measurable_only=measurable_only)) is not None]
            if values:
                out[key][d] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                               len(values))
    return out


def seed_effects(models: Sequence[Mapping[str, Any]], dense: str = "dense") -> list[dict[str, Any]]:
    """Score − dense per compression seed for every setting run at ≥ 2 seeds, per dimension (measurable cells only):
    mean ± std over the seeds, 95 % t interval from `repro_shared.evidence.seed_evidence`, and its verdict on
    "Δ > 0" read as "above dense" / "below dense" / "inconclusive" (the interval holds 0)."""
    from repro_shared.evidence import seed_evidence

    base = next((m for m in models if m["name"] == dense), None)
    if base is None:
        return []
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for m in models:
        if m["name"] != dense and m["meta"].get("seed") is not None:
            groups.setdefault(group_key(m["meta"]), []).append(m)
    rows = []
    for key, members in groups.items():
        for d in ORDER:
            b = cell_score(base["results"].get(d, {}), measurable_only=True)
            deltas = [a - b for m in members
                      if b is not None and (a := cell_score(m["results"].get(d, {}), measurable_only=True)) is not None]
            if len(deltas) < 2:
                continue
            evidence = seed_evidence(deltas)
            rows.append({"setting": key, "dimension": COLUMNS[d], "delta_mean": round(evidence.mean, 2),
                         "delta_std": round(evidence.std, 2), "seeds": evidence.n,
                         "interval": None if evidence.low is None else [round(evidence.low, 2),
                                                                         round(evidence.high, 2)],
                         "vs_dense": {"reproduced": "above dense", "contradicted": "below dense"}.get(
                             str(evidence.verdict), "inconclusive")})
    return rows


def plot_heatmap(rows: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [COLUMNS[d] for d in ORDER]
    data = np.array([[np.nan if r[c] is None else r[c] for c in cols] for r in rows], dtype=float)
    limit = max(5.0, float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 5.0)
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 3, 0.45 * len(rows) + 1.8))
    image = ax.imshow(data, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), [r["setting"] for r in rows])
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, "n/a" if np.isnan(data[i, j]) else f"{data[i, j]:+.1f}", ha="center", va="center",
                    fontsize=7)
    fig.colorbar(image, ax=ax, label="score − dense (points)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_seed_bars(groups: Mapping[str, Mapping[str, tuple[float, float, int]]], path: Path) -> Path | None:
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = [d for d in ORDER if any(d in g for g in groups.values())]
    seeded = [name for name, dims_ in groups.items() if max((n for _, _, n in dims_.values()), default=0) > 1]
    # as the paper's seed figures: the dense model and the settings repeated over calibration seeds (all if none is)
    names = [name for name in groups if name == "none" or name in seeded] if seeded else list(groups)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(1.3 * len(dims) + 3, 4.2))
    for k, name in enumerate(names):
        means = [groups[name].get(d, (np.nan, 0, 0))[0] for d in dims]
        stds = [groups[name].get(d, (0, 0.0, 0))[1] for d in dims]
        seeds = max((groups[name].get(d, (0, 0, 0))[2] for d in dims), default=0)
        ax.bar(np.arange(len(dims)) + k * width, means, width, yerr=stds, capsize=2, label=f"{name} (s={seeds})")
    ax.set_xticks(np.arange(len(dims)) + 0.4 - width / 2, [COLUMNS[d] for d in dims], rotation=30, ha="right")
    ax.set_ylabel("score (0–100), mean ± std over seeds")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
