"""Markdown reports with figures: one per run directory (``report.md``) and one per runs root.

A run's report shows its provenance, final metrics, the paper's claims beside this run's measurements, its result
tables, a plot of every numeric series in ``metrics.jsonl`` (``figures/metrics.png``) and every figure the experiment
saved. A root report summarises all runs below it. Every file is written atomically; matplotlib is imported lazily.
"""

from __future__ import annotations

import dataclasses
import io as _stdio
import itertools
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from . import io
from .errors import NotFoundError
from .logging import get_logger, read_metrics

log = get_logger(__name__)

REPORT = "report.md"
METRICS_FIGURE = "metrics.png"
MAX_METRIC_PLOTS = 24
HEADLINE_METRICS = 4
DIRECTION = {True: "✓", False: "✗", None: "n/a"}
_KNOWN_KEYS = {"experiment", "description", "package_version", "scale", "seed", "duration_s", "metrics", "claims",
               "tables"}
_EMPTY = "—"


# --- formatting -------------------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """One value as compact text: ints as-is, floats to 4 significant digits, None as a dash, containers as JSON."""
    if value is None:
        return _EMPTY
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return str(value)
    text = json.dumps(value, default=_json_fallback, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


def _json_fallback(value: Any) -> Any:
    try:
        return io.json_default(value)
    except TypeError:
        return str(value)


def _cell(value: Any) -> str:
    """A value as one Markdown table cell: ``|`` escaped, line breaks as ``<br>``."""
    text = format_value(value).replace("|", "\\|")
    return "<br>".join(text.splitlines()) if "\n" in text or "\r" in text else text


def markdown_table(rows: list[dict]) -> str:
    """Rows as a Markdown table over the union of their columns in first-seen order; missing cells stay empty."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(str(key) for key in row))
    if not columns:
        return "_(no rows)_\n"
    names = list(columns)
    lines = ["| " + " | ".join(_cell(name) for name in names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = {str(key): value for key, value in row.items()}
        lines.append("| " + " | ".join(_cell(cells[name]) if name in cells else "" for name in names) + " |")
    return "\n".join(lines) + "\n"


def _claim_dict(claim: Any) -> dict[str, Any]:
    return dataclasses.asdict(claim) if dataclasses.is_dataclass(claim) else dict(claim)


def _claim_row(claim: Any) -> dict[str, Any]:
    claim = _claim_dict(claim)
    holds = claim.get("direction_holds")
    row = {"claim": claim.get("name", ""), "paper": claim.get("paper_value"), "this run": claim.get("measured_value"),
           "same direction": DIRECTION.get(None if holds is None else bool(holds)), "note": claim.get("note") or ""}
    if claim.get("effect") is not None:
        row["effect"] = claim["effect"]
        interval = claim.get("interval")
        if interval:
            row["95 % interval (items)"] = f"[{format_value(interval[0])}, {format_value(interval[1])}]"
    return row


def claims_table(claims: Iterable[Any]) -> str:
    """Claims (``Claim`` objects or their dicts) as the "Paper vs this run" table; ✓ / ✗ / n/a for the direction."""
    return markdown_table([_claim_row(claim) for claim in claims])


def claims_count(claims: Iterable[Any]) -> str:
    """The line "N of M claims hold their direction", saying how many of the M are not comparable."""
    directions = [_claim_dict(claim).get("direction_holds") for claim in claims]
    held = sum(1 for holds in directions if holds is not None and bool(holds))
    unknown = sum(1 for holds in directions if holds is None)
    suffix = f" ({unknown} not comparable)" if unknown else ""
    return f"{held} of {len(directions)} claims hold their direction{suffix}."


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, numbers.Real) or isinstance(seconds, bool):
        return _EMPTY
    if seconds < 60:
        return f"{float(seconds):.1f} s"
    minutes, secs = divmod(round(float(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _link(path: Path | str) -> str:
    """A relative path as a Markdown link target (POSIX separators, special characters percent-encoded)."""
    return quote(Path(path).as_posix())


# --- reading a run ----------------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        log.warning("cannot read %s: %s", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def _read_status(run_dir: Path) -> dict[str, Any]:
    try:
        status = io.read_json(run_dir / "status.json")
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _figures(run_dir: Path) -> list[Path]:
    """Every PNG under ``figures/``, relative to the run directory, sorted."""
    folder = run_dir / "figures"
    if not folder.is_dir():
        return []
    return sorted(path.relative_to(run_dir) for path in folder.rglob("*.png")
                  if path.is_file() and not path.name.startswith("."))


# --- the metrics figure -----------------------------------------------------------------------------------------


# Fields that count or time records rather than measure anything: never plotted as metrics.
COUNTERS = frozenset({"step", "time", "iteration", "iter", "epoch", "global_step", "batch", "round", "index"})
_COUNTER_SUFFIXES = ("_step", "_iteration", "_iter", "_epoch", "_index")
# Series = {panel (metric name): {line label (the record's string fields, "" for none): (xs, ys)}}
Series = dict[str, dict[str, tuple[list[float], list[float]]]]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _line_label(record: Mapping[str, Any]) -> str:
    """What tells a record's line apart: its string fields (``model=baseline`` → ``baseline``)."""
    return " / ".join(str(value) for key, value in record.items() if isinstance(value, str))


def _integer_counters(records: list[dict[str, Any]]) -> set[str]:
    """Integer fields that go up by exactly one from record to record within each line: an index, not a metric."""
    values: dict[str, dict[str, list[Any]]] = {}
    for record in records:
        label = _line_label(record)
        for name, value in record.items():
            values.setdefault(name, {}).setdefault(label, []).append(value)

    def counts(seen: list[Any]) -> bool:
        return (all(isinstance(v, int) and not isinstance(v, bool) for v in seen)
                and all(b - a == 1 for a, b in itertools.pairwise(seen)))

    return {name for name, lines in values.items()
            if all(counts(seen) for seen in lines.values()) and any(len(seen) >= 2 for seen in lines.values())}


def is_counter(name: str) -> bool:
    return name in COUNTERS or name.endswith(_COUNTER_SUFFIXES)


def metric_series(records: list[dict[str, Any]]) -> Series:
    """Each numeric metric of ``metrics.jsonl`` records as one line per model/method (the records' string fields).

    x is the record's ``step``, else its ``iteration``/``epoch``, else an integer counter, else the record's index;
    counters and times are never metrics.
    """
    counters = _integer_counters(records)
    x_keys = ["step", "iteration", "iter", "epoch", "global_step", *sorted(counters)]
    series: Series = {}
    for index, record in enumerate(records):
        x = next((record[key] for key in x_keys if _is_number(record.get(key))), index)
        label = _line_label(record)
        for name, value in record.items():
            if is_counter(name) or name in counters or not _is_number(value) or not math.isfinite(value):
                continue
            xs, ys = series.setdefault(name, {}).setdefault(label, ([], []))
            xs.append(x)
            ys.append(float(value))
    return series


def _x_label(records: list[dict[str, Any]]) -> str:
    counters = _integer_counters(records)
    for key in ("step", "iteration", "iter", "epoch", "global_step", *sorted(counters)):
        if any(_is_number(record.get(key)) for record in records):
            return key
    return "record"


def plot_metrics(metrics_path: str | os.PathLike, out: str | os.PathLike) -> Path | None:
    """Plot every numeric series of a metrics file, one subplot per metric and one line per model/method."""
    figure = metrics_figure(read_metrics(metrics_path))
    if figure is None:
        return None
    buffer = _stdio.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    io.atomic_write_bytes(out, buffer.getvalue())
    return Path(out)


def metrics_figure(records: list[dict[str, Any]]) -> Any:
    """The matplotlib Figure of ``plot_metrics`` (None without numeric series)."""
    series = metric_series(records)
    if not series:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(series)[:MAX_METRIC_PLOTS]
    if len(series) > len(names):
        log.warning("plotting the first %d of %d metric series", len(names), len(series))
    x_label = _x_label(records)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    figure = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, cols, index + 1)
        for label, (xs, ys) in series[name].items():
            axes.plot(xs, ys, marker="." if len(xs) <= 50 else None, linewidth=1.2, label=label or None)
        if any(series[name]):
            axes.legend(fontsize=8)
        axes.set_title(name, fontsize=10)
        axes.set_xlabel(x_label)
        axes.grid(alpha=0.3)
    return figure


