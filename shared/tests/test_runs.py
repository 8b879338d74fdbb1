"""The run lifecycle's guarantees: resume checks, honoured dtypes, provenance, file modes, failure logs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from repro_shared.data import DatasetSpec
from repro_shared.errors import ReproError
from repro_shared.experiments import Experiment
from repro_shared.launch import build_run_config
from repro_shared.logging import read_metrics
from repro_shared.runs import EXPERIMENT_DTYPE, RunDir, RunOptions, execute, git_state


@dataclass(frozen=True)
class StepsConfig:
    steps: int = 3
    fail_at: int = 0  # > 0: raise at this step
    dataset: str = ""  # non-empty: read this dataset through the run context


def run_steps(config: StepsConfig, ctx) -> dict:
    import torch

    if config.dataset:
        folder = ctx.locate_dataset(DatasetSpec(config.dataset, required_files=("a.txt", "b.txt")))
        assert (folder / "a.txt").exists()
    total = torch.zeros((), dtype=ctx.dtype)
    for step in range(1, config.steps + 1):
        if step == config.fail_at:
            raise RuntimeError(f"demo failure at step {step}")
        total += step
        ctx.log_metrics(step=step, total=float(total))
    return {"metrics": {"total": float(total), "dtype": str(total.dtype)}}


def experiment(**fields) -> Experiment:
    configs = {scale: StepsConfig() for scale in ("smoke", "quick", "paper")}
    return Experiment("steps", "sum the steps", configs, run_steps, package="demo-runs", **fields)


def run(exp: Experiment, tmp_path: Path, **options) -> RunDir:
    opts = RunOptions(scale="smoke", out=tmp_path / "runs", **options)
    return execute(exp, build_run_config(exp, opts), opts)


def config_of(run_dir: RunDir) -> dict:
    return yaml.safe_load(run_dir.config_path.read_text())


def test_explicit_dtype_is_refused_unless_the_experiment_honours_it(tmp_path):
    with pytest.raises(ReproError, match="--dtype bf16: demo-runs:steps does not honour it"):
        run(experiment(), tmp_path, dtype="bf16")
    with pytest.raises(ReproError, match=r"honours fp32\)"):
        run(experiment(dtypes=("fp32",)), tmp_path, dtype="fp16")
    assert not (tmp_path / "runs").exists()
    honoured = run(experiment(dtypes=("fp32", "bf16")), tmp_path, dtype="bfloat16")  # any spelling of bf16
    assert json.loads(honoured.results_path.read_text())["metrics"]["dtype"] == "torch.bfloat16"
    assert config_of(honoured)["device"]["dtype"] == "bfloat16"


def test_auto_dtype_of_an_experiment_that_declares_none_is_not_claimed(tmp_path):
    assert config_of(run(experiment(), tmp_path))["device"]["dtype"] == EXPERIMENT_DTYPE
    declared = run(experiment(dtypes=("fp32",)), tmp_path, name="declared")
    assert config_of(declared)["device"]["dtype"] == "float32"  # the CPU's policy dtype, which it honours
    own = run(experiment(dtypes=("fp32", "fp64"), own_dtype_under_auto=True), tmp_path, name="own")
    assert config_of(own)["device"]["dtype"] == EXPERIMENT_DTYPE  # auto: its config's dtype, not the policy's
    explicit = run(experiment(dtypes=("fp32", "fp64"), own_dtype_under_auto=True), tmp_path, name="x", dtype="fp64")
    assert config_of(explicit)["device"]["dtype"] == "float64"
    assert json.loads(explicit.results_path.read_text())["metrics"]["dtype"] == "torch.float64"


@pytest.mark.parametrize(("setting", "first", "second"), [
    ("threads", 1, 2), ("deterministic", False, True), ("dtype", "auto", "fp32"),
])
def test_resume_with_other_run_settings_is_refused(tmp_path, setting, first, second):
    exp = experiment(dtypes=("fp32",))
    run_dir = run(exp, tmp_path, **{setting: first})
    run_dir.set_status("failed")  # an incomplete run: resuming it would compute
    with pytest.raises(ReproError, match=f"was started with --{setting} {str(first).lower()}, not "):
        run(exp, tmp_path, resume=True, **{setting: second})
    assert run(exp, tmp_path, resume=True, **{setting: first}).is_complete()


def test_resume_on_another_device_is_refused(tmp_path):
    exp = experiment()
    run_dir = run(exp, tmp_path)
    run_dir.set_status("failed")
    record = config_of(run_dir)
    record["device"]["device"] = "cuda:0"  # as if started on a GPU machine
    run_dir.config_path.write_text(yaml.safe_dump(record))
    with pytest.raises(ReproError, match="was computed on cuda; this process would use cpu"):
        run(exp, tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_the_metrics_afresh(tmp_path):
    exp = experiment()
    straight = run(exp, tmp_path, name="straight")
    killed = run(exp, tmp_path, name="killed")
    killed.results_path.unlink()  # as a run killed after step 3 and before its results, with no checkpoint
    killed.set_status("running")
    with open(killed.metrics_path, "a") as handle:
        handle.write('{"step": 4, "to')  # torn by the kill
    run(exp, tmp_path, name="killed", resume=True)
    steps = [(r["step"], r["total"]) for r in read_metrics(killed.metrics_path)]
    assert steps == [(r["step"], r["total"]) for r in read_metrics(straight.metrics_path)] == [
        (1, 1.0), (2, 3.0), (3, 6.0)]


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        run_dir = run(experiment(), tmp_path)
    finally:
        os.umask(old)
    for path in (run_dir.config_path, run_dir.results_path, run_dir.status_path, run_dir.path / "report.md"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_a_failed_run_logs_its_traceback_to_run_log_only(tmp_path, capsys):
    from repro_shared.logging import setup_logging

    setup_logging()  # a console handler on this test's stderr (an earlier test's may hold a closed capture)
    exp = experiment()
    opts = RunOptions(scale="smoke", out=tmp_path / "runs", overrides={"fail_at": "2"})
    with pytest.raises(RuntimeError, match="demo failure at step 2"):
        execute(exp, build_run_config(exp, opts), opts)
    run_dir = RunDir.for_experiment(tmp_path / "runs", exp, "smoke-seed0")
    log = run_dir.log_path.read_text()
    assert "Traceback (most recent call last)" in log and "in run_steps" in log
    assert log.rstrip().endswith("RuntimeError: demo failure at step 2")
    assert "Traceback" not in capsys.readouterr().err  # the console keeps the CLI's one-line error
    assert run_dir.status()["state"] == "failed"


def test_config_records_code_library_and_data_provenance(tmp_path, monkeypatch):
    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    (data / "a.txt").write_bytes(b"alpha\n")
    (data / "b.txt").write_bytes(b"")
    exp = experiment()
    opts = RunOptions(scale="smoke", out=tmp_path / "runs", data_dir=tmp_path / "data", overrides={"dataset": "set"})
    monkeypatch.chdir(tmp_path)  # outside any git repository
    provenance = config_of(execute(exp, build_run_config(exp, opts), opts))["provenance"]
    assert provenance["git"] is None
    assert provenance["versions"]["torch"] and provenance["versions"]["repro-shared"]
    assert provenance["data_files"] == {
        str((data / "a.txt").resolve()): {"sha256": hashlib.sha256(b"alpha\n").hexdigest(), "bytes": 6},
        # the SHA-256 of nothing, a well-known constant
        str((data / "b.txt").resolve()): {"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                          "bytes": 0},
    }


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "c"], check=True)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (tmp_path / "untracked").write_text("x")
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f").write_text("2")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}


def test_library_versions_include_imported_optional_libraries(tmp_path, monkeypatch):
    import types

    monkeypatch.setitem(__import__("sys").modules, "peft", types.SimpleNamespace(__version__="9.9.9"))
    provenance = config_of(run(experiment(), tmp_path))["provenance"]
    assert provenance["versions"]["peft"] == "9.9.9"
    assert "diffusers" not in provenance["versions"] or "diffusers" in __import__("sys").modules


def test_bad_run_options_are_refused_before_anything_is_created(tmp_path):
    exp = experiment()
    file = tmp_path / "file"
    file.write_text("")
    for options, message in [
        ({"name": "../escape"}, "--name '../escape': not a plain directory name"),
        ({"name": "a/b"}, "not a plain directory name"),
        ({"seed": -1}, "--seed -1: out of range"),
        ({"seed": 2**32}, "out of range"),
        ({"out": file}, "is a file, not a directory"),
        ({"out": file / "sub"}, "is a file, not a directory"),
    ]:
        opts = dataclasses.replace(RunOptions(scale="smoke", out=tmp_path / "runs"), **options)
        with pytest.raises(ReproError, match=message):
            execute(exp, build_run_config(exp, opts), opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert run(exp, tmp_path, seed=2**32 - 1).is_complete()  # the largest seed numpy takes
