"""pytest plugin for the suite's test suites (enabled with ``-p repro_shared.testing``; not auto-loaded).

Tests run offline (``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``), tests marked ``gpu`` are skipped without CUDA,
and progress bars stay quiet.
"""

from __future__ import annotations

import os

import pytest

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "REPRO_PROGRESS": "0"}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(OFFLINE_ENV)
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


def assert_registers_experiments(distribution: str, import_name: str) -> list:
    """Check a paper package's registry hook: the installed distribution declares the ``repro.experiments`` entry
    point under its own name, pointing into its own module; ``repro`` loads it without error; every experiment has a
    smoke, quick and paper config and a unique ``package:name`` id. Returns the experiments."""
    import importlib
    from importlib import metadata

    from .experiments import ENTRY_POINT_GROUP, SCALES, discover

    points = [ep for ep in metadata.distribution(distribution).entry_points if ep.group == ENTRY_POINT_GROUP]
    assert [ep.name for ep in points] == [distribution], f"{distribution} must register exactly one entry point"
    assert points[0].value == f"{import_name}.experiments:experiments"
    module = importlib.import_module(import_name)
    assert module.__version__ == metadata.version(distribution)
    entry = discover()[distribution]
    assert entry.error is None, entry.error
    ids = [experiment.id for experiment in entry.experiments]
    assert len(ids) == len(set(ids)) and all(i.startswith(f"{distribution}:") for i in ids)
    for experiment in entry.experiments:
        assert {scale: type(experiment.config(scale)) for scale in SCALES} == dict.fromkeys(
            SCALES, experiment.config_type)
    return entry.experiments
