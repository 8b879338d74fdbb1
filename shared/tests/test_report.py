"""Reports: Markdown tables, the claims table, run and root reports, the metrics figure, and atomic writes."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from repro_shared import report
from repro_shared.errors import NotFoundError
from repro_shared.experiments import Claim
from repro_shared.logging import read_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A valid 1x1 PNG, standing in for a figure an experiment saved.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a5a40000000049454e44ae426082")

CLAIMS = [
    {"name": "robust acc drops", "paper_value": 0.5, "measured_value": 0.48123, "direction_holds": True,
     "note": "a | b"},
    {"name": "clean acc rises", "paper_value": "+3 pts", "measured_value": -1.25, "direction_holds": False,
     "note": ""},
    {"name": "runtime", "paper_value": None, "measured_value": 12, "direction_holds": None, "note": "not comparable"},
]


def make_run(run_dir: Path, experiment: str = "pkg:exp", claims: list[dict] | None = None,
             metrics_lines: list[dict] | None = None, **extra: Any) -> Path:
    """A run directory as ``repro run`` leaves it, written by hand."""
    run_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "experiment": experiment, "description": "A test experiment.", "package_version": "0.1.0",
        "scale": "smoke", "seed": 3, "duration_s": 75.5,
        "metrics": {"accuracy": 0.912345, "loss": 0.25, "epochs": 10, "best": "model|b", "extra": 1.0},
        "claims": CLAIMS if claims is None else claims,
        "tables": {"sweep": [{"eps": 0.1, "acc": 0.9}, {"eps": 0.2, "acc": 0.81234567, "note": "x|y"},
                             {"steps": 100}]},
        **extra,
    }
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    config = {"experiment": experiment, "package_version": "0.1.0", "scale": "smoke", "seed": 3, "config": {"lr": 0.1},
              "overrides": {}, "options": {}, "command": "repro run pkg:exp", "created": "2025-01-02T03:04:05+00:00",
              "device": {"device": "cpu", "dtype": "float32", "threads": 2, "torch_version": "2.13.0",
                         "cuda_version": None, "device_name": "x86_64"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (run_dir / "status.json").write_text(json.dumps({"state": "complete"}), encoding="utf-8")
    if metrics_lines is None:
        metrics_lines = [{"step": step, "time": 0.1 * step, "loss": 1.0 / (step + 1), "phase": "train"}
                         for step in range(5)] + [{"step": 4, "time": 1.0, "val_acc": 0.7}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in metrics_lines),
                                           encoding="utf-8")
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    (figures / "curve one.png").write_bytes(TINY_PNG)
    return run_dir


def links(markdown: str, images_only: bool = False) -> list[str]:
    pattern = r"!\[[^\]]*\]\(([^)]+)\)" if images_only else r"\]\(([^)]+)\)"
    return [unquote(target) for target in re.findall(pattern, markdown)]


def assert_links_resolve(report_path: Path) -> list[str]:
    targets = links(report_path.read_text(encoding="utf-8"))
    assert targets
    for target in targets:
        assert not Path(target).is_absolute()
        assert (report_path.parent / target).is_file(), target
    return targets


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE) and data.startswith(PNG_SIGNATURE)


def temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*.tmp")]


# --- helpers ----------------------------------------------------------------------------------------------------


def test_markdown_table_unions_columns_formats_numbers_and_escapes_pipes() -> None:
    table = report.markdown_table([{"a": 1, "b": 0.123456}, {"c": "x|y", "a": 2.5e-7}, {"b": None, "d": True}])
    assert table.splitlines() == [
        "| a | b | c | d |",
        "|---|---|---|---|",
        "| 1 | 0.1235 |  |  |",
        "| 2.5e-07 |  | x\\|y |  |",
        "|  | — |  | true |",
    ]


def test_markdown_table_keeps_rows_on_one_line_and_handles_no_rows() -> None:
    assert report.markdown_table([{"k": "two\nlines"}]).splitlines()[-1] == "| two<br>lines |"
    assert report.markdown_table([]) == "_(no rows)_\n"


def test_format_value_ints_as_is_and_four_significant_digits() -> None:
    assert [report.format_value(v) for v in (123456789, 1234.5678, 0.000123456, 2.0, -1.5)] == [
        "123456789", "1235", "0.0001235", "2", "-1.5"]
    when = datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)
    assert report.format_value(when) == "2025-01-02 00:00:00+00:00"
    assert report.format_value({"at": when, "n": 1}) == '{"at": "2025-01-02 00:00:00+00:00", "n": 1}'


def test_claims_table_rows_and_directions() -> None:
    lines = report.claims_table(CLAIMS).splitlines()
    assert lines[0] == "| claim | paper | this run | same direction | note |"
    assert lines[2:] == [
        "| robust acc drops | 0.5 | 0.4812 | ✓ | a \\| b |",
        "| clean acc rises | +3 pts | -1.25 | ✗ |  |",
        "| runtime | — | 12 | n/a | not comparable |",
    ]


def test_claims_table_accepts_claim_objects() -> None:
    claim = Claim("c", 1.0, 2.0, True, "n")
    assert report.claims_table([claim]).splitlines()[-1] == "| c | 1 | 2 | ✓ | n |"
    assert report.claims_count([claim]) == "1 of 1 claims hold their direction."


def test_claims_count_counts_only_holding_claims() -> None:
    assert report.claims_count(CLAIMS) == "1 of 3 claims hold their direction (1 not comparable)."


def test_metric_series_uses_step_or_record_index_and_skips_non_numbers() -> None:
    records = [{"step": None, "time": 0.0, "a": 1.0, "s": "text", "flag": True},
               {"step": None, "time": 0.1, "a": float("nan"), "b": 2},
               {"step": None, "time": 0.2, "a": 3.0}]
    assert report.metric_series(records) == {"a": {"text": ([0], [1.0]), "": ([2], [3.0])}, "b": {"": ([1], [2.0])}}
    stepped = [{"step": 10, "time": 0.0, "a": 1.0}, {"step": 20, "time": 0.1, "a": 0.5}]
    assert report.metric_series(stepped) == {"a": {"": ([10, 20], [1.0, 0.5])}}


def test_metric_series_draws_one_line_per_model_and_never_plots_counters() -> None:
    records = [{"step": step, "time": 0.1 * step, "iteration": step, "epoch": 0, "model": model, "loss": loss}
               for step, model, loss in [(1, "armin", 0.5), (1, "lstm", 0.9), (2, "armin", 0.2), (2, "lstm", 0.7)]]
    assert report.metric_series(records) == {"loss": {"armin": ([1, 2], [0.5, 0.2]), "lstm": ([1, 2], [0.9, 0.7])}}
    # an integer index that counts records (certified-pruning's image=...) is the x axis, not a metric
    indexed = [{"image": i, "seconds": s, "status": "verified"} for i, s in [(3, 0.5), (4, 0.25), (5, 1.0)]]
    assert report.metric_series(indexed) == {"seconds": {"verified": ([3, 4, 5], [0.5, 0.25, 1.0])}}
    # an integer metric that does not count records is plotted
    counts = [{"step": 1, "correct": 7}, {"step": 2, "correct": 7}, {"step": 3, "correct": 9}]
    assert report.metric_series(counts) == {"correct": {"": ([1, 2, 3], [7.0, 7.0, 9.0])}}


def test_metrics_figure_has_one_panel_per_metric_and_one_line_per_model(tmp_path: Path) -> None:
    from repro_shared.io import append_jsonl

    append_jsonl(tmp_path / "metrics.jsonl", [
        {"step": s, "time": s, "epoch": 1, "model": m, "loss": 1 / (s + i), "acc": s * 0.1}
        for s in range(1, 4) for i, m in enumerate(("armin", "lstm", "gru"))])
    figure = report.plot_metrics(tmp_path / "metrics.jsonl", tmp_path / "m.png")
    assert figure is not None and figure.read_bytes()[:4] == b"\x89PNG"
    records = read_metrics(tmp_path / "metrics.jsonl")
    panels = {axes.get_title(): [line.get_label() for line in axes.get_lines()]
              for axes in report.metrics_figure(records).axes}
    assert panels == {"loss": ["armin", "lstm", "gru"], "acc": ["armin", "lstm", "gru"]}
    assert report.metrics_figure(records).axes[0].get_xlabel() == "step"


def test_import_is_light() -> None:
    code = "import sys, repro_shared.report; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- run reports ------------------------------------------------------------------------------------------------


def test_run_report_contents(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    path = report.write_run_report(run_dir)
    assert path == run_dir / "report.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# pkg:exp\n")
    assert "A test experiment." in text
    for row in ("| scale | smoke |", "| seed | 3 |", "| package version | 0.1.0 |",
                "| device | cpu (x86_64), float32, 2 threads |", "| torch | 2.13.0 |", "| duration | 1 min 16 s |",
                "| created | 2025-01-02T03:04:05+00:00 |"):
        assert row in text, row
    assert "| metric | value |" in text
    for row in ("| accuracy | 0.9123 |", "| epochs | 10 |", "| best | model\\|b |", "| extra | 1 |"):
        assert row in text, row
    assert "## Paper vs this run" in text
    assert "| robust acc drops | 0.5 | 0.4812 | ✓ | a \\| b |" in text
    assert "| clean acc rises | +3 pts | -1.25 | ✗ |  |" in text
    assert "| runtime | — | 12 | n/a | not comparable |" in text
    assert "1 of 3 claims hold their direction (1 not comparable)." in text
    sweep = text.split("## Table: sweep\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert sweep == ["| eps | acc | note | steps |", "|---|---|---|---|", "| 0.1 | 0.9 |  |  |",
                     "| 0.2 | 0.8123 | x\\|y |  |", "|  |  |  | 100 |"]


def test_run_report_embeds_every_figure_with_relative_links(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    (run_dir / "figures" / "sub").mkdir()
    (run_dir / "figures" / "sub" / "deep.png").write_bytes(TINY_PNG)
    path = report.write_run_report(run_dir)
    assert_png(run_dir / "figures" / "metrics.png")
    images = links(path.read_text(encoding="utf-8"), images_only=True)
    assert sorted(images) == ["figures/curve one.png", "figures/metrics.png", "figures/sub/deep.png"]
    assert_links_resolve(path)


def test_metrics_plot_vs_record_index_when_step_is_null(tmp_path: Path) -> None:
    lines = [{"step": None, "time": 0.1 * i, "loss": 1.0 - 0.1 * i} for i in range(4)]
    run_dir = make_run(tmp_path / "run", metrics_lines=lines)
    report.write_run_report(run_dir)
    assert_png(run_dir / "figures" / "metrics.png")


def test_no_numeric_metrics_means_no_metrics_figure(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", metrics_lines=[{"step": 0, "time": 0.0, "phase": "setup"}], claims=[])
    text = report.write_run_report(run_dir).read_text(encoding="utf-8")
    assert not (run_dir / "figures" / "metrics.png").exists()
    assert "metrics.png" not in text
    assert "Paper vs this run" not in text


def test_run_report_without_config_or_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "bare"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"experiment": "p:e", "metrics": {"m": 1}, "custom": [1, 2]}))
    text = report.write_run_report(run_dir).read_text(encoding="utf-8")
    assert text.startswith("# p:e\n")
    assert "| m | 1 |" in text
    assert "| custom | [1, 2] |" in text
    assert not (run_dir / "figures").exists()


def test_write_report_on_a_run_dir_writes_the_run_report(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    assert report.write_report(run_dir) == run_dir / "report.md"
    assert (run_dir / "report.md").read_text(encoding="utf-8").startswith("# pkg:exp\n")


# --- root reports -----------------------------------------------------------------------------------------------


def test_root_report_finds_nested_runs(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    first = make_run(root / "alpha" / "exp1" / "smoke-seed0", experiment="alpha:exp1")
    second = make_run(root / "beta" / "exp2" / "nested" / "deeper" / "quick-seed1", experiment="beta:exp2",
                      claims=[{"name": "gap | closes", "paper_value": 0.1, "measured_value": 0.2,
                               "direction_holds": True, "note": ""}])
    hidden = make_run(root / "alpha" / "exp1" / ".partial-run", experiment="alpha:hidden")
    path = report.write_report(root)
    assert path == root / "report.md"
    text = path.read_text(encoding="utf-8")
    for run_dir in (first, second):
        assert (run_dir / "report.md").is_file()
        assert_png(run_dir / "figures" / "metrics.png")
    assert not (hidden / "report.md").exists()
    assert "alpha:hidden" not in text
    assert "| experiment | run | scale | seed | status / duration | headline metrics |" in text
    assert ("| alpha:exp1 | [smoke-seed0](alpha/exp1/smoke-seed0/report.md) | smoke | 3 | complete, 1 min 16 s | "
            "accuracy = 0.9123; loss = 0.25; epochs = 10; best = model\\|b |") in text
    assert "| experiment | run | claim | paper | this run | same direction | note |" in text
    assert "| alpha:exp1 | smoke-seed0 | clean acc rises | +3 pts | -1.25 | ✗ |  |" in text
    assert "| beta:exp2 | quick-seed1 | gap \\| closes | 0.1 | 0.2 | ✓ |  |" in text
    assert "2 of 4 claims hold their direction (1 not comparable)." in text
    targets = assert_links_resolve(path)
    assert "alpha/exp1/smoke-seed0/report.md" in targets
    assert "beta/exp2/nested/deeper/quick-seed1/report.md" in targets
    assert "beta/exp2/nested/deeper/quick-seed1/figures/metrics.png" in targets
    assert "alpha/exp1/smoke-seed0/figures/curve one.png" in targets
    assert text.index("alpha:exp1 · smoke-seed0") < text.index("beta:exp2 · quick-seed1")


def test_root_report_survives_a_broken_run(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root / "a" / "e" / "good")
    broken = root / "a" / "e" / "broken"
    broken.mkdir(parents=True)
    (broken / "results.json").write_text("{not json", encoding="utf-8")
    text = report.write_report(root).read_text(encoding="utf-8")
    assert "report failed: JSONDecodeError" in text
    assert "[good](a/e/good/report.md)" in text


@pytest.mark.parametrize("make_path", [lambda tmp: tmp, lambda tmp: tmp / "missing"])
def test_no_results_is_a_not_found_error(tmp_path: Path, make_path: Any) -> None:
    (tmp_path / "empty-subdir").mkdir()
    path = make_path(tmp_path)
    with pytest.raises(NotFoundError) as info:
        report.write_report(path)
    assert info.value.message == f"no results.json under {path}"
    assert info.value.hint == "run `repro run ...` first"
    assert not (tmp_path / "report.md").exists()


# --- atomic writes ----------------------------------------------------------------------------------------------


def test_interrupted_report_write_keeps_the_previous_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_run(tmp_path / "run")
    (run_dir / "report.md").write_text("old report\n", encoding="utf-8")
    real_replace = os.replace

    def interrupted_replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "report.md":
            assert Path(src).read_text(encoding="utf-8").startswith("# pkg:exp")  # the new text was written
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        report.write_run_report(run_dir)
    assert (run_dir / "report.md").read_text(encoding="utf-8") == "old report\n"
    assert temp_files(run_dir) == []


def test_interrupted_figure_write_keeps_the_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    run_dir = make_run(tmp_path / "run")
    report.write_run_report(run_dir)
    old_png = (run_dir / "figures" / "metrics.png").read_bytes()
    (run_dir / "report.md").write_text("old report\n", encoding="utf-8")

    def failing_savefig(self: Figure, target: Any, **kwargs: Any) -> None:
        target.write(PNG_SIGNATURE)
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(OSError, match="disk full"):
        report.write_run_report(run_dir)
    assert (run_dir / "figures" / "metrics.png").read_bytes() == old_png
    assert (run_dir / "report.md").read_text(encoding="utf-8") == "old report\n"
    assert temp_files(run_dir) == []


def test_interrupted_root_report_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "runs"
    make_run(root / "p" / "e" / "r")
    (root / "report.md").write_text("old root\n", encoding="utf-8")
    real_replace = os.replace

    def interrupted_replace(src: Any, dst: Any) -> None:
        if Path(dst) == root / "report.md":
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(OSError, match="killed"):
        report.write_report(root)
    assert (root / "report.md").read_text(encoding="utf-8") == "old root\n"
    assert (root / "p" / "e" / "r" / "report.md").is_file()
    assert temp_files(root) == []
