"""Experiments of `decoding-comp-trust`, registered with `repro` through the `repro.experiments` entry point.

Compression (`compress`, issue 1/2) and the trust evaluation (`trust`, issue 2/2) each define theirs in their
own module.
"""

from __future__ import annotations

from repro_shared.experiments import Experiment


def experiments() -> list[Experiment]:
    """Every experiment this package registers (each with smoke, quick and paper configs)."""
    from decoding_comp_trust.compress_experiments import compress_experiments
    from decoding_comp_trust.trust_experiments import trust_experiments

    return [*compress_experiments(), *trust_experiments()]
