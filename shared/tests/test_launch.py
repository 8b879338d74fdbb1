"""SLURM submission as a cluster sees it: a fake `sbatch` on PATH records each job's arguments and script."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

FAKE_SBATCH = """#!/bin/sh
# a stand-in for SLURM's sbatch: keep the arguments and the job script, answer like `sbatch --parsable`
n=$(find "$SBATCH_LOG" -name '*.args' | wc -l)
echo "$@" > "$SBATCH_LOG/$n.args"
for last; do :; done
cp "$last" "$SBATCH_LOG/$n.script"
echo "$((4200 + n))"
"""


@pytest.fixture
def fake_sbatch(demo_env, tmp_path):
    """``demo_env`` with a fake ``sbatch`` first on PATH; the submitted jobs land in the returned folder."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch-log"
    bin_dir.mkdir()
    log.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH)
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IXUSR)
    env = {**demo_env, "PATH": f"{bin_dir}{os.pathsep}{demo_env['PATH']}", "SBATCH_LOG": str(log)}
    return env, log


def repro(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repro_shared.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


SLURM_FLAGS = ["--launcher", "slurm", "--slurm-partition", "gpu-a100", "--slurm-account", "proj42",
               "--slurm-time-min", "90", "--slurm-gpus", "2", "--slurm-cpus", "6", "--slurm-mem-gb", "40"]
DIRECTIVES = ["#SBATCH --partition=gpu-a100", "#SBATCH --account=proj42", "#SBATCH --time=90",
              "#SBATCH --gpus-per-node=2", "#SBATCH --cpus-per-task=6", "#SBATCH --mem=40G"]


def submitted(log: Path) -> list[tuple[str, str]]:
    return [((log / f"{n}.args").read_text(), (log / f"{n}.script").read_text())
            for n in range(len(list(log.glob("*.args"))))]


def test_every_grid_job_gets_the_slurm_resources(fake_sbatch, tmp_path):
    env, log = fake_sbatch
    out = tmp_path / "runs"
    result = repro(["run", "demo:line", "--scale", "smoke", "--grid", "seed=1,2", "--set", "steps=3",
                    "--out", str(out), *SLURM_FLAGS], env, tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = submitted(log)
    assert len(jobs) == 2
    for seed, (args, script) in zip((1, 2), jobs, strict=True):
        assert args.startswith("--parsable ")
        for directive in DIRECTIVES:
            assert directive in script.splitlines(), (directive, script)
        command = script.strip().splitlines()[-1]
        assert command.startswith("exec ") and "demo:line" in command and f"--seed {seed}" in command
        assert "--set steps=3" in command and f"--name smoke-seed{seed}" in command
    assert "submitted SLURM job 4200" in result.stderr and "submitted SLURM job 4201" in result.stderr
    assert result.stdout.split() == [str(out / "demo" / "line" / f"smoke-seed{seed}") for seed in (1, 2)]


def test_a_slurm_job_script_runs_the_run_it_describes(fake_sbatch, tmp_path):
    env, log = fake_sbatch
    out = tmp_path / "runs"
    assert repro(["run", "demo:line", "--scale", "smoke", "--set", "steps=2", "--out", str(out), "--launcher",
                  "slurm"], env, tmp_path).returncode == 0
    (_, script), = submitted(log)
    command = script.strip().splitlines()[-1].removeprefix("exec ")
    ran = subprocess.run(["/bin/sh", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert (out / "demo" / "line" / "smoke-seed0" / "results.json").exists()


def test_run_all_passes_the_slurm_resources_to_every_experiment(fake_sbatch, tmp_path):
    env, log = fake_sbatch
    result = repro(["run", "--all", "--scale", "smoke", "--out", str(tmp_path / "runs"), *SLURM_FLAGS], env, tmp_path)
    jobs = submitted(log)  # the installed paper packages' experiments are submitted too
    experiments = {re.search(r"repro_shared.cli run (\S+)", script).group(1) for _, script in jobs}
    assert {"demo:line", "demo:needs-data"} <= experiments, result.stderr
    for _, script in jobs:
        for directive in DIRECTIVES:
            assert directive in script


def test_dry_run_prints_the_job_scripts_and_submits_nothing(fake_sbatch, tmp_path):
    env, log = fake_sbatch
    result = repro(["run", "demo:line", "--scale", "smoke", "--grid", "seed=0,1", "--out", str(tmp_path / "runs"),
                    "--dry-run", *SLURM_FLAGS], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert submitted(log) == [] and not (tmp_path / "runs").exists()
    assert result.stdout.count("#!/bin/bash") == 2 and result.stdout.count("#SBATCH --partition=gpu-a100") == 2


def test_dry_run_needs_no_slurm_installation(demo_env, tmp_path):
    env = {**demo_env, "PATH": str(Path(sys.executable).parent)}  # no sbatch anywhere
    result = repro(["run", "demo:line", "--scale", "smoke", "--out", str(tmp_path / "runs"), "--launcher", "slurm",
                    "--dry-run"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --gpus-per-node=1" in result.stdout
