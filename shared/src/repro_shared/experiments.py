"""The experiment registry: paper packages register experiments through the entry-point group ``repro.experiments``.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."repro.experiments"]
    my-paper = "my_paper.experiments:experiments"   # a callable returning a list of Experiment

so installing a package makes exactly its experiments appear in ``repro list``. For experiments that are not packaged
(a notebook, a test), ``REPRO_EXPERIMENTS="name=module:callable,..."`` registers more.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from .runs import RunContext

ENTRY_POINT_GROUP = "repro.experiments"
PLUGIN_ENV = "REPRO_EXPERIMENTS"
SCALES = ("smoke", "quick", "paper")
# Optional: an experiment with a ``tour`` config takes part in ``repro reproduce`` (the headline claims of every
# package, several seeds each, in at most ~30 min on a 2-core CPU altogether).
TOUR = "tour"
ALL_SCALES = (*SCALES, TOUR)
SCALE_HELP = {
    "smoke": "seconds; exercises every code path (tests)",
    "quick": "minutes on a 2-core CPU; real measurements at reduced scale",
    "paper": "the paper's own settings; needs a GPU",
    "tour": "a few minutes per seed on a 2-core CPU: the headline claims that `repro reproduce` runs (optional)",
}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper beside this run's measurement.

    ``effect`` is this run's signed effect, oriented so that a positive value is what the paper claims (see
    ``repro_shared.evidence``): runs of one config that differ only in their seed are aggregated over it into
    mean ± std, a 95 % interval and a verdict. ``interval`` is an optional 95 % interval of ``effect`` from this run
    alone (``evidence.bootstrap_interval`` over test items), used when there is one seed or the seeds agree exactly
    (see ``exact``). ``direction_holds`` is
    ``effect > 0`` when an effect is given; None where the claim is not comparable. The name identifies the claim
    across seeds: keep measured numbers out of it.
    """

    name: str
    paper_value: float | str | None
    measured_value: float | str | None
    direction_holds: bool | None = None
    note: str = ""
    effect: float | None = None
    interval: tuple[float, float] | None = None
    # True when the effect is a deterministic function of the config (a parameter count, an accountant's epsilon),
    # not a sampled measurement: identical values over seeds are then exact, not a zero-width accident.
    exact: bool = False

    def __post_init__(self) -> None:
        if self.effect is not None:
            effect = float(self.effect)
            object.__setattr__(self, "effect", effect)
            if self.direction_holds is None and math.isfinite(effect):
                object.__setattr__(self, "direction_holds", effect > 0)
        if self.interval is not None:
            low, high = (float(bound) for bound in self.interval)
            if not low <= high:
                raise ValueError(f"claim {self.name!r}: interval ({low}, {high}) is not ordered")
            object.__setattr__(self, "interval", (low, high))


@dataclass(frozen=True)
class Experiment:
    """A named, runnable reproduction step with one typed config per scale (smoke, quick, paper)."""

    name: str
    description: str
    configs: Mapping[str, Any]
    run: Callable[[Any, RunContext], Mapping[str, Any]]
    # Cheap checks of data and settings, run before a run directory is created or anything expensive starts.
    preflight: Callable[[Any, RunContext], None] | None = None
    package: str = ""
    # The seeds `repro reproduce` runs the ``tour`` config at (ignored without a tour config).
    tour_seeds: tuple[int, ...] = (0, 1, 2)
    # The explicit `--dtype` values the experiment honours (e.g. ("fp32", "bf16")); empty: it chooses its own dtype
    # and any --dtype other than auto is refused, so that config.yaml never records a dtype that was ignored.
    dtypes: tuple[str, ...] = ()
    # True when, under `--dtype auto`, the experiment computes in its config's own dtype rather than the runner's
    # policy (bf16 on GPUs, else fp32): config.yaml then records the experiment's own dtype, not the policy's.
    own_dtype_under_auto: bool = False
    # The datasets the experiment reads (repro_shared.data.DatasetSpec), for `repro doctor` and `repro data fetch`.
    datasets: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        missing = [scale for scale in SCALES if scale not in self.configs]
        if missing:
            raise ConfigError(f"experiment {self.name!r} has no config for scale(s) {missing}")
        unknown = sorted(set(self.configs) - set(ALL_SCALES))
        if unknown:
            raise ConfigError(f"experiment {self.name!r} has configs for unknown scale(s) {unknown}",
                              f"scales are {', '.join(ALL_SCALES)}")
        types = {type(config) for config in self.configs.values()}
        if len(types) != 1 or not dataclasses.is_dataclass(next(iter(types))):
            raise ConfigError(f"experiment {self.name!r}: every scale needs a config of one dataclass type")

    @property
    def id(self) -> str:
        return f"{self.package}:{self.name}"

    @property
    def config_type(self) -> type:
        return type(self.configs["smoke"])

    @property
    def has_tour(self) -> bool:
        return TOUR in self.configs

    def config(self, scale: str) -> Any:
        if scale not in ALL_SCALES:
            raise ConfigError(f"unknown scale {scale!r}", f"use one of {', '.join(ALL_SCALES)}")
        if scale not in self.configs:
            raise ConfigError(f"experiment {self.id} has no {scale!r} config",
                              f"its scales: {', '.join(s for s in ALL_SCALES if s in self.configs)}")
        return dataclasses.replace(self.configs[scale])


