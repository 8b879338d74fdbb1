"""PGD attack on the margin loss with random restarts and early stop (the verifier's falsification stage).

Mirrors the α,β-CROWN settings the paper used (step ε/4, restarts, stop at the first success), scaled by config.
"""

from __future__ import annotations

import torch
from torch import nn


def margins(logits: torch.Tensor, label: int) -> torch.Tensor:
    """logit_y − logit_j for every j ≠ y, shape (batch, classes − 1)."""
    others = [j for j in range(logits.shape[-1]) if j != label]
    return logits[:, label:label + 1] - logits[:, others]


def pgd_attack(model: nn.Module, x: torch.Tensor, label: int, x_lower: torch.Tensor, x_upper: torch.Tensor,
               steps: int, restarts: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise the smallest margin over the box [x_lower, x_upper] around the single input x (1, ...).

    Returns the best point found and its per-label margins (the worst margins over restarts, for label ordering).
    All restarts run as one batch; the first restart starts at x itself, the others uniformly in the box.
    """
    step = (x_upper - x_lower).max() / 8  # = ε/4 for an unclipped ball of radius ε
    start = x_lower + (x_upper - x_lower) * torch.rand((restarts, *x.shape[1:]), generator=generator)
    start[0] = x[0]
    point = start.clone().requires_grad_(True)
    best_point, best_margins = x.clone(), margins(model(x), label).detach()
    for _ in range(steps):
        current = margins(model(point), label)
        worst = current.min(dim=1).values
        index = int(worst.argmin())
        if worst[index] < best_margins.min():
            best_point, best_margins = point[index:index + 1].detach().clone(), current[index:index + 1].detach()
        if best_margins.min() < 0:
            break  # early stop: a counterexample exists
        (gradient,) = torch.autograd.grad(worst.sum(), point)
        with torch.no_grad():
            point -= step * gradient.sign()
            point.copy_(torch.maximum(torch.minimum(point, x_upper), x_lower))
    if best_margins.min() >= 0:  # check the final iterate too
        with torch.no_grad():
            current = margins(model(point), label)
        index = int(current.min(dim=1).values.argmin())
        if current[index].min() < best_margins.min():
            best_point, best_margins = point[index:index + 1].detach(), current[index:index + 1]
    return best_point, best_margins[0]
