"""Small random networks for the oracle tests (weights large enough that decisions are non-trivial)."""

from __future__ import annotations

import torch
from certified_pruning.models import ModelConfig, cifar_model_deep
from torch import nn


def random_mlp(seed: int, inputs: int = 6, hidden: tuple[int, ...] = (16, 16), classes: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    previous = inputs
    for width in hidden:
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    layers.append(nn.Linear(previous, classes))
    model = nn.Sequential(*layers)
    for parameter in model.parameters():
        parameter.data.normal_(0, 1)
    return model.eval()


def small_bn_cnn(seed: int, channels: tuple[int, ...] = (4, 8, 8, 8, 8), fc_width: int = 16) -> nn.Sequential:
    """A scaled-down cifar_model_deep for 1×8×8 inputs with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = cifar_model_deep(ModelConfig(in_channels=1, input_size=8, channels=channels, fc_width=fc_width))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def sample_ball(x: torch.Tensor, eps: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform samples and box corners of the L∞ ball around x (1, ...), clipped to [0, 1]."""
    noise = torch.rand((count, *x.shape[1:]), generator=generator) * 2 - 1
    noise[: count // 4] = noise[: count // 4].sign()  # corners are where ReLU networks reach extremes
    return (x + eps * noise).clamp(0, 1)
