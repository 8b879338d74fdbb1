"""The paper's `cifar_model_deep` family (conv+BN+ReLU stack, two linear layers), parameterised by width and input size.

Released code: `LTH-training/models/FeedforwardNets.py:71-102` (channels 32,64,64,128,128; FC 100).
"""

from __future__ import annotations

from dataclasses import dataclass

from repro_shared.errors import ConfigError
from torch import nn

# (kernel, stride, padding) of the five convolutions of cifar_model_deep, in order.
_CONV_GEOMETRY = ((3, 1, 1), (4, 2, 1), (3, 1, 1), (4, 2, 1), (4, 2, 1))
PAPER_CHANNELS = (32, 64, 64, 128, 128)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a `cifar_model_deep` network."""

    in_channels: int = 3
    input_size: int = 32
    channels: tuple[int, ...] = PAPER_CHANNELS  # output channels of the five convolutions
    fc_width: int = 100
    num_classes: int = 10
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if len(self.channels) != len(_CONV_GEOMETRY):
            raise ConfigError(f"channels={self.channels}: cifar_model_deep has exactly {len(_CONV_GEOMETRY)} convs")
        if min(self.channels) < 1 or self.fc_width < 1 or self.num_classes < 2 or self.in_channels < 1:
            raise ConfigError(f"{self}: channel counts and widths must be positive, num_classes >= 2")
        if conv_output_size(self.input_size) < 1:
            raise ConfigError(f"input_size={self.input_size}: too small for cifar_model_deep's three stride-2 convs")


def conv_output_size(input_size: int) -> int:
    """Spatial size after the five convolutions (32 -> 4, 28 -> 3, 8 -> 1)."""
    size = input_size
    for kernel, stride, padding in _CONV_GEOMETRY:
        size = (size + 2 * padding - kernel) // stride + 1
    return size


def model_config_for(input_shape: tuple[int, ...], num_classes: int, channels: tuple[int, ...],
                     fc_width: int) -> ModelConfig:
    """The `cifar_model_deep` shape for a dataset's (C, H, W) images, with the experiment's widths."""
    return ModelConfig(in_channels=input_shape[0], input_size=input_shape[-1], channels=channels, fc_width=fc_width,
                       num_classes=num_classes)


def layer_sizes(config: ModelConfig) -> list[int]:
    """Neurons per layer of `cifar_model_deep`: the input, each ReLU layer, the logits (no model is built)."""
    sizes, size = [config.in_channels * config.input_size**2], config.input_size
    for width, (kernel, stride, padding) in zip(config.channels, _CONV_GEOMETRY, strict=True):
        size = (size + 2 * padding - kernel) // stride + 1
        sizes.append(width * size * size)
    return [*sizes, config.fc_width, config.num_classes]


def cifar_model_deep(config: ModelConfig = ModelConfig()) -> nn.Sequential:
    """Build `cifar_model_deep`: 5 × (Conv [-BN] -ReLU), Flatten, Linear-ReLU, Linear (FeedforwardNets.py:71)."""
    layers: list[nn.Module] = []
    previous = config.in_channels
    for width, (kernel, stride, padding) in zip(config.channels, _CONV_GEOMETRY, strict=True):
        layers.append(nn.Conv2d(previous, width, kernel, stride=stride, padding=padding))
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU())
        previous = width
    spatial = conv_output_size(config.input_size)
    layers += [nn.Flatten(), nn.Linear(previous * spatial * spatial, config.fc_width), nn.ReLU(),
               nn.Linear(config.fc_width, config.num_classes)]
    return nn.Sequential(*layers)


def count_relus(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Number of ReLU neurons of `model` for one input of `input_shape` (C, H, W)."""
    import torch

    count = 0

    def hook(module, inputs, output):
        nonlocal count
        count += output[0].numel()

    handles = [module.register_forward_hook(hook) for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return count
