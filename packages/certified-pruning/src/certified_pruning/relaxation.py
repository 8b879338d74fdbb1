"""Linear bound propagation (CROWN / α-CROWN) on a dense `AffineReluNetwork`, batched over branch-and-bound domains.

The same relaxation as auto_LiRPA's CROWN (Zhang et al. 2018; α-CROWN: Xu et al. 2021), re-implemented on dense
matrices because branch and bound needs per-domain intermediate bounds with ReLU splits imposed on them, which
auto_LiRPA 0.3 has no branch-and-bound interface for. A split is imposed by tightening a neuron's pre-activation
bounds (active: l ← max(l, 0); inactive: u ← min(u, 0)), which makes the neuron stable in the relaxation; every
bound is valid on the sub-domain {x in box, split neurons have the split sign}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from certified_pruning.affine_net import AffineReluNetwork, dense_interval

#: Bounds that cross by more than this prove a domain empty; smaller crossings are treated as rounding.
INFEASIBILITY_TOLERANCE = 1e-7


@dataclass
class LayerBounds:
    """Pre-activation bounds of every ReLU layer for a batch of domains: lists of (domains, neurons) tensors."""

    lowers: list[torch.Tensor]
    uppers: list[torch.Tensor]

    def infeasible(self) -> torch.Tensor:
        """Domains (bool per domain) whose split constraints are contradictory: some lower bound above its upper."""
        flags = torch.zeros(self.lowers[0].shape[0], dtype=torch.bool)
        for lower, upper in zip(self.lowers, self.uppers, strict=True):
            flags |= (lower > upper + INFEASIBILITY_TOLERANCE).any(dim=1)
        return flags

    def unstable(self) -> list[torch.Tensor]:
        """Masks of the neurons whose sign is still undecided (l < 0 < u) in each layer."""
        return [(lower < 0) & (upper > 0) for lower, upper in zip(self.lowers, self.uppers, strict=True)]

    def select(self, index: torch.Tensor) -> LayerBounds:
        return LayerBounds([b[index] for b in self.lowers], [b[index] for b in self.uppers])


@dataclass
class BackwardResult:
    """A CROWN lower bound of spec·z_k and what branching and counterexample search need from the same pass."""

    lower: torch.Tensor  # (domains, specs)
    input_minimiser: torch.Tensor  # (domains, specs, inputs): the box vertex minimising the final linear bound
    intercept_scores: list[torch.Tensor]  # per ReLU layer (domains, neurons): BaBSR-style split scores


def relu_relaxation(lower: torch.Tensor, upper: torch.Tensor, alpha: torch.Tensor | None = None):
    """Slopes/intercept of the CROWN ReLU relaxation: a ≥ α·z (lower), a ≤ s·(z − l) (upper) for unstable neurons."""
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    width = (upper - lower).clamp(min=1e-12)
    upper_slope = torch.where(unstable, upper / width, active.to(lower.dtype))
    upper_intercept = torch.where(unstable, -upper_slope * lower, torch.zeros_like(lower))
    adaptive = (upper > -lower).to(lower.dtype)  # CROWN's adaptive lower slope: 1 if u > |l| else 0
    slope = adaptive if alpha is None else alpha
    lower_slope = torch.where(unstable, slope, active.to(lower.dtype))
    return lower_slope, upper_slope, upper_intercept


def backward_lower_bound(network: AffineReluNetwork, layer: int, spec: torch.Tensor, bounds: LayerBounds,
                         x_lower: torch.Tensor, x_upper: torch.Tensor,
                         alphas: list[torch.Tensor] | None = None) -> BackwardResult:
    """CROWN backward pass: a lower bound of spec·z_layer over the box, given bounds of the ReLU layers below it.

    spec: (domains, specs, n_layer) or (specs, n_layer); alphas: optional lower-slope variables per ReLU layer,
    shape (domains, specs, neurons) (α-CROWN).
    """
    coefficient = spec if spec.dim() == 3 else spec.unsqueeze(0).expand(x_lower.shape[0], -1, -1)
    constant = coefficient @ network.biases[layer]
    coefficient = coefficient @ network.weights[layer]
    scores: list[torch.Tensor] = [torch.zeros(0)] * layer
    for j in range(layer - 1, -1, -1):
        alpha = None if alphas is None else alphas[j]
        lower_slope, upper_slope, upper_intercept = relu_relaxation(
            bounds.lowers[j].unsqueeze(1), bounds.uppers[j].unsqueeze(1), alpha)
        positive, negative = coefficient.clamp(min=0), coefficient.clamp(max=0)
        relaxation_loss = negative * upper_intercept  # ≤ 0: what the triangle's intercept costs the bound
        scores[j] = -relaxation_loss.amax(dim=1) if relaxation_loss.shape[1] == 1 else -relaxation_loss.sum(dim=1)
        constant = constant + relaxation_loss.sum(dim=-1)
        coefficient = positive * lower_slope + negative * upper_slope
        constant = constant + coefficient @ network.biases[j]
        coefficient = coefficient @ network.weights[j]
    x_lower_, x_upper_ = x_lower.unsqueeze(1), x_upper.unsqueeze(1)
    minimiser = torch.where(coefficient >= 0, x_lower_, x_upper_)
    lower = constant + (coefficient * minimiser).sum(dim=-1)
    return BackwardResult(lower, minimiser, scores)


def first_layer_bounds(network: AffineReluNetwork, x_lower: torch.Tensor, x_upper: torch.Tensor):
    """Exact bounds of the first affine layer over the box (interval arithmetic is exact for one affine map)."""
    return dense_interval(x_lower, x_upper, network.weights[0], network.biases[0])


def interval_bounds(network: AffineReluNetwork, x_lower: torch.Tensor, x_upper: torch.Tensor) -> LayerBounds:
    """IBP pre-activation bounds of every ReLU layer (Gowal et al. 2018)."""
    lowers, uppers = [], []
    lower, upper = x_lower, x_upper
    for weight, bias in zip(network.weights[:-1], network.biases[:-1], strict=True):
        pre_lower, pre_upper = dense_interval(lower, upper, weight, bias)
        lowers.append(pre_lower)
        uppers.append(pre_upper)
        lower, upper = pre_lower.clamp(min=0), pre_upper.clamp(min=0)
    return LayerBounds(lowers, uppers)


def crown_layer_bounds(network: AffineReluNetwork, x_lower: torch.Tensor, x_upper: torch.Tensor,
                       known: LayerBounds | None = None, start_layer: int = 0) -> LayerBounds:
    """CROWN bounds of every ReLU layer, recomputed from `start_layer` on and intersected with `known` (splits)."""
    domains = x_lower.shape[0]
    known_is_root = known is None
    if known is None:
        known = LayerBounds([torch.full((domains, n), -torch.inf, dtype=torch.float64)
                             for n in network.relu_layer_sizes],
                            [torch.full((domains, n), torch.inf, dtype=torch.float64)
                             for n in network.relu_layer_sizes])
        start_layer = 0
    lowers, uppers = list(known.lowers), list(known.uppers)
    for layer in range(start_layer, len(network.relu_layer_sizes)):
        if layer == 0:
            lower, upper = first_layer_bounds(network, x_lower, x_upper)
        else:
            size = network.relu_layer_sizes[layer]
            # With known bounds, a neuron already stable in every domain stays stable on the sub-domains (its known
            # bounds remain valid there), so only neurons unstable somewhere in the batch are re-bounded.
            rows = torch.arange(size) if known_is_root else torch.nonzero(
                ((lowers[layer] < 0) & (uppers[layer] > 0)).any(dim=0)).flatten()
            lower, upper = lowers[layer].clone(), uppers[layer].clone()
            if len(rows):
                eye = torch.eye(size, dtype=torch.float64)[rows]
                both = backward_lower_bound(network, layer, torch.cat([eye, -eye]), LayerBounds(lowers, uppers),
                                            x_lower, x_upper).lower
                lower[:, rows], upper[:, rows] = both[:, :len(rows)], -both[:, len(rows):]
        lowers[layer] = torch.maximum(lower, lowers[layer])
        uppers[layer] = torch.minimum(upper, uppers[layer])
    return LayerBounds(lowers, uppers)


def optimise_alpha(network: AffineReluNetwork, spec: torch.Tensor, bounds: LayerBounds, x_lower: torch.Tensor,
                   x_upper: torch.Tensor, iterations: int, learning_rate: float = 0.1) -> BackwardResult:
    """α-CROWN on the output spec: gradient ascent on the lower-relaxation slopes α ∈ [0, 1], intermediate bounds fixed.

    Every α in [0, 1] gives a valid bound, so the best bound seen is kept (the CROWN bound is the starting point).
    """
    layer = len(network.weights) - 1
    best = backward_lower_bound(network, layer, spec, bounds, x_lower, x_upper)
    if iterations <= 0:
        return best
    specs = best.lower.shape[1]
    alphas = [((upper > -lower).to(torch.float64)).unsqueeze(1).expand(-1, specs, -1).clone().requires_grad_(True)
              for lower, upper in zip(bounds.lowers, bounds.uppers, strict=True)]
    optimiser = torch.optim.Adam(alphas, lr=learning_rate)
    for _ in range(iterations):
        result = backward_lower_bound(network, layer, spec, bounds, x_lower, x_upper, alphas)
        improved = result.lower.detach() > best.lower
        if improved.any():
            best = _merge(best, result, improved)
        optimiser.zero_grad()
        (-result.lower.sum()).backward()
        optimiser.step()
        with torch.no_grad():
            for alpha in alphas:
                alpha.clamp_(0, 1)
    return best


def _merge(best: BackwardResult, new: BackwardResult, improved: torch.Tensor) -> BackwardResult:
    """Element-wise keep of the better bound (per domain and spec) between two backward results."""
    lower = torch.where(improved, new.lower.detach(), best.lower)
    minimiser = torch.where(improved.unsqueeze(-1), new.input_minimiser.detach(), best.input_minimiser)
    row_improved = improved.any(dim=1, keepdim=True)
    scores = [s if s.numel() == 0 else torch.where(row_improved, n.detach(), s)
              for s, n in zip(best.intercept_scores, new.intercept_scores, strict=True)]
    return BackwardResult(lower, minimiser, scores)
