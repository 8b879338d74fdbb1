"""Field checks shared by this package's configs: one `ConfigError` naming the field, its value and what is allowed,
raised when the config is built (before any training or verification)."""

from __future__ import annotations

from collections.abc import Callable

from repro_shared.errors import ConfigError

Rule = tuple[Callable[[object], bool], str]

POSITIVE: Rule = (lambda value: value > 0, "must be > 0")
NON_NEGATIVE: Rule = (lambda value: value >= 0, "must be >= 0")
AT_LEAST_ONE: Rule = (lambda value: value >= 1, "must be an integer >= 1")
FRACTION: Rule = (lambda value: 0 <= value < 1, "must lie in [0, 1)")
OPEN_FRACTION: Rule = (lambda value: 0 < value < 1, "must lie strictly between 0 and 1")


def check_fields(config: object, rules: dict[str, Rule]) -> None:
    """Raise ConfigError for the first field of `config` whose value breaks its rule: "name=value: what is allowed"."""
    for name, (allowed, description) in rules.items():
        value = getattr(config, name)
        if not allowed(value):
            raise ConfigError(f"{name}={value!r}: {description}")


def check_choice(name: str, value: object, choices: tuple) -> None:
    """Raise ConfigError when `value` is not one of `choices`."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: choose one of {', '.join(map(str, choices))}")