# --- the run report ---------------------------------------------------------------------------------------------


def _provenance(run_dir: Path, results: Mapping[str, Any], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    device = config.get("device") if isinstance(config.get("device"), dict) else {}
    where = device.get("device")
    if where and device.get("device_name"):
        where = f"{where} ({device['device_name']})"
    if where and device.get("dtype"):
        where = f"{where}, {device['dtype']}"
    if where and device.get("threads"):
        where = f"{where}, {device['threads']} threads"
    torch_version = device.get("torch_version")
    if torch_version and device.get("cuda_version"):
        torch_version = f"{torch_version} (CUDA {device['cuda_version']})"
    rows = [
        ("run", run_dir.name),
        ("scale", results.get("scale", config.get("scale"))),
        ("seed", results.get("seed", config.get("seed"))),
        ("package version", results.get("package_version", config.get("package_version"))),
        ("device", where),
        ("torch", torch_version),
        ("duration", _duration(results.get("duration_s"))),
        ("created", config.get("created")),
    ]
    return [{"field": key, "value": value} for key, value in rows]


def _table_rows(table: Any) -> list[dict]:
    """A results table as row dicts: a list of dicts as-is, a mapping as one row per key, anything else as values."""
    if isinstance(table, Mapping):
        return [{"key": key, **value} if isinstance(value, Mapping) else {"key": key, "value": value}
                for key, value in table.items()]
    if isinstance(table, list):
        return [dict(row) if isinstance(row, Mapping) else {"value": row} for row in table]
    return [{"value": table}]


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.rstrip()}\n"


