"""Launch one run or a grid of runs: in this process, or as jobs through ``submitit`` (SLURM, or its local executor).

A grid is the Cartesian product of ``--grid key=v1,v2`` options; ``seed`` is a grid key like any config key. Every
grid point's config is built and validated before the first job starts. Multi-GPU work inside a job belongs to the
experiment (``accelerate``): a SLURM job gets one task per node with all its GPUs, and the runner sets nothing else.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import apply_overrides
from .errors import ConfigError
from .experiments import Experiment, find_experiment
from .logging import get_logger
from .runs import RunOptions, execute

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
    extra: Mapping[str, Any] = field(default_factory=dict)


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


def build_run_config(experiment: Experiment, options: RunOptions) -> Any:
    """The scale's config with the options' overrides applied and validated."""
    return apply_overrides(experiment.config(options.scale), options.overrides)


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
        suffix = "".join(f"-{k}={v}" for k, v in point.items() if k != "seed")
        name = f"{options.name or options.scale}-seed{seed}{suffix}" if point else options.name
        point_options = dataclasses.replace(options, seed=seed, overrides=overrides, name=name)
        build_run_config(experiment, point_options)  # fail now, before any job starts
        planned.append(point_options)
    return planned


def launch(experiment: Experiment, planned: Sequence[RunOptions], launcher: str = "local",
           slurm: SlurmOptions | None = None) -> list[Path]:
    """Run every planned point; with a submitit launcher, submit them as one job array and wait for the results."""
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {launcher!r}", f"use one of {', '.join(LAUNCHERS)}")
    jobs = [RunJob(experiment.id, options) for options in planned]
    if launcher == "local":
        return [Path(job()) for job in jobs]
    executor = _submitit_executor(launcher, Path(planned[0].out) / "_submitit", slurm or SlurmOptions())
    submitted = executor.submit_array(jobs)
    for job in submitted:
        log.info("submitted job %s (%s)", job.job_id, launcher)
    return [Path(job.result()) for job in submitted]


def _submitit_executor(launcher: str, folder: Path, slurm: SlurmOptions) -> Any:
    import submitit

    if launcher == "submitit-local":
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        executor.update_parameters(timeout_min=slurm.timeout_min)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    parameters: dict[str, Any] = {
        "timeout_min": slurm.timeout_min, "gpus_per_node": slurm.gpus_per_node, "tasks_per_node": 1, "nodes": 1,
        "cpus_per_task": slurm.cpus_per_task, "mem_gb": slurm.mem_gb,
        "slurm_array_parallelism": slurm.array_parallelism,
    }
    if slurm.partition:
        parameters["slurm_partition"] = slurm.partition
    if slurm.account:
        parameters["slurm_account"] = slurm.account
    parameters.update(slurm.extra)
    executor.update_parameters(**parameters)
    return executor
