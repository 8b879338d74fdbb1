"""Seeds as separate runs, `repro report` over seeds, `repro run --all` and `repro reproduce` surviving failures."""

from __future__ import annotations

import json

import pytest
from repro_shared.cli import main, parse_seeds
from repro_shared.errors import ReproError

FAILING = "broken=demo_experiments:failing_experiments"


@pytest.fixture(autouse=True)
def demo_packages_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--all` and `reproduce` see the demo plugins only, not the paper packages installed beside repro-shared."""
    from repro_shared import experiments

    monkeypatch.setattr(experiments.metadata, "entry_points", lambda group: [])


def test_parse_seeds() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,1,7") == [3, 1, 7]
    assert parse_seeds("0-2,9") == [0, 1, 2, 9]
    for bad in ("4-1", "a", "1,1", ""):
        with pytest.raises(ReproError):
            parse_seeds(bad)


def test_seeds_are_separate_runs_and_report_prints_verdicts(demo_env, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    args = ["run", "demo:coin", "--scale", "smoke", "--seeds", "0-2", "--set", "effect=3", "--out", str(runs)]
    assert main(args) == 0
    names = sorted(path.name for path in (runs / "demo" / "coin").iterdir())
    assert names == ["smoke-seed0", "smoke-seed1", "smoke-seed2"]
    capsys.readouterr()
    assert main(["report", str(runs)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "the treatment raises the score" in line)
    assert "(n=3)" in line and line.rstrip().endswith("reproduced")
    report = (runs / "report.md").read_text()
    assert "## Claims over seeds" in report and "demo:coin · smoke · seeds 0, 1, 2" in report


def test_reversed_effect_is_contradicted(demo_env, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["run", "demo:coin", "--scale", "smoke", "--seeds", "0-2", "--set", "effect=-3",
                 "--out", str(runs)]) == 0
    capsys.readouterr()
    assert main(["report", str(runs)]) == 0
    assert "contradicted" in capsys.readouterr().out


def test_report_of_runs_with_different_configs_is_refused(demo_env, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["run", "demo:coin", "--scale", "smoke", "--seed", "0", "--out", str(runs)]) == 0
    assert main(["run", "demo:coin", "--scale", "smoke", "--seed", "1", "--set", "items=12", "--out", str(runs),
                 "--name", "other"]) == 0
    capsys.readouterr()
    coin = runs / "demo" / "coin"
    assert main(["report", str(coin / "smoke-seed0"), str(coin / "other")]) == 2
    err = capsys.readouterr().err
    assert "differ in items 10 vs 12" in err and len(err.strip().splitlines()) == 1


def test_run_all_survives_any_exception_and_rerun_skips_complete_runs(demo_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_EXPERIMENTS", f"{demo_env['REPRO_EXPERIMENTS']},{FAILING}")
    runs = tmp_path / "runs"
    assert main(["run", "--all", "--scale", "smoke", "--out", str(runs)]) == 1
    err = capsys.readouterr().err
    assert "broken:boom (smoke-seed0): failed: ZeroDivisionError: boom" in err
    assert "2 of 4 runs failed: broken:boom (smoke-seed0), demo:needs-data (smoke-seed0)" in err
    line = runs / "demo" / "line" / "smoke-seed0" / "results.json"
    assert line.exists() and (runs / "demo" / "coin" / "smoke-seed0" / "results.json").exists()
    report = (runs / "report.md").read_text()
    assert "## Failed, incomplete and missing runs" in report
    assert "broken/boom/smoke-seed0 | failed | ZeroDivisionError: boom" in report
    assert "demo/needs-data/smoke-seed0 | missing (never started)" in report  # failed in preflight: no directory
    before = line.stat().st_mtime_ns
    assert main(["run", "--all", "--scale", "smoke", "--out", str(runs)]) == 1  # no --resume needed
    assert line.stat().st_mtime_ns == before  # the complete run was skipped, not redone


def test_run_all_resumes_an_incomplete_run(demo_env, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(["run", "demo:line", "--scale", "smoke", "--out", str(runs)]) == 0
    run = runs / "demo" / "line" / "smoke-seed0"
    (run / "results.json").unlink()
    (run / "status.json").write_text('{"state": "running"}')
    main(["run", "--all", "--scale", "smoke", "--out", str(runs)])
    assert json.loads((run / "status.json").read_text())["state"] == "complete"


def test_reproduce_runs_tours_over_their_seeds_and_names_failures(demo_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_EXPERIMENTS", f"{demo_env['REPRO_EXPERIMENTS']},{FAILING}")
    runs = tmp_path / "runs"
    assert main(["reproduce", "--out", str(runs), "--list"]) == 0
    planned = capsys.readouterr().out.splitlines()
    assert len(planned) == 4 and all("tour-seed" in line for line in planned)  # boom x1, coin x3: only tours
    assert main(["reproduce", "--out", str(runs)]) == 1
    captured = capsys.readouterr()
    assert "1 of 4 runs failed: broken:boom (tour-seed0)" in captured.err
    assert "demo:coin · tour · seeds 0, 1, 2" in captured.out
    assert "the treatment raises the score" in captured.out and "n/a (no effect measured)" in captured.out
    assert sorted(p.name for p in (runs / "demo" / "coin").iterdir()) == ["tour-seed0", "tour-seed1", "tour-seed2"]
    assert main(["reproduce", "--out", str(runs), "--packages", "demo"]) == 0  # complete runs reused
    assert "demo:coin · tour" in capsys.readouterr().out
    assert main(["reproduce", "--packages", "nope"]) == 2
