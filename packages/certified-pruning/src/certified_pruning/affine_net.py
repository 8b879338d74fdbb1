"""A feed-forward ReLU network as a chain of dense affine maps, the form branch and bound and the MILP reason about.

Conv2d, BatchNorm (eval mode, folded into the preceding affine map), Flatten and Linear layers between two ReLUs
compose into one dense matrix acting on the flattened (C, H, W) activations. Fine for the scaled-down networks
verified here (a few thousand neurons); float64 keeps the bound arithmetic far from rounding trouble.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from repro_shared.errors import ConfigError
from torch import nn


def interval_affine(lower, upper, affine, affine_abs):
    """Interval arithmetic through one affine map (IBP, Gowal et al. 2018, Eq. 6): the centre goes through the map,
    the radius through its absolute value. `affine(c)` = W·c + b, `affine_abs(r)` = |W|·r (tensors or arrays)."""
    center, radius = (upper + lower) / 2, (upper - lower) / 2
    mid, spread = affine(center), affine_abs(radius)
    return mid - spread, mid + spread


def dense_interval(lower, upper, weight, bias):
    """`interval_affine` for a dense matrix acting on row vectors (batch, inputs) @ Wᵀ + b."""
    return interval_affine(lower, upper, lambda c: c @ weight.T + bias, lambda r: r @ abs(weight).T)


@dataclass(frozen=True)
class AffineReluNetwork:
    """f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L with x flattened; `weights[k]` maps layer k to layer k+1."""

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    input_shape: tuple[int, ...]

    @property
    def relu_layer_sizes(self) -> list[int]:
        """Number of ReLU neurons in each hidden layer."""
        return [w.shape[0] for w in self.weights[:-1]]

    @property
    def num_outputs(self) -> int:
        return self.weights[-1].shape[0]

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pre-activation values z_1..z_L (the last is the logits) for a batch of flattened inputs."""
        values, activation = [], x.to(torch.float64)
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = activation @ weight.T + bias
            values.append(z)
            if index < len(self.weights) - 1:
                activation = z.clamp(min=0)
        return values

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of flattened inputs."""
        return self.pre_activations(x)[-1]

    def with_spec(self, spec: torch.Tensor) -> AffineReluNetwork:
        """The network whose outputs are `spec @ logits` (spec rows are linear forms of the logits)."""
        spec = spec.to(torch.float64)
        return AffineReluNetwork((*self.weights[:-1], spec @ self.weights[-1]),
                                 (*self.biases[:-1], spec @ self.biases[-1]), self.input_shape)


def _dense_map(module: nn.Module, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Matrix, bias and output shape of an affine layer applied to inputs of `shape` (evaluated on a basis)."""
    size = int(torch.tensor(shape).prod())
    with torch.no_grad():
        module = module.double().eval()
        bias_out = module(torch.zeros(1, *shape, dtype=torch.float64))
        basis = torch.eye(size, dtype=torch.float64).view(size, *shape)
        columns = module(basis) - bias_out
    return columns.reshape(size, -1).T.contiguous(), bias_out.reshape(-1), tuple(bias_out.shape[1:])


def to_affine_relu_network(model: nn.Sequential, input_shape: tuple[int, ...]) -> AffineReluNetwork:
    """Convert an eval-mode Sequential of Conv2d/BatchNorm/Flatten/Linear/ReLU into dense affine maps."""
    import copy

    if not isinstance(model, nn.Sequential):
        raise ConfigError(f"the verifier needs an nn.Sequential model, got {type(model).__name__}")
    modules = _flatten_sequential(model)
    weights, biases = [], []
    shape = tuple(input_shape)
    matrix = torch.eye(int(torch.tensor(shape).prod()), dtype=torch.float64)
    offset = torch.zeros(matrix.shape[0], dtype=torch.float64)
    for module in modules:
        if isinstance(module, nn.ReLU):
            weights.append(matrix)
            biases.append(offset)
            matrix = torch.eye(matrix.shape[0], dtype=torch.float64)
            offset = torch.zeros(matrix.shape[0], dtype=torch.float64)
        elif isinstance(module, nn.Flatten):
            shape = (int(torch.tensor(shape).prod()),)
        elif isinstance(module, nn.Conv2d | nn.Linear | nn.BatchNorm1d | nn.BatchNorm2d):
            layer_matrix, layer_bias, shape = _dense_map(copy.deepcopy(module), shape)
            matrix, offset = layer_matrix @ matrix, layer_matrix @ offset + layer_bias
        else:
            raise ConfigError(f"layer type {type(module).__name__} is not supported by the verifier "
                              "(supported: Conv2d, Linear, BatchNorm1d/2d, Flatten, ReLU)")
    weights.append(matrix)
    biases.append(offset)
    return AffineReluNetwork(tuple(weights), tuple(biases), tuple(input_shape))


def _flatten_sequential(model: nn.Module) -> list[nn.Module]:
    """Leaf modules of nested Sequentials, in order."""
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in _flatten_sequential(child)]
    return [model]
