"""Typed experiment configs: dataclasses overridden by ``key=value`` strings and YAML presets, validated per field.

Every override names a field that exists (``--set model.hidden=100`` for nested dataclasses) and is converted to
the field's declared type; anything else is a ``ConfigError`` that says what is wrong and what would be right.
Semantic checks live in the config's ``__post_init__`` and run again after every override.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from .errors import ConfigError, ReproError
from .experiments import ALL_SCALES


def is_config(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-serialisable dict of a (nested) dataclass config."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "value") and type(value).__module__ != "builtins":  # enums
        return value.value
    return value


def field_paths(config_type: type, prefix: str = "") -> dict[str, Any]:
    """Every settable dotted key of a dataclass type, mapped to its declared type."""
    paths: dict[str, Any] = {}
    for name, hint in _type_hints(config_type).items():
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            paths.update(field_paths(hint, f"{key}."))
        else:
            paths[key] = hint
    return paths


@functools.cache
def _type_hints(config_type: type) -> dict[str, Any]:
    names = {field.name for field in dataclasses.fields(config_type) if field.init}
    return {name: hint for name, hint in typing.get_type_hints(config_type).items() if name in names}


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` → ``{"a": "1", "b.c": "x"}``; a missing ``=`` is an error."""
    parsed: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not of the form key=value", "e.g. --set epochs=3")
        parsed[key.strip()] = value
    return parsed


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings → dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_overrides(config: Any, overrides: Mapping[str, Any], source: str | Mapping[str, str] = "--set") -> Any:
    """A copy of ``config`` with dotted-key overrides applied and validated; raises ``ConfigError`` on bad input.

    ``source`` names where the overrides came from in error messages: one string for all of them, or a mapping from
    key to source (``{"steps": "--config p.yaml", "lr": "--grid"}``; keys it lacks are ``--set``).
    """
    known = field_paths(type(config))
    values = config_to_dict(config)
    for key, raw in overrides.items():
        origin = source if isinstance(source, str) else source.get(key, "--set")
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(sorted(known))}"
            raise ConfigError(f"{origin}: unknown config key {key!r} for {type(config).__name__}", hint)
        _assign(values, key, _convert(key, raw, known[key], origin))
    return build_config(type(config), values)


def build_config(config_type: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """Instantiate a (nested) dataclass from plain values, running every ``__post_init__`` check.

    Every field is validated against its type, defaults included: a NaN or infinite float is refused anywhere.
    """
    kwargs = {}
    hints = _type_hints(config_type)
    for name, value in values.items():
        hint = hints.get(name)
        if hint is None:
            raise ConfigError(f"unknown config key {prefix}{name!r} for {config_type.__name__}")
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = build_config(hint, value, f"{prefix}{name}.")
        else:
            value = _convert(f"{prefix}{name}", value, hint, "config")
        kwargs[name] = value
    try:
        return config_type(**kwargs)
    except ReproError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {config_type.__name__}: {error}") from error


def _adapter(hint: Any) -> TypeAdapter:
    try:
        return _cached_adapter(hint)
    except TypeError:  # an unhashable hint
        return _cached_adapter.__wrapped__(hint)


@functools.cache
def _cached_adapter(hint: Any) -> TypeAdapter:
    # NaN and infinity pass every comparison-based check in a __post_init__ silently; no config means them.
    return TypeAdapter(hint, config=ConfigDict(allow_inf_nan=False))


def _convert(key: str, raw: Any, hint: Any, source: str) -> Any:
    adapter = _adapter(hint)
    candidates = [raw]
    if isinstance(raw, str):  # "[1, 2]", "null", "1.0e-3": try the YAML reading of the string too
        with contextlib.suppress(yaml.YAMLError):
            candidates.append(yaml.safe_load(raw))
    error: ValidationError | None = None
    for candidate in candidates:
        try:
            return adapter.validate_python(candidate)
        except ValidationError as exc:
            error = exc
    assert error is not None
    expected = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    reason = error.errors()[0]["msg"]
    if error.errors()[0]["type"] == "finite_number":
        raise ConfigError(f"{source}: {key}={raw!r} is not a finite number", "NaN and infinity are not allowed")
    raise ConfigError(f"{source}: {key}={raw!r} is not a valid {expected}", reason)


def _assign(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = values
    for part in parents:
        node = node[part]
    node[leaf] = value


def load_preset(path: str | Path) -> dict[str, Any]:
    """Read a YAML preset: ``{experiment?: pkg:exp, scale?: quick, overrides?: {dotted or nested keys}}``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: not valid YAML ({error})") from error
    allowed = {"experiment", "scale", "overrides", "description"}
    if not isinstance(data, dict) or set(data) - allowed:
        extra = sorted(set(data) - allowed) if isinstance(data, dict) else data
        raise ConfigError(f"--config {path}: unexpected top-level keys {extra}", f"allowed: {sorted(allowed)}")
    if not isinstance(data.get("overrides") or {}, Mapping):
        raise ConfigError(f"--config {path}: 'overrides' must map config keys to values",
                          "e.g. overrides: {epochs: 3, model: {hidden: 8}}")
    if "scale" in data and data["scale"] not in ALL_SCALES:
        raise ConfigError(f"--config {path}: unknown scale {data['scale']!r}", f"use one of {', '.join(ALL_SCALES)}")
    data["overrides"] = flatten(data.get("overrides") or {})
    return data
