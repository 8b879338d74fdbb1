"""Run directories and the run lifecycle: ``runs/<package>/<experiment>/<run-name>/``.

A run directory holds ``config.yaml`` (the resolved config and provenance), ``metrics.jsonl``, ``results.json``,
``checkpoints/``, ``figures/``, ``run.log`` and ``status.json``. Files are written atomically; an existing run
directory is never overwritten: ``--resume`` continues it from its last checkpoint, anything else is an error.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from . import io
from .config import config_to_dict
from .errors import ReproError
from .logging import MetricsLogger, get_logger, log_to_file, progress
from .report import write_run_report

if TYPE_CHECKING:
    import torch

    from .experiments import Experiment

T = TypeVar("T")
CHECKPOINT = "last.pt"
log = get_logger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How to run an experiment; everything here is recorded in ``config.yaml``."""

    scale: str = "quick"
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    deterministic: bool = False
    out: Path = Path("runs")
    name: str | None = None
    resume: bool = False
    data_dir: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def run_name(self) -> str:
        return self.name or f"{self.scale}-seed{self.seed}"


class RunDir:
    """The files of one run, and the rules for creating, resuming and completing it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.yaml")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    results_path = property(lambda self: self.path / "results.json")
    status_path = property(lambda self: self.path / "status.json")
    log_path = property(lambda self: self.path / "run.log")
    checkpoints = property(lambda self: self.path / "checkpoints")
    figures = property(lambda self: self.path / "figures")

    @classmethod
    def for_experiment(cls, out: Path, experiment: Experiment, name: str) -> RunDir:
        return cls(Path(out) / experiment.package / experiment.name / name)

    def status(self) -> dict[str, Any]:
        return io.read_json(self.status_path) if self.status_path.exists() else {}

    def is_complete(self) -> bool:
        return self.results_path.exists() and self.status().get("state") == "complete"

    def set_status(self, state: str, **extra: Any) -> None:
        io.atomic_write_json(self.status_path, {
            "state": state, "pid": os.getpid(), "host": socket.gethostname(),
            "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **extra,
        })

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8"))


class RunContext:
    """What an experiment's ``run(config, ctx)`` gets: device, seed, paths, metrics, checkpoints, progress bars."""

    def __init__(self, run_dir: RunDir | None, options: RunOptions, device: torch.device, dtype: torch.dtype) -> None:
        self.run_dir = run_dir
        self.options = options
        self.device = device
        self.dtype = dtype
        self.seed = options.seed
        self.scale = options.scale
        self.data_dir = options.data_dir
        self.log = get_logger("repro.run")
        # Under `accelerate launch`/torchrun every process runs the experiment; only rank 0 writes the run's files.
        self.is_main_process = int(os.environ.get("RANK", "0")) == 0
        self._metrics: MetricsLogger | None = None

    @property
    def path(self) -> Path:
        if self.run_dir is None:
            raise RuntimeError("no run directory during preflight")
        return self.run_dir.path

    def artifact(self, relative: str) -> Path:
        """A path inside the run directory for an artefact (parent folders are created); write it on rank 0 only."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def figure(self, name: str) -> Path:
        """Where to save a PNG figure that the report should show."""
        return self.artifact(f"figures/{name if name.endswith('.png') else name + '.png'}")

    def log_metrics(self, step: int | None = None, **metrics: Any) -> None:
        if not self.is_main_process:
            return
        if self._metrics is None:
            self._metrics = MetricsLogger(self.run_dir.metrics_path)
        self._metrics.log(step=step, **metrics)

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
        return progress(iterable, desc=desc, total=total)

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Atomically save ``state``; ``load_checkpoint`` after ``--resume`` returns it (and rewinds the metrics)."""
        if not self.is_main_process:
            return
        offset = self._metrics.size() if self._metrics else (
            self.run_dir.metrics_path.stat().st_size if self.run_dir.metrics_path.exists() else 0)
        io.atomic_torch_save({"state": dict(state), "metrics_offset": offset, "saved": time.time()},
                             self.run_dir.checkpoints / CHECKPOINT)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint's state, or None for a fresh run. Metrics logged after it are discarded."""
        import torch

        path = self.run_dir.checkpoints / CHECKPOINT
        if not path.exists():
            return None
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if self.is_main_process and self.run_dir.metrics_path.exists():
            with open(self.run_dir.metrics_path, "r+b") as handle:
                handle.truncate(payload["metrics_offset"])
        log.info("resuming from checkpoint %s", path)
        return payload["state"]

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


