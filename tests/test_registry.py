"""With every package installed, `repro` sees all five packages, and each experiment honours the CLI contract."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from repro_shared.config import apply_overrides, config_to_dict, flatten
from repro_shared.experiments import ALL_SCALES, discover
from workspace import PACKAGES


def test_repro_list_shows_every_installed_package():
    result = subprocess.run([sys.executable, "-m", "repro_shared.cli", "list"], capture_output=True, text=True,
                            check=True, timeout=120)
    for distribution in PACKAGES:
        assert f"{distribution} 0." in result.stdout
    assert "FAILED" not in result.stdout


def test_registry_loads_every_package():
    registry = discover()
    assert set(PACKAGES) <= set(registry)
    assert {name: entry.error for name, entry in registry.items() if entry.error} == {}


EXPERIMENTS = [exp for entry in discover().values() for exp in entry.experiments]


@pytest.mark.skipif(not EXPERIMENTS, reason="no paper experiments are registered yet")
@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda e: e.id)
def test_every_experiment_config_round_trips_through_the_cli(experiment):
    for scale in (scale for scale in ALL_SCALES if scale in experiment.configs):
        config = experiment.config(scale)
        values = flatten(config_to_dict(config))
        assert apply_overrides(config, values) == config  # every field is settable with --set and validates
        shown = subprocess.run([sys.executable, "-m", "repro_shared.cli", "show", experiment.id, "--scale", scale],
                               capture_output=True, text=True, check=True, timeout=120).stdout
        assert yaml.safe_load(shown) == config_to_dict(config)


def test_every_package_shows_headline_claims_in_repro_reproduce():
    """The main job (`repro reproduce`) covers every paper: each package has a tour config of at least one experiment,
    run at two or more seeds (or at one, where its claims carry an item-bootstrap interval)."""
    registry = discover()
    tours = {name: [exp for exp in registry[name].experiments if exp.has_tour] for name in PACKAGES}
    assert {name: [exp.id for exp in exps] for name, exps in tours.items() if not exps} == {}
    for exps in tours.values():
        for exp in exps:
            assert exp.tour_seeds and len(set(exp.tour_seeds)) == len(exp.tour_seeds), exp.id
