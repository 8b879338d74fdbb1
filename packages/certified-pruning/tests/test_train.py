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


def _batch_norm_input_means(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-channel batch means of every BatchNorm's input, from a training-mode forward of a copy of `model`."""
    import copy

    plain = copy.deepcopy(model).train()
    means = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: means.append(inp[0].mean(dim=(0, 2, 3))))
             for m in plain if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        plain(x)
    for hook in hooks:
        hook.remove()
    return means


def test_crown_ibp_loss_bounds_with_the_batch_statistics_of_its_own_batch():
    model = small_bn_cnn(7)
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    y = torch.arange(8) % 10
    bounded = bounded_module(model, x[:2])
    bounded.train()
    nodes = [node for node in bounded.modules() if type(node).__name__ == "BoundBatchNormalization"]
    assert len(nodes) == 5
    for batch in (x, 0.5 * x + 0.3):  # a second batch with other statistics: the nodes must follow it
        crown_ibp_loss(bounded, batch, y, 0.02, 0.05, 10).backward()
        expected = _batch_norm_input_means(model, batch)
        for node in nodes:
            assert any(node.current_mean.shape == mean.shape
                       and torch.allclose(node.current_mean.detach(), mean, atol=1e-5) for mean in expected)
        first = next(node for node in nodes if node.current_mean.shape == (4,))
        torch.testing.assert_close(first.current_mean.detach(), expected[0], atol=1e-5, rtol=0)


def test_crown_ibp_training_updates_the_running_statistics_every_epoch():
    from certified_pruning.models import ModelConfig, cifar_model_deep
    from certified_pruning.train import train_model

    images = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(8))
    labels = torch.arange(48) % 10

    def running_means(epochs: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = cifar_model_deep(ModelConfig(in_channels=1, input_size=8, channels=(2, 2, 2, 2, 2), fc_width=8))
        config = TrainConfig(mode="crown-ibp", eps=0.05, epochs=epochs, batch_size=16, learning_rate=1e-3,
                             schedule_start=1, schedule_length=1)  # ε > 0 from the first batch on
        train_model(model, images, labels, config, 10)
        return torch.cat([m.running_mean for m in model.modules() if isinstance(m, nn.BatchNorm2d)])

    one, two = running_means(1), running_means(2)
    assert one.abs().min() > 0  # moved away from the initial zeros in the first epoch
    assert (one - two).abs().max() > 1e-4  # and again in the second


def _released_fgsm_grad_align_loss(model, image, target, eps, grad_align_lambda, fgsm_alpha=1.25):
    """`get_fgsm_grad_align_loss` of the released grad_align.py, line by line, with `transform_pertub` as intended
    (mean 0 / std 1: the clipped perturbation x' − x, not the perturbed image that the released code adds to x)."""

    def transform_pertub(x, delta):
        return (x + delta).clamp(min=0).clamp(max=1) - x

    delta = torch.zeros_like(image, requires_grad=True)
    output_clean = model(image + transform_pertub(image, delta))
    loss_clean = F.cross_entropy(output_clean, target)
    grad = torch.autograd.grad(loss_clean, delta, create_graph=True)[0]
    grad = grad.detach()
    argmax_delta = eps * torch.sign(grad)
    delta.data = (delta.data + fgsm_alpha * argmax_delta).clamp(-eps, eps)
    delta.data = transform_pertub(image, delta).data
    delta = delta.detach()
    output = model(image + delta)
    loss = F.cross_entropy(output, target)
    reg = torch.zeros(1)[0]
    # get_input_grad(..., delta_init='random_uniform', backprop=True)
    delta2 = torch.zeros(image.shape)
    delta2.uniform_(-eps, eps)
    delta2.requires_grad = True
    loss2 = F.cross_entropy(model(image + transform_pertub(image, delta2)), target)
    grad2 = torch.autograd.grad(loss2, delta2, create_graph=True)[0]
    nonzero = ((grad ** 2).sum([1, 2, 3]) ** 0.5 != 0) * ((grad2 ** 2).sum([1, 2, 3]) ** 0.5 != 0)
    grad1, grad2 = grad[nonzero], grad2[nonzero]
    grad1_normalized = grad1 / ((grad1 ** 2).sum([1, 2, 3]) ** 0.5)[:, None, None, None]
    grad2_normalized = grad2 / ((grad2 ** 2).sum([1, 2, 3]) ** 0.5)[:, None, None, None]
    cos = torch.sum(grad1_normalized * grad2_normalized, (1, 2, 3))
    reg += grad_align_lambda * (1.0 - cos.mean())
    return loss + reg


def test_gradalign_loss_and_gradients_equal_the_released_code_with_the_clean_gradient_detached():
    import copy

    model = small_bn_cnn(9).train()  # training mode: BatchNorm batch statistics in all three forward passes
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(9))
    x[:, :, :2] = 0.0  # saturated background pixels: the random point's clip must zero their gradient
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    ours_model, reference_model = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(3)
    ours = fgsm_gradalign_loss(ours_model, x, y, 0.1, 0.2)
    torch.manual_seed(3)
    reference = _released_fgsm_grad_align_loss(reference_model, x, y, 0.1, 0.2)
    assert abs(float(ours) - float(reference)) < 1e-6
    ours.backward()
    reference.backward()
    for (name, mine), theirs in zip(ours_model.named_parameters(), reference_model.parameters(), strict=True):
        assert (mine.grad - theirs.grad).abs().max() < 1e-6, name
    for mine, theirs in zip(ours_model.buffers(), reference_model.buffers(), strict=True):
        torch.testing.assert_close(mine, theirs)  # same forward passes in the same order
    # λ > 0 matters: the GradAlign term moves the parameter gradient (not a no-op)
    plain_model = copy.deepcopy(model)
    fgsm_gradalign_loss(plain_model, x, y, 0.1, 0.0).backward()
    assert max((a.grad - b.grad).abs().max() for a, b in
               zip(ours_model.parameters(), plain_model.parameters(), strict=True)) > 1e-4


