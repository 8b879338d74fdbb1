"""Launch one run or a grid of runs: in this process, as local subprocesses (``submitit``), or as SLURM jobs.

A grid is the Cartesian product of ``--grid key=v1,v2`` options; ``seed`` is a grid key like any config key. Every
grid point's config is built and validated before the first job starts. A SLURM job is a plain ``sbatch`` script
that runs ``repro run`` with the point's options, so ``--dry-run`` can print exactly what would be submitted.
Multi-GPU work inside a job belongs to the experiment (``accelerate``): a SLURM job gets one task per node with all
its GPUs, and the runner sets nothing else.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import io
from .config import apply_overrides
from .errors import ConfigError, ReproError
from .experiments import Experiment, find_experiment
from .logging import get_logger
from .runs import RunOptions, check_run_options, execute

log = get_logger(__name__)
LAUNCHERS = ("local", "submitit-local", "slurm")


@dataclass(frozen=True)
class SlurmOptions:
    """The SLURM resources of each job (submitit's ``slurm_*`` parameters)."""

    partition: str | None = None
    account: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: int = 64
    timeout_min: int = 240
    array_parallelism: int = 16
    # more ``#SBATCH`` options, e.g. {"qos": "high", "constraint": "a100"} -> --qos=high --constraint=a100
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for flag, value, least in (("--slurm-gpus", self.gpus_per_node, 0), ("--slurm-cpus", self.cpus_per_task, 1),
                                   ("--slurm-mem-gb", self.mem_gb, 1), ("--slurm-time-min", self.timeout_min, 1)):
            if value < least:
                raise ConfigError(f"{flag} {value}: must be at least {least}")

    def directives(self) -> list[str]:
        """The ``#SBATCH`` options of every job."""
        options = {"nodes": 1, "ntasks-per-node": 1, "partition": self.partition, "account": self.account,
                   "time": self.timeout_min, "cpus-per-task": self.cpus_per_task, "mem": f"{self.mem_gb}G",
                   "gpus-per-node": self.gpus_per_node or None, **self.extra}
        return [f"#SBATCH --{key}={value}" for key, value in options.items() if value is not None]


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["seed=0,1", "lr=1e-3,1e-4"]`` → ``{"seed": ["0", "1"], "lr": ["1e-3", "1e-4"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        choices = [value.strip() for value in values.split(",") if value.strip()]
        if not sep or not key.strip() or not choices:
            raise ConfigError(f"--grid {item!r} is not of the form key=v1,v2,...", "e.g. --grid seed=0,1,2")
        grid[key.strip()] = choices
    return grid


def expand_grid(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The Cartesian product of a grid, in a stable order (one empty point for an empty grid)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[key] for key in keys))]


@dataclass(frozen=True)
class RunJob:
    """One run, picklable for submitit: the experiment is looked up again in the worker's own registry."""

    experiment_id: str
    options: RunOptions

    def __call__(self) -> str:
        experiment = find_experiment(self.experiment_id)
        config = build_run_config(experiment, self.options)
        return str(execute(experiment, config, self.options).path)

    def command(self) -> list[str]:
        """The ``repro run`` command line that performs this run in another process."""
        options = self.options
        command = [sys.executable, "-m", "repro_shared.cli", "run", self.experiment_id, "--scale", options.scale,
                   "--seed", str(options.seed), "--device", options.device, "--dtype", options.dtype,
                   "--out", str(Path(options.out).resolve()), "--name", options.run_name()]
        if options.threads is not None:
            command += ["--threads", str(options.threads)]
        if options.data_dir is not None:
            command += ["--data-dir", str(Path(options.data_dir).resolve())]
        for flag, enabled in (("--deterministic", options.deterministic), ("--resume", options.resume)):
            command += [flag] if enabled else []
        for key, value in options.overrides.items():
            command += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
        return command


def build_run_config(experiment: Experiment, options: RunOptions) -> Any:
    """The scale's config with the options' overrides applied and validated."""
    return apply_overrides(experiment.config(options.scale), options.overrides, options.override_sources)


def plan_grid(experiment: Experiment, options: RunOptions, grid: Mapping[str, Sequence[str]]) -> list[RunOptions]:
    """One RunOptions per grid point, each validated; run names carry the grid values so that none collide."""
    planned = []
    for point in expand_grid(grid):
        overrides = {**options.overrides, **{k: v for k, v in point.items() if k != "seed"}}
        seed = options.seed
        if "seed" in point:
            try:
                seed = int(point["seed"])
            except ValueError as error:
                raise ConfigError(f"--grid seed={point['seed']!r}: a seed is an integer") from error
        # a value such as a Hub id (org/model) must not make the run name a path
        suffix = "".join(f"-{k}={v.replace('/', '_').replace(os.sep, '_')}" for k, v in point.items() if k != "seed")
        name = f"{options.name or options.scale}-seed{seed}{suffix}" if point else options.name
        sources = {**options.override_sources, **{k: f"--grid {k}" for k in point if k != "seed"}}
        point_options = dataclasses.replace(options, seed=seed, overrides=overrides, name=name,
                                            override_sources=sources)
        check_run_options(experiment, point_options)  # fail now, before any job starts
        build_run_config(experiment, point_options)
        planned.append(point_options)
    return planned


def launch(experiment: Experiment, planned: Sequence[RunOptions], launcher: str = "local",
           slurm: SlurmOptions | None = None, dry_run: bool = False) -> list[Path]:
    """Run every planned point of one experiment; the run directories, in order.

    ``local`` runs them here; ``submitit-local`` as a job array of local subprocesses, waiting for them; ``slurm``
    submits one ``sbatch`` job each with ``slurm``'s resources and returns at once (the directories fill as the
    jobs run). ``dry_run`` (SLURM only) prints the job scripts and submits nothing.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {launcher!r}", f"use one of {', '.join(LAUNCHERS)}")
    if dry_run and launcher != "slurm":
        raise ConfigError("--dry-run prints SLURM job scripts", "add --launcher slurm")
    for options in planned:
        check_run_options(experiment, options)  # before any job starts or any file is written
    jobs = [RunJob(experiment.id, options) for options in planned]
    if launcher == "slurm":
        return submit_slurm(jobs, slurm or SlurmOptions(), dry_run)
    if launcher == "local":
        return [Path(job()) for job in jobs]
    executor = _submitit_local_executor(Path(planned[0].out) / "_submitit", slurm or SlurmOptions())
    submitted = executor.submit_array(jobs)
    for job in submitted:
        log.info("submitted job %s (%s)", job.job_id, launcher)
    return [Path(job.result()) for job in submitted]


def slurm_script(job: RunJob, slurm: SlurmOptions) -> str:
    """The ``sbatch`` script of one run: its resources, its log file, and the ``repro run`` command."""
    experiment_id, name = job.experiment_id, job.options.run_name()
    logs = Path(job.options.out).resolve() / "_slurm"
    lines = ["#!/bin/bash", f"#SBATCH --job-name=repro-{experiment_id.replace(':', '-')}-{name}",
             *slurm.directives(), f"#SBATCH --output={logs}/%j.out", "",
             f"cd {shlex.quote(os.getcwd())}", f"exec {shlex.join(job.command())}", ""]
    return "\n".join(lines)


def submit_slurm(jobs: Sequence[RunJob], slurm: SlurmOptions, dry_run: bool = False) -> list[Path]:
    """Submit one ``sbatch`` job per run (or, with ``dry_run``, print the scripts); the runs' directories."""
    if not dry_run and shutil.which("sbatch") is None:
        raise ReproError("--launcher slurm: no `sbatch` on PATH (SLURM is not available here)",
                         "run on a SLURM login node, use --launcher local, or add --dry-run to see the job scripts")
    run_dirs = []
    for job in jobs:
        experiment_package, _, experiment_name = job.experiment_id.partition(":")
        run_dir = Path(job.options.out) / experiment_package / experiment_name / job.options.run_name()
        script = slurm_script(job, slurm)
        if dry_run:
            print(f"# --- {run_dir}\n{script}")
        else:
            log.info("submitted SLURM job %s for %s", _sbatch(script, job), run_dir)
        run_dirs.append(run_dir)
    return run_dirs


def _sbatch(script: str, job: RunJob) -> str:
    folder = Path(job.options.out) / "_slurm"
    path = folder / f"{job.experiment_id.replace(':', '-')}-{job.options.run_name()}.sbatch"
    io.atomic_write_text(path, script)  # also creates the folder of the jobs' --output logs, which must exist
    done = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ReproError(f"sbatch refused {path}: {reason}",
                         "check --slurm-partition, --slurm-account and the other resources against your cluster")
    return done.stdout.strip().split(";")[0]


def _submitit_local_executor(folder: Path, slurm: SlurmOptions) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="local")
    executor.update_parameters(timeout_min=slurm.timeout_min)
    return executor
