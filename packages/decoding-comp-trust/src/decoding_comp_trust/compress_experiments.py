"""The `compress` experiments of decoding-comp-trust (filled in by its issue)."""

from __future__ import annotations

from repro_shared.experiments import Experiment


def compress_experiments() -> list[Experiment]:
    """Experiments of this part of the package."""
    return []