def render_run_report(run_dir: str | os.PathLike) -> str:
    """The Markdown of a run's report (links relative to the run directory); nothing is written."""
    run_dir = Path(run_dir)
    results = io.read_json(run_dir / "results.json")
    config = _read_yaml(run_dir / "config.yaml")
    title = results.get("experiment") or config.get("experiment") or run_dir.name
    parts = [f"# {title}\n"]
    if results.get("description"):
        parts.append(f"{results['description']}\n")
    parts.append(_section("Provenance", markdown_table(_provenance(run_dir, results, config))))
    metrics = results.get("metrics") or {}
    if metrics:
        parts.append(_section("Final metrics", markdown_table(
            [{"metric": key, "value": value} for key, value in metrics.items()])))
    claims = results.get("claims") or []
    if claims:
        parts.append(_section("Paper vs this run", f"{claims_table(claims)}\n{claims_count(claims)}"))
    for name, table in (results.get("tables") or {}).items():
        parts.append(_section(f"Table: {name}", markdown_table(_table_rows(table))))
    extra = {key: value for key, value in results.items() if key not in _KNOWN_KEYS}
    if extra:
        parts.append(_section("Other results", markdown_table(
            [{"key": key, "value": value} for key, value in extra.items()])))
    figures = _figures(run_dir)
    if figures:
        parts.append(_section("Figures", "\n\n".join(f"![{path.stem}]({_link(path)})" for path in figures)))
    return "\n".join(parts)


def write_run_report(run_dir: str | os.PathLike) -> Path:
    """Write ``<run_dir>/figures/metrics.png`` (if there are numeric metrics) and ``<run_dir>/report.md``."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file():
        raise NotFoundError(f"no results.json in {run_dir}", "run `repro run ...` first")
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "figures" / METRICS_FIGURE)
    text = render_run_report(run_dir)
    io.atomic_write_text(run_dir / REPORT, text)
    return run_dir / REPORT


# --- the root report --------------------------------------------------------------------------------------------


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every run directory below ``root`` (a folder holding ``results.json``), sorted; hidden folders are skipped."""
    return _find_files(root, "results.json")


def find_unfinished_runs(root: str | os.PathLike) -> list[Path]:
    """Run directories below ``root`` that have a ``status.json`` but no ``results.json``: failed or interrupted."""
    finished = set(find_runs(root))
    return [path for path in _find_files(root, "status.json") if path not in finished]


def _find_files(root: str | os.PathLike, name: str) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(path.parent for path in root.rglob(name)
                  if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts))


def _headline(metrics: Mapping[str, Any]) -> str:
    return "; ".join(f"{name} = {format_value(value)}" for name, value in list(metrics.items())[:HEADLINE_METRICS])


def _run_summary(root: Path, run_dir: Path, results: Mapping[str, Any], error: str | None) -> dict[str, Any]:
    relative = run_dir.relative_to(root)
    state = _read_status(run_dir).get("state") or _EMPTY
    status = f"{state}, {_duration(results.get('duration_s'))}" if "duration_s" in results else state
    return {"experiment": results.get("experiment", relative.as_posix()),
            "run": f"[{run_dir.name}]({_link(relative / REPORT)})" if error is None else run_dir.name,
            "scale": results.get("scale"), "seed": results.get("seed"),
            "status / duration": status if error is None else f"report failed: {error}",
            "headline metrics": _headline(results.get("metrics") or {})}


def _run_section(root: Path, run_dir: Path, results: Mapping[str, Any], error: str | None) -> str:
    relative = run_dir.relative_to(root)
    title = f"{results.get('experiment', relative.as_posix())} · {run_dir.name}"
    lines = [f"`{relative.as_posix()}`"]
    if error is None:
        lines.append(f"[Full report]({_link(relative / REPORT)})")
    else:
        lines.append(f"The run's report could not be written: {error}")
    lines += [f"![{path.stem}]({_link(relative / path)})" for path in _figures(run_dir)]
    return _section(title, "\n\n".join(lines))


