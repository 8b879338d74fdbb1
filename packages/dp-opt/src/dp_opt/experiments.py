"""Experiments of `dp-opt`, registered with `repro` through the `repro.experiments` entry point.

The paper's experiments are added by the package's own issue; until then the package registers none.
"""

from __future__ import annotations

from repro_shared.experiments import Experiment


def experiments() -> list[Experiment]:
    """Every experiment this package registers (each with smoke, quick and paper configs)."""
    return []
