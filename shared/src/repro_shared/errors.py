"""The one exception type the suite raises for bad input: the CLI prints it as one line and exits non-zero."""

from __future__ import annotations


class ReproError(Exception):
    """Bad input or a missing resource: ``message`` says what is wrong, ``hint`` what would be right."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(ReproError):
    """An unknown config key, a value of the wrong type, or an invalid combination of settings."""


class NotFoundError(ReproError):
    """A named experiment, dataset or model that cannot be found where it was looked for."""


class DataIntegrityError(ReproError):
    """A file whose SHA-256 differs from the one its dataset declares (a changed source or a damaged copy)."""
