"""Output bounds under an L∞ ball through auto_LiRPA: IBP, CROWN-IBP, CROWN and α-CROWN (`BoundedModule`).

Pruning masks live on the plain `nn.Module` (as `weight * mask` already folded into its parameters); a bounded
module is a snapshot, so rebuild it with `bounded_module(model, ...)` whenever weights change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from repro_shared.errors import ConfigError
from torch import nn

from certified_pruning.lirpa_compat import import_auto_lirpa

#: Our method names -> auto_LiRPA `compute_bounds` arguments.
METHODS = {
    "IBP": {"IBP": True, "method": None},
    "CROWN-IBP": {"IBP": True, "method": "backward"},
    "CROWN": {"IBP": False, "method": "backward"},
    "alpha-CROWN": {"IBP": False, "method": "CROWN-Optimized"},
}
SUPPORTED_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.Flatten, nn.Sequential)


@dataclass(frozen=True)
class LinfBall:
    """The L∞ ball of radius `eps` around inputs, intersected with the valid input box [lower, upper]."""

    eps: float
    lower: float = 0.0
    upper: float = 1.0

    def __post_init__(self) -> None:
        if not self.eps > 0:
            raise ConfigError(f"eps={self.eps}: the perturbation radius must be positive")
        if not self.lower < self.upper:
            raise ConfigError(f"input box [{self.lower}, {self.upper}] is empty")

    def box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Element-wise lower and upper corners of the ball around `x`, clipped to the input box."""
        return (x - self.eps).clamp(min=self.lower), (x + self.eps).clamp(max=self.upper)


def check_supported(model: nn.Module) -> None:
    """Raise ConfigError naming the first layer type the verifier does not support."""
    for name, module in model.named_modules():
        if not isinstance(module, SUPPORTED_LAYERS):
            raise ConfigError(f"layer {name!r} of type {type(module).__name__} is not supported; supported: "
                              + ", ".join(t.__name__ for t in SUPPORTED_LAYERS))


def check_input_shape(model: nn.Module, x: torch.Tensor, input_shape: tuple[int, ...] | None) -> None:
    """Raise ConfigError when a batch `x` does not have the per-example shape the model expects."""
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise ConfigError(f"input of shape {tuple(x.shape[1:])} does not match the model's input shape "
                          f"{tuple(input_shape)}")


def bounded_module(model: nn.Module, example: torch.Tensor, loss_fusion: bool = False):
    """Wrap an eval-mode plain model in auto_LiRPA's `BoundedModule` (traced once on `example`)."""
    check_supported(model)
    lirpa = import_auto_lirpa()
    bound_opts = {"relu": "adaptive", "conv_mode": "patches"}
    if loss_fusion:
        bound_opts["loss_fusion"] = True
    return lirpa.BoundedModule(model, example, bound_opts=bound_opts, device=str(example.device))


def margin_spec(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Spec matrix C (batch, classes-1, classes) with rows e_y − e_j for every j ≠ y (margins of the true label)."""
    eye = torch.eye(num_classes, dtype=torch.float32, device=labels.device)
    rows = eye[labels].unsqueeze(1) - eye.unsqueeze(0)  # (batch, classes, classes)
    others = torch.ones(len(labels), num_classes, dtype=torch.bool, device=labels.device)
    others[torch.arange(len(labels)), labels] = False
    return rows[others].view(len(labels), num_classes - 1, num_classes)


def compute_bounds(bounded, x: torch.Tensor, ball: LinfBall, method: str, spec: torch.Tensor | None = None,
                   alpha_iterations: int = 20, alpha_lr: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds of `spec @ f(x')` (or of f(x') without spec) over x' in the ball, by `method`."""
    if method not in METHODS:
        raise ConfigError(f"bound method {method!r} is unknown; choose one of {sorted(METHODS)}")
    lirpa = import_auto_lirpa()
    x_lower, x_upper = ball.box(x)
    perturbation = lirpa.PerturbationLpNorm(norm=np.inf, eps=ball.eps, x_L=x_lower, x_U=x_upper)
    bounded_x = lirpa.BoundedTensor(x, perturbation)
    if method == "alpha-CROWN":
        bounded.set_bound_opts({"optimize_bound_args": {"iteration": alpha_iterations, "lr_alpha": alpha_lr}})
    lower, upper = bounded.compute_bounds(x=(bounded_x,), C=spec, **METHODS[method])
    return lower.detach(), upper.detach()


def output_bounds(model: nn.Module, x: torch.Tensor, ball: LinfBall, method: str = "CROWN",
                  spec: torch.Tensor | None = None, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """One-shot convenience: build a bounded module for `model` and bound its outputs (or `spec` rows) on `x`."""
    model = model.eval()
    return compute_bounds(bounded_module(model, x), x, ball, method, spec, **kwargs)
