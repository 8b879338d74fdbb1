"""Training pieces: the ε schedule, the NRS/RS regulariser, FGSM, and the CROWN-IBP loss as an upper bound."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from certified_pruning.bounds import bounded_module
from certified_pruning.train import (
    TrainConfig,
    crown_ibp_loss,
    fgsm_gradalign_loss,
    interval_relu_inputs,
    nrs_loss,
    smoothed_eps,
)
from cp_helpers import sample_ball, small_bn_cnn
from repro_shared.errors import ConfigError
from torch import nn


def test_smoothed_schedule_is_zero_then_monotone_continuous_and_reaches_eps():
    values = [smoothed_eps(step, 10, 0.1, start=3, length=5) for step in range(0, 100)]
    assert values[:21] == [0.0] * 21 and values[70:] == [0.1] * 30
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert max(b - a for a, b in itertools.pairwise(values)) < 0.1 / 15  # no jump at mid or end


def test_interval_pass_contains_sampled_relu_inputs_and_nrs_matches_its_formula():
    model = small_bn_cnn(4)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    eps = 0.05
    records = interval_relu_inputs(model, x, eps)
    captured = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
             for m in model if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        for i in range(3):
            captured.clear()
            model(sample_ball(x[i:i + 1], eps, 200, torch.Generator().manual_seed(i)))
            for (lower, upper, _), values in zip(records, captured, strict=True):
                assert (lower[i] <= values.min(0).values + 1e-5).all()
                assert (upper[i] >= values.max(0).values - 1e-5).all()
    for hook in hooks:
        hook.remove()
    expected_terms, count = 0.0, 0
    for lower, upper, batch_norm in records:
        product = lower * upper
        if batch_norm is not None:
            product = product / (batch_norm.weight.abs().view(1, -1, 1, 1) ** 2 + 1e-20)
        expected_terms += float(-torch.tanh(1 + product).sum())
        count += product.numel()
    assert float(nrs_loss(model, x, eps)) == pytest.approx(expected_terms / count, rel=1e-5)
    rs = -sum(float(torch.tanh(1 + lo * up).sum()) for lo, up, _ in records) / count
    assert float(nrs_loss(model, x, eps, gamma_pow=0)) == pytest.approx(rs, rel=1e-5)


def test_fgsm_loss_without_gradalign_is_the_loss_at_the_fgsm_point():
    model = small_bn_cnn(5)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 2, 3])
    xr = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(F.cross_entropy(model(xr), y), xr)
    expected = F.cross_entropy(model((x + 0.05 * gradient.sign()).clamp(0, 1)), y)
    torch.testing.assert_close(fgsm_gradalign_loss(model, x, y, 0.05, 0.0), expected)
    assert fgsm_gradalign_loss(model, x, y, 0.05, 0.2) >= expected - 1e-6  # 1 − cos ≥ 0


def test_crown_ibp_robust_loss_bounds_the_clean_loss_from_above():
    model = small_bn_cnn(6)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    y = model(x).argmax(1)
    bounded = bounded_module(model, x)
    clean = F.cross_entropy(model(x), y)
    for eps in (0.01, 0.05):
        robust = crown_ibp_loss(bounded, x, y, eps, 0.05, 10)
        assert robust >= clean - 1e-5
        robust.backward()  # differentiable through auto_LiRPA
    assert crown_ibp_loss(bounded, x, y, 0.05, 0.05, 10) >= crown_ibp_loss(bounded, x, y, 0.01, 0.05, 10)


def test_bad_training_configs_raise():
    with pytest.raises(ConfigError, match="mode"):
        TrainConfig(mode="pgd")
    with pytest.raises(ConfigError, match="eps=0"):
        TrainConfig(mode="fgsm", eps=0.0)


def test_slimming_term_is_the_mean_absolute_bn_scale_and_shrinks_gammas():
    from certified_pruning.train import slimming_loss

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([1.0, -3.0]))
        model[4].weight.copy_(torch.tensor([0.5, 0.5, -1.0]))
    assert float(slimming_loss(model)) == pytest.approx((1 + 3 + 0.5 + 0.5 + 1) / 5)
    slimming_loss(model).backward()
    assert torch.allclose(model[1].weight.grad, torch.tensor([1.0, -1.0]) / 5)  # d mean|γ| / dγ = sign(γ) / count


def test_lr_prestep_advances_the_multistep_schedule():
    from certified_pruning.train import lr_schedule

    def learning_rates(prestep: int) -> list[float]:
        optimiser = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = lr_schedule(optimiser, TrainConfig(epochs=10, lr_milestones=(0.5,), lr_prestep_epochs=prestep))
        rates = []
        for _ in range(6):
            rates.append(optimiser.param_groups[0]["lr"])
            optimiser.step()
            scheduler.step()
        return rates

    assert learning_rates(0) == pytest.approx([0.1] * 5 + [0.01])  # milestone at epoch 5
    assert learning_rates(2) == pytest.approx([0.1] * 3 + [0.01] * 3)  # two epochs earlier