def _refresh(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """Rewrite a run's report; its results (empty if unreadable) and the error, if any."""
    try:
        write_run_report(run_dir)
    except Exception as error:  # one broken run must not hide the others
        log.warning("cannot write the report of %s: %s", run_dir, error)
        try:
            results = io.read_json(run_dir / "results.json")
        except (OSError, ValueError):
            results = {}
        return (results if isinstance(results, dict) else {}), f"{type(error).__name__}: {error}"
    return io.read_json(run_dir / "results.json"), None


def render_root_report(root: str | os.PathLike, runs: list[tuple[Path, Mapping[str, Any], str | None]],
                       problems: Sequence[Mapping[str, Any]] = ()) -> str:
    """The Markdown of a runs root's report from (run directory, results, error) triples.

    ``problems`` are rows for runs that failed, were interrupted or were planned but never started.
    """
    root = Path(root)
    parts = [f"# Reproduction report: {root.name or root}\n",
             f"{len(runs)} run{'s' if len(runs) != 1 else ''} below `{root.as_posix()}`.\n"]
    if problems:
        parts.append(_section("Failed, incomplete and missing runs", markdown_table(list(problems))))
    evidence = claims_over_seeds([run_dir for run_dir, _, _ in runs])
    if evidence:
        parts.append(_section("Claims over seeds", evidence))
    parts.append(_section("Runs", markdown_table([_run_summary(root, *run) for run in runs])))
    claim_rows = [{"experiment": results.get("experiment", run_dir.relative_to(root).as_posix()),
                   "run": run_dir.name, **_claim_row(claim)}
                  for run_dir, results, _ in runs for claim in results.get("claims") or []]
    all_claims = [claim for _, results, _ in runs for claim in results.get("claims") or []]
    if claim_rows:
        parts.append(_section("Paper vs this run", f"{markdown_table(claim_rows)}\n{claims_count(all_claims)}"))
    parts += [_run_section(root, *run) for run in runs]
    return "\n".join(parts)


def claims_over_seeds(run_dirs: Sequence[Path]) -> str:
    """Markdown: per group of runs that differ only in the seed, each claim's effect over the seeds and its verdict."""
    from .aggregate import group_by_config, group_title, read_run, summarise_claims, verdict_counts

    parts = []
    for group in group_by_config(read_run(run_dir) for run_dir in run_dirs):
        summaries = summarise_claims(group)
        if not summaries:
            continue
        counts = ", ".join(f"{count} {verdict}" for verdict, count in verdict_counts(summaries).items())
        parts.append(f"### {group_title(group)}\n\n{markdown_table([s.row() for s in summaries])}\n{counts}.\n")
    return "\n".join(parts)


def _problem_rows(root: Path, expected: Sequence[Path]) -> list[dict[str, Any]]:
    """A row for each unfinished run below ``root`` and each expected run directory that does not exist."""
    rows = []
    for run_dir in find_unfinished_runs(root):
        status = _read_status(run_dir)
        rows.append({"run": run_dir.relative_to(root).as_posix(), "state": status.get("state", "unknown"),
                     "error": status.get("error", "")})
    for run_dir in expected:
        if not Path(run_dir).exists():
            relative = Path(run_dir).relative_to(root) if Path(run_dir).is_relative_to(root) else Path(run_dir)
            rows.append({"run": relative.as_posix(), "state": "missing (never started)", "error": ""})
    return rows


def write_report(path: str | os.PathLike, expected: Sequence[Path] = ()) -> Path:
    """Report a run directory (``write_run_report``) or a runs root: refresh every run's report, then summarise.

    For a runs root, ``expected`` names run directories that should exist (a batch's plan): those that do not, and
    every run below the root that failed or was interrupted, are listed at the top of the report.
    """
    path = Path(path)
    if (path / "results.json").is_file():
        return write_run_report(path)
    run_dirs = find_runs(path)
    problems = _problem_rows(path, expected)
    if not run_dirs and not problems:
        raise NotFoundError(f"no results.json under {path}", "run `repro run ...` first")
    runs = [(run_dir, *_refresh(run_dir)) for run_dir in run_dirs]
    path.mkdir(parents=True, exist_ok=True)
    io.atomic_write_text(path / REPORT, render_root_report(path, runs, problems))
    return path / REPORT
