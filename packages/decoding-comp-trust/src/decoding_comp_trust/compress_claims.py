"""The paper's compression claims as signed effects on held-out next-token NLL (nats/token), with item intervals.

The paper measures MMLU and DecodingTrust scores of 13B models; the stand-in here is the held-out NLL of each
compressed model, the log of its perplexity, so a difference of NLLs is the log of a perplexity ratio. Each claim's
``effect`` is oriented so that a positive value is what the paper claims, and its ``interval`` is a paired percentile
bootstrap over the held-out windows (the test items), used when a claim has one seed.

Inputs are the ``compression.json`` manifests of one run (each with ``window_nll``, the NLL of every held-out window
in the same order as the dense model's ``dense_nll``); where a setting has several calibration seeds in the run, its
per-window NLL is the mean over them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from repro_shared.evidence import bootstrap_interval
from repro_shared.experiments import Claim

# "8-bit ≈ dense": the paper's bar is |Δ| < 3 points (of 100) on every dimension; on NLL the stand-in bar is
# 0.03 nats/token, i.e. a perplexity within about ±3 % of dense.
NEAR_DENSE_NATS = 0.03
QUANT_METHODS = ("gptq", "awq", "rtn", "autoround")
PRUNE_METHODS = ("magnitude", "sparsegpt", "wanda")
# Llama-2-13b-chat MMLU change vs dense (paper, Table 1 / notes): 3-bit vs 4-bit, and 50 % 2:4 pruning
PAPER_3V4 = {"gptq": "MMLU −8.1 (3-bit) vs −1.5 (4-bit)", "awq": "MMLU −2.1 (3-bit) vs −0.2 (4-bit)"}
PAPER_2OF4 = {"magnitude": "MMLU −19.2 (34.4 vs 53.6)", "sparsegpt": "MMLU −13.3 (40.3 vs 53.6)",
              "wanda": "MMLU −17.9 (35.7 vs 53.6)"}


def window_nll_by_setting(manifests: Sequence[dict[str, Any]]) -> dict[tuple[str, str], np.ndarray]:
    """(method, "w<bits>" or pattern) → per-window NLL, averaged over the run's calibration seeds of that setting."""
    groups: dict[tuple[str, str], list[list[float]]] = {}
    for manifest in manifests:
        nll = manifest.get("window_nll")
        if not nll:
            continue  # a model reused from a run that predates per-window NLLs
        variant = f"w{manifest['bits']}" if manifest.get("bits") else str(manifest.get("pattern"))
        groups.setdefault((manifest["method"], variant), []).append(list(nll))
    return {key: np.mean(np.asarray(values, dtype=float), axis=0) for key, values in groups.items()}


def _diff_claim(name: str, paper: str, worse: np.ndarray, better: np.ndarray, seed: int,
                transform: Callable[[float], float] = lambda d: d, note: str = "") -> Claim:
    """A claim whose effect is ``transform(mean(worse − better))`` over paired windows, with its bootstrap interval."""
    def statistic(a: np.ndarray, b: np.ndarray) -> float:
        return transform(float(np.mean(a - b)))

    effect = statistic(worse, better)
    interval = bootstrap_interval(statistic, worse, better, seed=seed)
    ratio = math.exp(float(np.mean(worse - better)))
    measured = f"ppl ratio {ratio:.4f} ({float(np.mean(worse - better)):+.4f} nats/token)"
    return Claim(name, paper, measured, note=note, effect=effect, interval=interval)


def compression_claims(manifests: Sequence[dict[str, Any]], dense_nll: Sequence[float], seed: int = 0) -> list[Claim]:
    """Every headline claim that the run's settings allow: 8-bit ≈ dense, 3-bit worse than 4-bit, 2:4 pruning costs
    utility, 4:8 hurts less than 2:4 (per method). Claim names hold no measured numbers (they are aggregated by name
    over seeds)."""
    nll = window_nll_by_setting(manifests)
    dense = np.asarray(dense_nll, dtype=float)
    claims = []
    for method in QUANT_METHODS:
        label = method.upper() if method != "autoround" else "AutoRound"
        if (method, "w8") in nll:
            claims.append(_diff_claim(
                f"{label} 8-bit ≈ dense: held-out NLL within {NEAR_DENSE_NATS} nats/token of dense "
                "(perplexity ±3 %; paper: |Δ| < 3 points on every dimension)", "|Δ| < 3 points",
                nll[method, "w8"], dense, seed, transform=lambda d: NEAR_DENSE_NATS - abs(d),
                note=f"effect = {NEAR_DENSE_NATS} − |NLL(8-bit) − NLL(dense)|"))
        if (method, "w3") in nll and (method, "w4") in nll:
            claims.append(_diff_claim(
                f"{label} 3-bit degrades more than 4-bit (held-out NLL)", PAPER_3V4.get(method, "3-bit worse"),
                nll[method, "w3"], nll[method, "w4"], seed, note="effect = NLL(3-bit) − NLL(4-bit), nats/token"))
    for method in PRUNE_METHODS:
        if (method, "2:4") in nll:
            claims.append(_diff_claim(
                f"{method} 2:4 pruning (50 %) costs utility (held-out NLL above dense)",
                PAPER_2OF4[method], nll[method, "2:4"], dense, seed,
                note="effect = NLL(2:4) − NLL(dense), nats/token"))
        if (method, "2:4") in nll and (method, "4:8") in nll:
            claims.append(_diff_claim(
                f"{method}: 4:8 hurts less than 2:4 (held-out NLL)", "magnitude MMLU 41.5 (4:8) vs 34.4 (2:4)",
                nll[method, "2:4"], nll[method, "4:8"], seed, note="effect = NLL(2:4) − NLL(4:8), nats/token"))
    return claims