@dataclass
class PackageEntry:
    """What one installed package registered, or why loading it failed."""

    name: str
    version: str
    source: str
    experiments: list[Experiment] = field(default_factory=list)
    error: str | None = None


def discover() -> dict[str, PackageEntry]:
    """Load every registered package's experiments; a package that fails to load is reported, not fatal."""
    entries: dict[str, PackageEntry] = {}
    for entry_point in registered_entry_points():
        version = entry_point.dist.version if entry_point.dist else "?"
        entries[entry_point.name] = _load(entry_point.name, version, entry_point.value, entry_point.load)
    for name, target in _plugin_targets():
        entries[name] = _load(name, "plugin", target, lambda target=target: _import_target(target))
    return dict(sorted(entries.items()))


def registered_entry_points() -> list[metadata.EntryPoint]:
    """The installed distributions' ``repro.experiments`` entry points."""
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _plugin_targets() -> list[tuple[str, str]]:
    raw = os.environ.get(PLUGIN_ENV, "").strip()
    targets = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ConfigError(f"{PLUGIN_ENV}: {item!r} is not of the form name=module:callable")
        targets.append((name.strip(), target.strip()))
    return targets


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _load(name: str, version: str, source: str, loader: Callable[[], Any]) -> PackageEntry:
    entry = PackageEntry(name=name, version=version, source=source)
    try:
        factory = loader()
        experiments = list(factory() if callable(factory) else factory)
    except Exception as error:  # a broken plugin must not hide the others
        entry.error = f"{type(error).__name__}: {error}"
        return entry
    names = [experiment.name for experiment in experiments]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        entry.error = f"duplicate experiment names {duplicates}"
        return entry
    entry.experiments = [dataclasses.replace(experiment, package=name) for experiment in experiments]
    return entry


def find_experiment(spec: str, registry: Mapping[str, PackageEntry] | None = None) -> Experiment:
    """``package:experiment`` (or a bare experiment name if only one package has it) → the Experiment."""
    registry = discover() if registry is None else registry
    available = [exp.id for entry in registry.values() for exp in entry.experiments]
    package, sep, name = spec.partition(":")
    if sep:
        entry = registry.get(package)
        if entry is None:
            raise NotFoundError(f"no installed package {package!r} registers experiments",
                                f"installed: {', '.join(registry) or 'none'}")
        if entry.error:
            raise NotFoundError(f"package {package!r} failed to load its experiments: {entry.error}")
        matches = [exp for exp in entry.experiments if exp.name == name]
    else:
        matches = [exp for entry in registry.values() for exp in entry.experiments if exp.name == spec]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NotFoundError(f"experiment name {spec!r} is ambiguous",
                            f"use one of {', '.join(exp.id for exp in matches)}")
    raise NotFoundError(f"unknown experiment {spec!r}",
                        f"available: {', '.join(available)}" if available else "no experiments are installed")
