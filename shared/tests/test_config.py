from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
from repro_shared.config import apply_overrides, config_to_dict, load_preset, parse_assignments
from repro_shared.errors import ConfigError
from repro_shared.launch import expand_grid, parse_grid


@dataclass(frozen=True)
class Model:
    hidden: int = 8
    kind: Literal["lstm", "armin"] = "lstm"


@dataclass(frozen=True)
class Config:
    steps: int = 10
    learning_rate: float = 1e-3
    name: str = "x"
    sizes: tuple[int, ...] = (1, 2)
    verbose: bool = False
    model: Model = field(default_factory=Model)

    def __post_init__(self) -> None:
        if self.model.hidden < 1:
            raise ConfigError(f"model.hidden={self.model.hidden}: must be positive")


def test_overrides_are_typed():
    config = apply_overrides(Config(), parse_assignments(
        ["steps=3", "learning_rate=1e-4", "name=123", "sizes=[4, 5]", "verbose=true", "model.kind=armin"]))
    assert config == Config(steps=3, learning_rate=1e-4, name="123", sizes=(4, 5), verbose=True,
                            model=Model(kind="armin"))
    assert config_to_dict(config)["model"] == {"hidden": 8, "kind": "armin"}


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="unknown config key 'learnig_rate'") as error:
        apply_overrides(Config(), {"learnig_rate": "1"})
    assert "learning_rate" in error.value.hint


@pytest.mark.parametrize(("key", "value"), [("steps", "abc"), ("model.kind", "gru"), ("sizes", "x")])
def test_wrong_type_is_rejected(key, value):
    with pytest.raises(ConfigError, match=f"{key}="):
        apply_overrides(Config(), {key: value})


def test_semantic_checks_run_after_override():
    with pytest.raises(ConfigError, match="must be positive"):
        apply_overrides(Config(), {"model.hidden": "0"})


def test_malformed_assignment():
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["steps"])


def test_preset(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("scale: smoke\noverrides:\n  steps: 2\n  model:\n    hidden: 4\n")
    loaded = load_preset(preset)
    assert loaded["scale"] == "smoke" and loaded["overrides"] == {"steps": 2, "model.hidden": 4}
    assert apply_overrides(Config(), loaded["overrides"], "--config").model.hidden == 4
    preset.write_text("stepz: 1\n")
    with pytest.raises(ConfigError, match="unexpected top-level keys"):
        load_preset(preset)


def test_grid_is_the_cartesian_product():
    grid = parse_grid(["seed=0,1", "lr=1,2,3"])
    points = expand_grid(grid)
    assert len(points) == 6 and points[0] == {"seed": "0", "lr": "1"} and points[-1] == {"seed": "1", "lr": "3"}
    assert expand_grid({}) == [{}]
    with pytest.raises(ConfigError):
        parse_grid(["seed="])


@dataclass(frozen=True)
class Optimiser:
    lr: float = 0.1
    betas: tuple[float, ...] = (0.9, 0.99)
    clip: float | None = None


@dataclass(frozen=True)
class Training:
    epochs: int = 1
    optimiser: Optimiser = field(default_factory=Optimiser)


@pytest.mark.parametrize(("key", "value"), [
    ("optimiser.lr", "nan"), ("optimiser.lr", ".inf"), ("optimiser.lr", "-inf"), ("optimiser.lr", float("nan")),
    ("optimiser.betas", "[0.9, nan]"), ("optimiser.clip", "inf"),
])
def test_non_finite_floats_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"--set: {key}=.* is not a finite number"):
        apply_overrides(Training(), {key: value})


def test_non_finite_defaults_are_refused_too():
    bad = Training(optimiser=Optimiser(lr=float("inf")))  # a package's own scale config
    with pytest.raises(ConfigError, match=r"config: optimiser\.lr=inf is not a finite number"):
        apply_overrides(bad, {})


def test_errors_name_the_real_source_of_an_override(tmp_path):
    assert apply_overrides(Config(), {"steps": "2", "name": "y"}, {"steps": "--config p.yaml"}).steps == 2
    with pytest.raises(ConfigError, match=r"^--config p.yaml: unknown config key 'stepz'"):
        apply_overrides(Config(), {"stepz": "2"}, {"stepz": "--config p.yaml"})
    with pytest.raises(ConfigError, match=r"^--grid steps: steps='x' is not a valid int"):
        apply_overrides(Config(), {"steps": "x"}, {"steps": "--grid steps"})
    with pytest.raises(ConfigError, match=r"^--set: steps='x'"):
        apply_overrides(Config(), {"steps": "x"}, {})


def test_preset_with_bad_overrides_or_scale_is_refused(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("overrides: 3\n")
    with pytest.raises(ConfigError, match="'overrides' must map config keys to values"):
        load_preset(preset)
    preset.write_text("scale: huge\n")
    with pytest.raises(ConfigError, match=f"--config {preset}: unknown scale 'huge'"):
        load_preset(preset)
