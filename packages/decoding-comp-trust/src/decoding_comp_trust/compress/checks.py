"""Checks after compression (recorded in the manifest and the run's results): sparsity and N:M pattern per pruned
layer, at most 2^bits distinct values per group per quantized layer, perplexity on held-out text, size on disk."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .algorithms import SparsityPattern


def nm_pattern_holds(weight: torch.Tensor, n: int, m: int) -> bool:
    """True iff every group of ``m`` consecutive inputs of every row has at most ``n`` non-zeros."""
    rows, cols = weight.shape
    if cols % m:
        return False
    return bool(((weight.reshape(rows, cols // m, m) != 0).sum(dim=2) <= n).all())


def max_distinct_per_group(weight: torch.Tensor, group_size: int) -> int:
    """The largest number of distinct values in any (row, group of ``group_size`` inputs) of ``weight``."""
    rows, cols = weight.shape
    groups = weight.float().reshape(rows * (cols // group_size), group_size)
    ordered = torch.sort(groups, dim=1).values
    return int(((ordered[:, 1:] != ordered[:, :-1]).sum(dim=1) + 1).max())


def pruning_report(linears: dict[str, nn.Linear], pattern: SparsityPattern) -> dict[str, Any]:
    """Per-layer sparsity and pattern check, and the overall sparsity of the targeted weights."""
    zeros = total = 0
    layers, failed = {}, []
    for name, module in linears.items():
        w = module.weight.data
        layer_zeros = int((w == 0).sum())
        zeros, total = zeros + layer_zeros, total + w.numel()
        sparsity = layer_zeros / w.numel()
        ok = (nm_pattern_holds(w, pattern.n, pattern.m) if pattern.structured
              else sparsity >= pattern.sparsity - 0.5 / w.shape[1])
        layers[name] = round(sparsity, 6)
        if not ok:
            failed.append(name)
    return {"sparsity": zeros / total, "pattern_ok": not failed, "pattern_failed_layers": failed,
            "layer_sparsity": layers}


def quantization_report(linears: dict[str, nn.Linear], bits: int, group_size: int) -> dict[str, Any]:
    """Largest distinct-value count per group over all quantized layers against the 2^bits limit."""
    worst = {name: max_distinct_per_group(m.weight.data, group_size) for name, m in linears.items()}
    limit = 2**bits
    return {"max_distinct_per_group": max(worst.values()), "distinct_limit": limit,
            "distinct_ok": all(v <= limit for v in worst.values()),
            "distinct_failed_layers": [name for name, v in worst.items() if v > limit]}


def effective_bits(settings: Any) -> float:
    """Storage bits per targeted weight: b + (16-bit scale [+ zero]) / group for quantizers; the paper's 16 × density
    for pruned models (it counts 50% pruned 16-bit models as 8 bits)."""
    if settings.is_quantization:
        overhead = 16 if settings.is_symmetric else 16 + settings.bits
        return settings.bits + overhead / settings.group_size
    return 16 * (1 - settings.sparsity_pattern().sparsity)


@torch.no_grad()
def window_nlls(model: nn.Module, windows: torch.Tensor, batch_size: int = 4) -> list[float]:
    """Mean next-token NLL (nats/token) of each held-out window, scored independently (wanda's ``eval_ppl``).

    Per window rather than pooled so that claims can be bootstrapped over the windows (the test items).
    """
    model.eval()
    out: list[float] = []
    for start in range(0, windows.shape[0], batch_size):
        batch = windows[start:start + batch_size].to(next(model.parameters()).device)
        logits = model(batch, use_cache=False).logits[:, :-1].float()
        nll = nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
        out.extend(float(row) for row in nll.mean(dim=1))
    return out


def perplexity(model: nn.Module, windows: torch.Tensor, batch_size: int = 4) -> float:
    """exp(mean next-token NLL) over held-out windows (equal lengths: the mean of the windows' means)."""
    nlls = window_nlls(model, windows, batch_size)
    return math.exp(sum(nlls) / len(nlls))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
