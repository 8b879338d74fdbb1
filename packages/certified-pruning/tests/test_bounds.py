"""Bounds through auto_LiRPA (via the compatibility layer) and our dense CROWN contain sampled perturbed outputs."""

from __future__ import annotations

import pytest
import torch
from certified_pruning.affine_net import to_affine_relu_network
from certified_pruning.bounds import METHODS, LinfBall, bounded_module, compute_bounds, margin_spec, output_bounds
from certified_pruning.relaxation import (
    backward_lower_bound,
    crown_layer_bounds,
    interval_bounds,
    optimise_alpha,
)
from cp_helpers import random_mlp, sample_ball, small_bn_cnn
from repro_shared.errors import ConfigError
from torch import nn


@pytest.fixture(scope="module")
def cnn_case():
    model = small_bn_cnn(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 8, 8, generator=generator)
    labels = model(x).argmax(1)
    return model, x, labels, LinfBall(0.03), generator


def _sampled_margins(model, x, spec, ball, generator):
    with torch.no_grad():
        samples = [model(sample_ball(x[i:i + 1], ball.eps, 400, generator)) for i in range(len(x))]
    return [s @ spec[i].T for i, s in enumerate(samples)]  # per image (samples, specs)


def test_auto_lirpa_imports_through_the_compat_layer_and_bounds_a_batchnorm_cnn(cnn_case):
    model, x, labels, ball, generator = cnn_case
    spec = margin_spec(labels, 10)
    bounded = bounded_module(model, x)
    sampled = _sampled_margins(model, x, spec, ball, generator)
    widths = {}
    for method in METHODS:
        kwargs = {"alpha_iterations": 3} if method == "alpha-CROWN" else {}
        lower, upper = compute_bounds(bounded, x, ball, method, spec, **kwargs)
        assert lower.shape == (2, 9) and torch.isfinite(lower).all()
        for i in range(len(x)):
            assert (lower[i] <= sampled[i].min(0).values + 1e-5).all(), method
            assert (upper[i] >= sampled[i].max(0).values - 1e-5).all(), method
        widths[method] = float((upper - lower).mean())
    assert widths["CROWN"] < widths["IBP"]  # the linear relaxation is far tighter than intervals on this net
    assert widths["alpha-CROWN"] <= widths["CROWN"] + 1e-5


def test_our_dense_crown_matches_auto_lirpa_crown(cnn_case):
    model, x, labels, ball, _ = cnn_case
    spec = margin_spec(labels, 10)
    lirpa_lower, _ = output_bounds(model, x, ball, "CROWN", spec)
    network = to_affine_relu_network(model, (1, 8, 8))
    x_lower, x_upper = (b.flatten(1).double() for b in ball.box(x))
    layer_bounds = crown_layer_bounds(network, x_lower, x_upper)
    ours = backward_lower_bound(network, len(network.weights) - 1, spec.double(), layer_bounds, x_lower, x_upper)
    torch.testing.assert_close(ours.lower, lirpa_lower.double(), atol=1e-5, rtol=1e-4)


def test_dense_bounds_contain_sampled_pre_activations_and_alpha_only_tightens():
    model = random_mlp(3, inputs=5, hidden=(12, 12, 8), classes=4)
    network = to_affine_relu_network(model, (5,))
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(1, 5, generator=generator)
    ball = LinfBall(0.1)
    x_lower, x_upper = (b.double() for b in ball.box(x))
    samples = sample_ball(x, ball.eps, 2000, generator).double()
    values = network.pre_activations(samples)
    for bounds in (interval_bounds(network, x_lower, x_upper), crown_layer_bounds(network, x_lower, x_upper)):
        for k, (lower, upper) in enumerate(zip(bounds.lowers, bounds.uppers, strict=True)):
            assert (lower[0] <= values[k].min(0).values + 1e-9).all()
            assert (upper[0] >= values[k].max(0).values - 1e-9).all()
    spec = torch.eye(4, dtype=torch.float64)[None]
    crown_bounds = crown_layer_bounds(network, x_lower, x_upper)
    crown = backward_lower_bound(network, 3, spec, crown_bounds, x_lower, x_upper).lower
    alpha = optimise_alpha(network, spec, crown_bounds, x_lower, x_upper, iterations=30).lower
    assert (alpha >= crown - 1e-12).all() and (alpha > crown + 1e-6).any()
    assert (alpha[0] <= values[-1].min(0).values + 1e-9).all()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="eps=0"):
        LinfBall(0.0)
    with pytest.raises(ConfigError, match=r"eps=-0\.1"):
        LinfBall(-0.1)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="Tanh"):
        bounded_module(model, torch.zeros(1, 4))
    with pytest.raises(ConfigError, match="Tanh"):
        to_affine_relu_network(model, (4,))
    with pytest.raises(ConfigError, match="unknown"):
        output_bounds(random_mlp(0, 4, (4,), 2), torch.zeros(1, 4), LinfBall(0.1), "DeepPoly")


@pytest.mark.gpu
def test_auto_lirpa_bounds_on_cuda_equal_the_cpu_bounds():
    """The auto_LiRPA path (CROWN-IBP training's bounds) runs on a CUDA device and gives the CPU's bounds."""
    import copy

    model = small_bn_cnn(13)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(13))
    y = torch.tensor([1, 4, 7])
    for method in ("IBP", "CROWN"):
        cpu_lower, _ = output_bounds(model, x, LinfBall(0.03), method, margin_spec(y, 10))
        cuda_lower, _ = output_bounds(copy.deepcopy(model).cuda(), x.cuda(), LinfBall(0.03), method,
                                      margin_spec(y.cuda(), 10))
        assert cuda_lower.device.type == "cuda"
        torch.testing.assert_close(cuda_lower.cpu(), cpu_lower, atol=1e-4, rtol=1e-4)
