"""Run directories and the run lifecycle: ``runs/<package>/<experiment>/<run-name>/``.

A run directory holds ``config.yaml`` (the resolved config and provenance), ``metrics.jsonl``, ``results.json``,
``checkpoints/``, ``figures/``, ``run.log`` and ``status.json``. Files are written atomically; an existing run
directory is never overwritten: ``--resume`` continues it from its last checkpoint, anything else is an error.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from . import io
from .config import config_to_dict
from .errors import ReproError
from .logging import MetricsLogger, get_logger, log_failure, log_to_file, progress
from .report import write_run_report

if TYPE_CHECKING:
    import torch

    from .data import DatasetSpec
    from .experiments import Experiment

T = TypeVar("T")
CHECKPOINT = "last.pt"
# What numpy's legacy seeding accepts; seed_everything feeds the seed to numpy, torch and Python alike.
SEED_LIMIT = 2**32
# The dtype recorded for an experiment that declares no honoured dtypes (Experiment.dtypes) under --dtype auto.
EXPERIMENT_DTYPE = "experiment's own"
# Libraries whose versions a run records when the experiment imported them.
TRACKED_LIBRARIES = ("transformers", "diffusers", "peft", "auto_LiRPA", "accelerate", "datasets", "numpy")
# Settings that change a run's numbers: resuming with other values would splice two different computations.
# (The device is compared as resolved: --device auto and --device cpu are the same run on a CPU-only machine.)
RESUME_SETTINGS = ("dtype", "threads", "deterministic")
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
    # Where each override came from ("--config FILE", "--set", "--grid"), for error messages; not recorded.
    override_sources: Mapping[str, str] = field(default_factory=dict)

    def run_name(self) -> str:
        return self.name or f"{self.scale}-seed{self.seed}"


def check_run_options(experiment: Experiment, options: RunOptions) -> None:
    """Refuse options that would fail later or be silently ignored, before anything is created."""
    if not 0 <= options.seed < SEED_LIMIT:
        raise ReproError(f"--seed {options.seed}: out of range", f"a seed is an integer from 0 to {SEED_LIMIT - 1}")
    if options.threads is not None and options.threads < 1:
        raise ReproError(f"--threads {options.threads}: must be at least 1")
    check_run_name(options.run_name())
    check_dtype(experiment, options.dtype)
    check_writable_dir(Path(options.out), "--out")


def check_run_name(name: str) -> None:
    """A run name is one directory name: no path separator, no ``..``, not empty."""
    separators = {"/", "\\", os.sep, *([os.altsep] if os.altsep else [])}
    if not name.strip() or ".." in name or any(sep in name for sep in separators) or "\0" in name:
        raise ReproError(f"--name {name!r}: not a plain directory name",
                         "use letters, digits, '-', '_', '=' or '.', without '/' and '..'")


def check_dtype(experiment: Experiment, dtype: str) -> None:
    """``auto``, or a dtype the experiment declares it honours (``Experiment.dtypes``); anything else is refused."""
    from .device import canonical_dtype

    if dtype == "auto":
        return
    wanted = canonical_dtype(dtype)
    if wanted not in {canonical_dtype(name) for name in experiment.dtypes}:
        honoured = ", ".join(experiment.dtypes)
        raise ReproError(f"--dtype {dtype}: {experiment.id} does not honour it"
                         + (f" (it honours {honoured})" if honoured else " (it chooses its own dtype)"),
                         "use --dtype auto" + (f" or one of {honoured}" if honoured else ""))


def check_writable_dir(path: Path, flag: str) -> None:
    """``path`` is a directory, or can be made one, and this process can write there; creates nothing."""
    if path.exists() and not path.is_dir():
        raise ReproError(f"{flag} {path}: is a file, not a directory", f"name a directory for {flag}")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ReproError(f"{flag} {path}: {existing} is a file, not a directory", f"name a directory for {flag}")
    if not _can_create_in(existing):
        raise ReproError(f"{flag} {path}: {existing} is not writable", f"name a writable directory for {flag}")


def _can_create_in(folder: Path) -> bool:
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:  # the superuser passes os.access everywhere; read-only file systems and /proc still refuse
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


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
        self.data_files: dict[str, dict[str, Any]] = {}  # path -> sha256 and size, written to config.yaml

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

    def record_data_file(self, path: str | os.PathLike) -> str:
        """Record a data file the run reads (its SHA-256 goes to config.yaml's provenance); returns the hash.

        A directory records every file under it.
        """
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            self.data_files[str(file.resolve())] = {"sha256": file_sha256(file), "bytes": file.stat().st_size}
        return self.data_files[str(files[0].resolve())]["sha256"] if len(files) == 1 else ""

    def locate_dataset(self, spec: DatasetSpec) -> Path:
        """``repro_shared.data.locate_dataset`` in this run's data dir, recording the hashes of its required files."""
        from .data import locate_dataset

        folder = locate_dataset(spec, self.data_dir)
        for name in spec.required_files:
            self.record_data_file(folder / name)
        return folder

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

    check_run_options(experiment, options)
    ctx = prepare_context(options)
    if options.scale == "paper" and ctx.device.type == "cpu":
        log.warning("%s at paper scale on the CPU: this is sized for a GPU and may take days", experiment.id)
    if experiment.preflight is not None:
        experiment.preflight(config, ctx)
    if not ctx.is_main_process:
        return _run_as_worker(experiment, config, options, ctx)
    device_info = asdict(DeviceInfo.describe(ctx.device, ctx.dtype))
    if options.dtype == "auto" and (not experiment.dtypes or experiment.own_dtype_under_auto):
        device_info["dtype"] = EXPERIMENT_DTYPE  # the runner's policy dtype may not be what the experiment used
    run_dir = _open_run_dir(experiment, config, options, device_info)
    if run_dir.is_complete():
        log.info("%s is complete already: %s", experiment.id, run_dir.path)
        return run_dir
    ctx.run_dir = run_dir
    _restart_metrics_without_checkpoint(run_dir)
    with log_to_file(run_dir.log_path) as log_file:
        log.info("running %s (%s scale, seed %d) on %s in %s", experiment.id, options.scale, options.seed,
                 ctx.device, run_dir.path)
        run_dir.set_status("running")
        started = time.time()
        try:
            results = dict(experiment.run(config, ctx) or {})
        except BaseException as error:
            log_failure(log_file, error)
            run_dir.set_status("failed", error=f"{type(error).__name__}: {error}")
            raise
        finally:
            ctx.close()
            _update_provenance(run_dir, experiment, ctx)
        _write_results(run_dir, experiment, options, results, time.time() - started)
        write_run_report(run_dir.path)
        run_dir.set_status("complete")
        log.info("done: %s", run_dir.results_path)
    return run_dir


def _restart_metrics_without_checkpoint(run_dir: RunDir) -> None:
    """A resumed run with no checkpoint starts from scratch: the killed attempt's metrics would repeat its steps."""
    if run_dir.metrics_path.exists() and not (run_dir.checkpoints / CHECKPOINT).exists():
        log.info("no checkpoint to resume from: %s starts afresh", run_dir.metrics_path)
        run_dir.metrics_path.unlink()


def _run_as_worker(experiment: Experiment, config: Any, options: RunOptions, ctx: RunContext) -> RunDir:
    """A non-zero rank of a multi-process launch: compute alongside rank 0, write nothing."""
    ctx.run_dir = RunDir.for_experiment(options.out, experiment, options.run_name())
    experiment.run(config, ctx)
    return ctx.run_dir


def _open_run_dir(experiment: Experiment, config: Any, options: RunOptions, device_info: dict[str, Any]) -> RunDir:
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
        "device": device_info,
        "command": " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "provenance": provenance(experiment),
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
    if run_dir.is_complete():
        return  # nothing will be computed
    old_options, new_options = stored.get("options") or {}, record["options"]
    for key in RESUME_SETTINGS:
        if key in old_options and old_options[key] != new_options[key]:
            raise ReproError(f"--resume: {run_dir.path} was started with --{key} {_setting(old_options[key])}, "
                             f"not {_setting(new_options[key])}",
                             "resume with the same settings, or start a new run with --name NEW")
    old_device = str((stored.get("device") or {}).get("device", "")).split(":")[0]
    new_device = str(record["device"]["device"]).split(":")[0]
    if old_device and old_device != new_device:
        raise ReproError(f"--resume: {run_dir.path} was computed on {old_device}; this process would use {new_device}",
                         f"resume where it started (--device {old_device}), or start a new run with --name NEW")


def _setting(value: Any) -> str:
    return "(default)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def provenance(experiment: Experiment) -> dict[str, Any]:
    """Where a run's code came from: the git commit of the working directory's repository and library versions."""
    return {"git": git_state(Path.cwd()), "versions": library_versions(experiment.package), "data_files": {}}


def git_state(folder: Path) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the repository holding ``folder``; None outside git (or without git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if changes is None else bool(changes.strip())}


def library_versions(package: str) -> dict[str, str]:
    """repro-shared, the experiment's package, torch, and the tracked libraries this process has imported."""
    versions = {"repro-shared": _package_version("repro-shared"), package: _package_version(package)}
    for name in ("torch", *TRACKED_LIBRARIES):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", None) or _package_version(name))
    return versions


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, cached per (path, size, mtime) so that a grid's runs hash a big file once."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _update_provenance(run_dir: RunDir, experiment: Experiment, ctx: RunContext) -> None:
    """Add what the run itself revealed to config.yaml: the libraries it imported and the data files it read."""
    if not run_dir.config_path.exists():
        return
    record = run_dir.read_config()
    current = provenance(experiment)
    stored = record.get("provenance") or {}
    if stored.get("git") != current["git"]:
        stored.setdefault("resumed_with_git", []).append(current["git"])
    stored["versions"] = {**stored.get("versions", {}), **current["versions"]}
    stored["data_files"] = {**stored.get("data_files", {}), **ctx.data_files}
    record["provenance"] = stored
    io.atomic_write_yaml(run_dir.config_path, record)


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