def test_interval_step_by_hand_and_both_network_forms_agree():
    from certified_pruning.affine_net import interval_affine, to_affine_relu_network
    from certified_pruning.relaxation import interval_bounds

    # hand-computed: W = [[1, -2]], b = 0.5 on [0, 1] × [1, 3] → centre (0.5, 2), radius (0.5, 1)
    weight, bias = torch.tensor([[1.0, -2.0]]), torch.tensor([0.5])
    lower, upper = interval_affine(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 3.0]]),
                                   lambda c: c @ weight.T + bias, lambda r: r @ weight.abs().T)
    assert lower.item() == pytest.approx(0.5 - 4 + 0.5 - 0.5 - 2) and upper.item() == pytest.approx(-3 + 2.5)
    # the Sequential pass (training's NRS / robust loss) and the dense pass (verifier, MILP) give the same bounds
    model = small_bn_cnn(10)
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(10))
    sequential = interval_relu_inputs(model, x, 0.03)
    network = to_affine_relu_network(model, (1, 8, 8))
    dense = interval_bounds(network, (x - 0.03).clamp(0, 1).flatten(1).double(),
                            (x + 0.03).clamp(0, 1).flatten(1).double())
    assert len(sequential) == len(dense.lowers)
    for (lo, up, _), dense_lower, dense_upper in zip(sequential, dense.lowers, dense.uppers, strict=True):
        torch.testing.assert_close(lo.flatten(1).double(), dense_lower, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(up.flatten(1).double(), dense_upper, atol=1e-4, rtol=1e-4)


def test_interval_pass_with_batch_statistics_is_the_training_mode_forward_at_zero_radius():
    import copy

    model = small_bn_cnn(12)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(12))
    captured = []
    trained = copy.deepcopy(model).train()
    hooks = [m.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
             for m in trained if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        trained(x)
    for hook in hooks:
        hook.remove()
    records = interval_relu_inputs(model, x, 0.0, batch_statistics=True)
    for (lower, upper, _), value in zip(records, captured, strict=True):
        torch.testing.assert_close(lower, value, atol=1e-5, rtol=0)
        torch.testing.assert_close(upper, value, atol=1e-5, rtol=0)
    running = interval_relu_inputs(model, x, 0.0)  # running statistics: a different normalisation
    assert (running[0][0] - captured[0]).abs().max() > 1e-3


def test_nrs_enters_crown_ibp_training_only_on_robust_batches_and_fgsm_training_always():
    from certified_pruning.models import ModelConfig, cifar_model_deep
    from certified_pruning.train import train_model

    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(16))
    labels = torch.arange(32) % 10

    def trained(mode: str, nrs_weight: float) -> torch.Tensor:
        torch.manual_seed(0)
        model = cifar_model_deep(ModelConfig(in_channels=1, input_size=8, channels=(2, 2, 2, 2, 2), fc_width=8))
        config = TrainConfig(mode=mode, eps=0.05, epochs=1, batch_size=16, learning_rate=1e-2, schedule_start=2,
                             schedule_length=1, nrs_weight=nrs_weight)  # epoch 1 is all warm-up: ε = 0
        train_model(model, images, labels, config, 10)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(trained("crown-ibp", 0.5), trained("crown-ibp", 0.0))  # lirpa_train: robust batches only
    assert not torch.allclose(trained("fgsm", 0.5), trained("fgsm", 0.0))  # fgsm_train: every batch
