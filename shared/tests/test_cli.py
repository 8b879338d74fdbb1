"""The `repro` command as a user meets it: list, run, resume, report, doctor, and one-line errors for bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml
from repro_shared.cli import main
from repro_shared.logging import read_metrics


def test_list_shows_registered_experiments(demo_env, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "demo:line" in out and "demo:needs-data" in out


def test_run_writes_config_metrics_results_and_report(demo_env, tmp_path, capsys):
    assert main(["run", "demo:line", "--scale", "smoke", "--seed", "3", "--out", str(tmp_path)]) == 0
    run = tmp_path / "demo" / "line" / "smoke-seed3"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["experiment"] == "demo:line" and config["seed"] == 3 and config["config"]["steps"] == 10
    assert config["device"]["device"] == "cpu"
    assert [record["step"] for record in read_metrics(run / "metrics.jsonl")] == list(range(1, 11))
    results = json.loads((run / "results.json").read_text())
    assert results["claims"][0]["direction_holds"] is True and results["metrics"]["slope"] > 0
    assert json.loads((run / "status.json").read_text())["state"] == "complete"
    report = (run / "report.md").read_text()
    assert "| slope is positive |" in report and "figures/fit.png" in report
    assert (run / "figures" / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_results(demo_env, tmp_path):
    for name in ("a", "b"):
        assert main(["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path), "--name", name]) == 0
    a, b = (json.loads((tmp_path / "demo" / "line" / n / "results.json").read_text())["metrics"] for n in "ab")
    assert a == b


def test_existing_run_is_never_overwritten(demo_env, tmp_path, capsys):
    args = ["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path)]
    assert main(args) == 0
    before = (tmp_path / "demo" / "line" / "smoke-seed0" / "results.json").read_text()
    assert main(args) == 2
    assert "exists already" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # complete already: nothing to do
    assert (tmp_path / "demo" / "line" / "smoke-seed0" / "results.json").read_text() == before


def test_resume_after_kill_gives_the_uninterrupted_result(demo_env, tmp_path):
    base = ["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path), "--set", "steps=30"]
    assert main([*base, "--name", "straight"]) == 0
    process = subprocess.Popen([sys.executable, "-m", "repro_shared.cli", *base, "--name", "killed",
                                "--set", "sleep_per_step=0.2"], env=demo_env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "demo" / "line" / "killed" / "metrics.jsonl"
    deadline = time.time() + 600  # generous: starting Python with torch on a loaded 2-core CI machine is slow
    while len(read_metrics(metrics)) < 12 and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert process.poll() is None, "the run ended before it could be killed"
    assert len(read_metrics(metrics)) >= 12, "the run wrote fewer than 12 steps in 600 s"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = tmp_path / "demo" / "line" / "killed"
    assert not (killed / "results.json").exists() and (killed / "checkpoints" / "last.pt").exists()
    assert json.loads((killed / "status.json").read_text())["state"] == "running"
    # resume with the same settings (sleep does not change the numbers, but the config must match)
    assert main([*base, "--name", "killed", "--set", "sleep_per_step=0.2", "--resume"]) == 0
    straight = tmp_path / "demo" / "line" / "straight"
    for run in (straight, killed):
        assert json.loads((run / "status.json").read_text())["state"] == "complete"
    load = lambda run: json.loads((run / "results.json").read_text())["metrics"]  # noqa: E731
    assert load(killed) == load(straight)
    steps = lambda run: [(r["step"], r["loss"]) for r in read_metrics(run / "metrics.jsonl")]  # noqa: E731
    assert steps(killed) == steps(straight)


def test_resume_with_other_settings_is_refused(demo_env, tmp_path, capsys):
    args = ["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path)]
    assert main(args) == 0
    (tmp_path / "demo" / "line" / "smoke-seed0" / "status.json").write_text('{"state": "failed"}')
    assert main([*args, "--resume", "--set", "steps=11"]) == 2
    assert "different config" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["run", "demo:nope"], "unknown experiment 'demo:nope'"),
    (["run", "nope:line"], "no installed package 'nope'"),
    (["run", "demo:line", "--set", "stepz=3"], "unknown config key 'stepz'"),
    (["run", "demo:line", "--set", "steps=many"], "steps='many' is not a valid int"),
    (["run", "demo:line", "--set", "steps=0"], "must be at least 1"),
    (["run", "demo:line", "--scale", "huge"], "invalid choice"),
    (["run", "demo:line", "--grid", "seed=a,b"], "a seed is an integer"),
    (["run", "demo:needs-data"], "demo-set"),
    (["run", "demo:line", "--device", "cuda"], "CUDA is not available"),
    (["run"], "no experiment given"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(demo_env, run_cli, tmp_path, args, message):
    result = run_cli([*args, "--out", str(tmp_path / "runs")] if args[0] == "run" else args, demo_env, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_data_names_where_it_looked(demo_env, tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    assert main(["run", "demo:needs-data", "--data-dir", str(empty), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "demo-set" in err and str(empty) in err
    (empty / "demo-set").mkdir()
    (empty / "demo-set" / "rows.txt").write_text("a b c")
    assert main(["run", "demo:needs-data", "--data-dir", str(empty), "--out", str(tmp_path / "runs")]) == 0
    results = tmp_path / "runs" / "demo" / "needs-data" / "quick-seed0" / "results.json"
    assert json.loads(results.read_text())["metrics"] == {"rows": 3}


def test_run_all_and_root_report(demo_env, tmp_path, monkeypatch):
    data = tmp_path / "data" / "demo-set"
    data.mkdir(parents=True)
    (data / "rows.txt").write_text("x")
    monkeypatch.setenv("REPRO_DATA_DIR", "")  # restored after the test: --data-dir sets it for library code
    runs = tmp_path / "runs"
    assert main(["run", "--all", "--scale", "smoke", "--out", str(runs), "--data-dir", str(tmp_path / "data")]) == 0
    report = (runs / "report.md").read_text()
    assert "demo:line" in report and "demo:needs-data" in report
    assert "slope is positive" in report and "1 of 1 claims hold their direction" in report
    assert main(["run", "--all", "--scale", "smoke", "--out", str(runs)]) == 0  # complete runs are skipped
    assert main(["report", str(runs)]) == 0


def test_grid_through_submitit_local_executor(demo_env, run_cli, tmp_path):
    result = run_cli(["run", "demo:line", "--scale", "smoke", "--grid", "seed=1,2", "--grid", "learning_rate=0.05",
                      "--launcher", "submitit-local", "--out", str(tmp_path / "runs")], demo_env, tmp_path)
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "runs" / "demo" / "line").iterdir())
    assert runs == ["smoke-seed1-learning_rate=0.05", "smoke-seed2-learning_rate=0.05"]
    for name in runs:
        config = yaml.safe_load((tmp_path / "runs" / "demo" / "line" / name / "config.yaml").read_text())
        assert config["config"]["learning_rate"] == 0.05


def test_help_everywhere(demo_env, capsys):
    for args in (["--help"], ["run", "--help"], ["report", "--help"], ["list", "--help"], ["doctor", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_doctor_reports_this_machine_truthfully(demo_env, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "selected (--device auto)" in out and "cpu" in out
    assert "offline (HF_HUB_OFFLINE=1)" in out
    assert "demo" in out


@pytest.mark.gpu
def test_auto_runs_on_the_gpu_without_code_changes(demo_env, tmp_path):
    import torch

    assert main(["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path)]) == 0
    device = yaml.safe_load((tmp_path / "demo" / "line" / "smoke-seed0" / "config.yaml").read_text())["device"]
    assert device["device"].startswith("cuda")
    assert device["dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float32")


def test_non_zero_ranks_of_a_multi_process_launch_write_nothing(demo_env, tmp_path, monkeypatch):
    args = ["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path)]
    assert main(args) == 0  # rank 0 (no RANK set): creates and completes the run
    run = tmp_path / "demo" / "line" / "smoke-seed0"
    before = {path: path.stat().st_mtime_ns for path in run.rglob("*")}
    monkeypatch.setenv("RANK", "1")
    assert main(args) == 0  # rank 1 of the same launch: no "exists already", no file touched
    assert {path: path.stat().st_mtime_ns for path in run.rglob("*")} == before