def prepare_context(options: RunOptions) -> RunContext:
    """Select the device and dtype and seed the generators: the part of a run that precedes its directory."""
    from .device import parse_dtype, seed_everything, select_device, set_deterministic, set_threads

    device = select_device(options.device)
    dtype = parse_dtype(options.dtype, device)
    set_threads(options.threads)
    set_deterministic(options.deterministic)
    seed_everything(options.seed)
    return RunContext(None, options, device, dtype)


def execute(experiment: Experiment, config: Any, options: RunOptions) -> RunDir:
    """Run one experiment: preflight checks, run directory, config record, run, results, report."""
    from .device import DeviceInfo

    ctx = prepare_context(options)
    if options.scale == "paper" and ctx.device.type == "cpu":
        log.warning("%s at paper scale on the CPU: this is sized for a GPU and may take days", experiment.id)
    if experiment.preflight is not None:
        experiment.preflight(config, ctx)
    if not ctx.is_main_process:
        return _run_as_worker(experiment, config, options, ctx)
    run_dir = _open_run_dir(experiment, config, options, DeviceInfo.describe(ctx.device, ctx.dtype))
    if run_dir.is_complete():
        log.info("%s is complete already: %s", experiment.id, run_dir.path)
        return run_dir
    ctx.run_dir = run_dir
    with log_to_file(run_dir.log_path):
        log.info("running %s (%s scale, seed %d) on %s in %s", experiment.id, options.scale, options.seed,
                 ctx.device, run_dir.path)
        run_dir.set_status("running")
        started = time.time()
        try:
            results = dict(experiment.run(config, ctx) or {})
        except BaseException as error:
            run_dir.set_status("failed", error=f"{type(error).__name__}: {error}")
            raise
        finally:
            ctx.close()
        _write_results(run_dir, experiment, options, results, time.time() - started)
        write_run_report(run_dir.path)
        run_dir.set_status("complete")
        log.info("done: %s", run_dir.results_path)
    return run_dir


def _run_as_worker(experiment: Experiment, config: Any, options: RunOptions, ctx: RunContext) -> RunDir:
    """A non-zero rank of a multi-process launch: compute alongside rank 0, write nothing."""
    ctx.run_dir = RunDir.for_experiment(options.out, experiment, options.run_name())
    experiment.run(config, ctx)
    return ctx.run_dir


def _open_run_dir(experiment: Experiment, config: Any, options: RunOptions, device_info: Any) -> RunDir:
    run_dir = RunDir.for_experiment(options.out, experiment, options.run_name())
    record = {
        "experiment": experiment.id,
        "package_version": _package_version(experiment.package),
        "scale": options.scale,
        "seed": options.seed,
        "config": config_to_dict(config),
        "overrides": dict(options.overrides),
        "options": {"device": options.device, "dtype": options.dtype, "threads": options.threads,
                    "deterministic": options.deterministic,
                    "data_dir": str(options.data_dir) if options.data_dir else None},
        "device": asdict(device_info),
        "command": " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if run_dir.path.exists():
        if not options.resume:
            state = run_dir.status().get("state", "unknown")
            raise ReproError(f"run directory {run_dir.path} exists already (state: {state})",
                             "pass --resume to continue it, or --name NEW for a new run")
        if run_dir.config_path.exists():
            _check_same_config(run_dir, record)
        return run_dir
    run_dir.path.mkdir(parents=True)
    io.atomic_write_yaml(run_dir.config_path, record)
    return run_dir


def _check_same_config(run_dir: RunDir, record: Mapping[str, Any]) -> None:
    stored = run_dir.read_config()
    for key in ("experiment", "scale", "seed", "config"):
        if stored.get(key) != record[key]:
            raise ReproError(f"--resume: {run_dir.path} was started with a different {key}",
                             "resume with the same settings, or start a new run with --name NEW")


def _write_results(run_dir: RunDir, experiment: Experiment, options: RunOptions,
                   results: dict[str, Any], duration: float) -> None:
    claims = [asdict(claim) if hasattr(claim, "__dataclass_fields__") else dict(claim)
              for claim in results.pop("claims", [])]
    payload = {
        "experiment": experiment.id,
        "description": experiment.description,
        "package_version": _package_version(experiment.package),
        "scale": options.scale,
        "seed": options.seed,
        "duration_s": round(duration, 3),
        "metrics": results.pop("metrics", {}),
        "claims": claims,
        "tables": results.pop("tables", {}),
        **results,
    }
    io.atomic_write_json(run_dir.results_path, payload)


def _package_version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
