"""Training modes of the paper: natural, FGSM + GradAlign adversarial training, CROWN-IBP certified training,
with the ε schedule of the released code and the NRS / RS ReLU-stability regularisers.

Sources: `fgsm_train.py`, `grad_align.py`, `lirpa_train.py`, `bound_prop.py`,
`auto_LiRPA/eps_scheduler.py` (SmoothedScheduler).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from repro_shared.errors import ConfigError
from torch import nn

from certified_pruning.affine_net import dense_interval, interval_affine
from certified_pruning.bounds import LinfBall, bounded_module, margin_spec
from certified_pruning.checks import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    OPEN_FRACTION,
    POSITIVE,
    check_choice,
    check_fields,
)

MODES = ("natural", "fgsm", "crown-ibp")


@dataclass(frozen=True)
class TrainConfig:
    """One training run (one pruning round). Defaults: the released FGSM config, scaled in epochs."""

    mode: str = "fgsm"
    eps: float = 0.1
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.01  # SGD for natural/fgsm (paper 0.01), Adam for crown-ibp (paper 1e-3)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[float, ...] = (0.7, 0.85)  # fractions of the epochs (paper: 140/200, 170/200)
    grad_clip: float = 8.0
    grad_align_lambda: float = 0.2
    schedule_start: int = 2  # first epoch (1-based) with ε > 0 (paper: 11 of 200)
    schedule_length: int = 8  # epochs to ramp ε to its maximum (paper: 81 of 200)
    schedule_mid: float = 0.4
    nrs_weight: float = 0.0  # 0 disables; paper: 0.01 (FGSM), 0.001 (CROWN-IBP)
    gamma_pow: float = 2.0  # NRS exponent of γ; 0 gives the plain RS loss of Xiao et al. 2019
    slim_weight: float = 0.0  # network slimming's L1 on BN γ (paper `slim_weight` 1e-4 for `slim`); 0 disables
    lr_prestep_epochs: int = 0  # LR scheduler stepped this many times before training (paper FGSM rounds ≥ 1: 8)
    seed: int = 100

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        if self.mode != "natural" and not self.eps > 0:
            raise ConfigError(f"eps={self.eps}: the perturbation radius must be positive")
        check_fields(self, {"epochs": AT_LEAST_ONE, "batch_size": AT_LEAST_ONE, "learning_rate": POSITIVE,
                            "momentum": FRACTION, "weight_decay": NON_NEGATIVE, "grad_clip": POSITIVE,
                            "grad_align_lambda": NON_NEGATIVE, "schedule_start": AT_LEAST_ONE,
                            "schedule_length": AT_LEAST_ONE, "schedule_mid": OPEN_FRACTION,
                            "nrs_weight": NON_NEGATIVE, "gamma_pow": NON_NEGATIVE, "slim_weight": NON_NEGATIVE,
                            "lr_prestep_epochs": NON_NEGATIVE})


def smoothed_eps(step: int, steps_per_epoch: int, eps_max: float, start: int, length: int, mid: float = 0.4,
                 beta: float = 4.0) -> float:
    """SmoothedScheduler (auto_LiRPA eps_scheduler.py:159-219): 0, then α·t^β, then linear up to ε_max.

    Batch-level: init = (start−1)·E, final = (start+length−1)·E, mid_step = init + ⌊mid·(final−init)⌋;
    α is chosen so the polynomial and the linear part meet with equal slope at mid_step.
    """
    init_step = (start - 1) * steps_per_epoch
    final_step = (start + length - 1) * steps_per_epoch
    mid_step = init_step + int(mid * (final_step - init_step))
    if step <= init_step:
        return 0.0
    if step >= final_step:
        return eps_max
    t = mid_step - init_step
    alpha = eps_max / ((final_step - mid_step) * beta * t ** (beta - 1) + t**beta)
    mid_eps = alpha * t**beta
    if step <= mid_step:
        return alpha * (step - init_step) ** beta
    return mid_eps + (eps_max - mid_eps) * (step - mid_step) / (final_step - mid_step)


def _perturbation_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
                           create_graph: bool) -> torch.Tensor:
    """∇_δ CE(f(clip(x + δ, 0, 1)), y): the gradient with respect to the perturbation, as `grad_align.py` takes it
    (components the clip saturates get zero gradient)."""
    delta = delta.detach().requires_grad_(True)
    loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
    (gradient,) = torch.autograd.grad(loss, delta, create_graph=create_graph)
    return gradient


def fgsm_gradalign_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                        grad_align_lambda: float) -> torch.Tensor:
    """FGSM training loss with GradAlign (Andriushchenko & Flammarion 2020), as intended by `grad_align.py:14-48`.

    g = ∇_δ CE at δ = 0 (detached, as the released code detaches it); δ = clip(1.25·ε·sign(g), −ε, ε) (= ε·sign),
    x + δ kept in [0, 1]; loss = CE(f(x+δ)) + λ·(1 − mean cos(g, g₂)) over the samples whose two gradients are both
    non-zero, g₂ = ∇_δ CE at a uniform δ ∈ [−ε, ε] with the graph kept (double back-propagation runs through g₂
    only). Forward passes in the released order: clean, adversarial, random. The released code's ≈2x-input bug is
    not reproduced. At ε = 0 (the schedule's warm-up) the same three passes run, as in the released loop (δ = 0,
    both gradients equal, the term is ≈ 0); they matter for the BatchNorm running statistics.
    """
    gradient = _perturbation_gradient(model, x, y, torch.zeros_like(x), create_graph=False).detach()
    delta = (1.25 * eps * gradient.sign()).clamp(-eps, eps)
    adversarial = (x + delta).clamp(0, 1).detach()
    loss = F.cross_entropy(model(adversarial), y)
    if grad_align_lambda > 0:
        random_delta = torch.empty_like(x).uniform_(-eps, eps)
        second = _perturbation_gradient(model, x, y, random_delta, create_graph=True)
        first, second = gradient.flatten(1), second.flatten(1)
        nonzero = (first.norm(dim=1) != 0) & (second.norm(dim=1) != 0)
        if nonzero.any():
            first, second = first[nonzero], second[nonzero]
            cosine = ((first / first.norm(dim=1, keepdim=True)) * (second / second.norm(dim=1, keepdim=True))).sum(1)
            loss = loss + grad_align_lambda * (1 - cosine.mean())
    return loss


def interval_relu_inputs(model: nn.Sequential, x: torch.Tensor, eps: float,
                         batch_statistics: bool = False) -> list[tuple]:
    """IBP through a Sequential of Conv2d / BatchNorm2d / ReLU / Flatten / Linear: (lower, upper, BN module or None)
    of every ReLU input, over the ε-ball around x clipped to [0, 1].

    As `bound_prop.py:11-49`: interval arithmetic per layer, the BN in inference form with its running statistics.
    batch_statistics=True instead normalises each BN with the mean and (biased) variance of the clean batch x at
    that layer, as auto_LiRPA's BatchNorm node does in training mode.
    """
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    clean = x if batch_statistics else None
    records, previous = [], None
    for module in model:
        if isinstance(module, nn.ReLU):
            records.append((lower, upper, previous if isinstance(previous, nn.BatchNorm2d) else None))
            lower, upper = lower.clamp(min=0), upper.clamp(min=0)
            clean = None if clean is None else clean.clamp(min=0)
        elif isinstance(module, nn.Flatten | nn.Conv2d | nn.Linear):
            if isinstance(module, nn.Conv2d):
                weight = module.weight
                lower, upper = interval_affine(lower, upper, module, lambda r, w=weight, m=module: F.conv2d(
                    r, w.abs(), None, m.stride, m.padding, m.dilation, m.groups))
            elif isinstance(module, nn.Linear):
                lower, upper = dense_interval(lower, upper, module.weight, module.bias)
            else:
                lower, upper = module(lower), module(upper)
            clean = None if clean is None else module(clean)
        elif isinstance(module, nn.BatchNorm2d):
            if clean is None:
                mean, var = module.running_mean, module.running_var
            else:
                mean, var = clean.mean(dim=(0, 2, 3)), clean.var(dim=(0, 2, 3), unbiased=False)
            scale = (module.weight / (var + module.eps).sqrt()).view(1, -1, 1, 1)
            shift = module.bias.view(1, -1, 1, 1) - mean.view(1, -1, 1, 1) * scale
            lower, upper = torch.minimum(lower * scale, upper * scale) + shift, torch.maximum(
                lower * scale, upper * scale) + shift
            clean = None if clean is None else clean * scale + shift
        else:
            raise ConfigError(f"layer type {type(module).__name__} is not supported by the interval pass "
                              "(supported: Conv2d, BatchNorm2d, ReLU, Flatten, Linear)")
        previous = module
    return records


def nrs_loss(model: nn.Sequential, x: torch.Tensor, eps: float, gamma_pow: float = 2.0,
             delta: float = 1e-20) -> torch.Tensor:
    """NRS regulariser (FGSM path `bound_prop.py:51-106`): Σ −tanh(1 + l·u/(γ_c^p + δ)) / #elements.

    l, u: IBP bounds of each ReLU input over the full-ε ball; γ_c: the BN scale of the channel (detached), used only
    for ReLUs fed by a BN; ReLUs after a Linear use −tanh(1 + l·u). gamma_pow = 0 gives the RS loss.
    """
    total, count = x.new_zeros(()), 0
    for lower, upper, batch_norm in interval_relu_inputs(model, x, eps):
        product = lower * upper
        if batch_norm is not None:
            gamma = batch_norm.weight.detach().abs().view(1, -1, 1, 1) if gamma_pow else torch.ones(1)
            product = product / (gamma**gamma_pow + delta)
        total = total - torch.tanh(1 + product).sum()
        count += product.numel()
    return total / count


def slimming_loss(model: nn.Module) -> torch.Tensor:
    """Network slimming's sparsity term (Liu et al. 2017; released `utils.py`): mean |γ| over every BatchNorm scale."""
    gammas = [module.weight.abs().flatten() for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    return torch.cat(gammas).mean()


def crown_ibp_loss(bounded, x: torch.Tensor, y: torch.Tensor, eps: float, eps_max: float,
                   num_classes: int) -> torch.Tensor:
    """CROWN-IBP robust loss (`lirpa_train.py:117-127`, no loss fusion): lb = κ·lb_CROWN-IBP + (1−κ)·lb_IBP with
    κ = (ε_max − ε)/ε_max on margins e_y − e_j; robust CE = CE([0, −lb], 0).

    As `lirpa_train.py:196-197`, a forward pass of the batch comes first: in training mode it is what sets the
    BatchNorm nodes' batch mean and variance (which the bounds then use) and updates their running statistics;
    without it the bounds would reuse the statistics of an earlier forward. At ε = 0 the loss is that forward's CE.
    """
    logits = bounded(x)
    if eps <= 0:
        return F.cross_entropy(logits, y)
    spec = margin_spec(y, num_classes)
    ball = LinfBall(eps)
    ibp_lower, _ = _bounds_with_grad(bounded, x, ball, "IBP", spec)
    kappa = (eps_max - eps) / eps_max
    lower = ibp_lower
    if kappa > 0:
        # CROWN back-substitution of the output over the IBP intermediate bounds just computed (as lirpa_train.py)
        crown_lower, _ = bounded.compute_bounds(IBP=False, C=spec, method="backward", bound_upper=False)
        lower = kappa * crown_lower + (1 - kappa) * ibp_lower
    logits = torch.cat([torch.zeros_like(lower[:, :1]), -lower], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(y))


def _bounds_with_grad(bounded, x, ball, method, spec):
    """compute_bounds without detaching (training needs gradients through the bounds)."""
    import numpy as np

    from certified_pruning.bounds import METHODS
    from certified_pruning.lirpa_compat import import_auto_lirpa

    lirpa = import_auto_lirpa()
    x_lower, x_upper = ball.box(x)
    bounded_x = lirpa.BoundedTensor(x, lirpa.PerturbationLpNorm(norm=np.inf, eps=ball.eps, x_L=x_lower, x_U=x_upper))
    return bounded.compute_bounds(x=(bounded_x,), C=spec, bound_upper=False, **METHODS[method])


def lr_schedule(optimiser: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    """×0.1 at the milestone epochs, pre-stepped `lr_prestep_epochs` times (the released FGSM loop's `rewind_epoch`)."""
    milestones = [round(f * config.epochs) for f in config.lr_milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=milestones, gamma=0.1)
    for _ in range(config.lr_prestep_epochs):
        scheduler.step()
    return scheduler


def train_model(model: nn.Sequential, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                num_classes: int, masks: dict[str, torch.Tensor] | None = None,
                on_epoch=None) -> nn.Sequential:
    """Train `model` in place for one round: fresh optimiser, LR and ε schedules (as every pruning round does).

    masks: parameter name -> 0/1 tensor; masked weights are zeroed after every step (pruned weights stay pruned).
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = (len(images) + config.batch_size - 1) // config.batch_size
    if config.mode == "crown-ibp":
        trainee = bounded_module(model, images[:2])
        optimiser = torch.optim.Adam(trainee.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    else:
        trainee = model
        optimiser = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    scheduler = lr_schedule(optimiser, config)
    step = 0
    for epoch in range(config.epochs):
        model.train()
        trainee.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for batch in order.split(config.batch_size):
            x, y = images[batch], labels[batch]
            step += 1
            eps = smoothed_eps(step, steps_per_epoch, config.eps, config.schedule_start, config.schedule_length,
                               config.schedule_mid) if config.mode != "natural" else 0.0
            if config.mode == "fgsm":
                loss = fgsm_gradalign_loss(model, x, y, eps, config.grad_align_lambda)
            elif config.mode == "crown-ibp":
                # every batch, the ε = 0 warm-up included, goes through the bounded module in training mode, as
                # lirpa_train.py: its BatchNorm nodes use the batch statistics and update their running statistics
                loss = crown_ibp_loss(trainee, x, y, eps, config.eps, num_classes)
            else:
                loss = F.cross_entropy(model(x), y)
            # NRS: every batch in FGSM mode (fgsm_train.py:398-402), only the robust (ε > 0) batches in CROWN-IBP
            # mode (lirpa_train.py adds it inside `batch_method == 'robust'`)
            if config.nrs_weight > 0 and (config.mode != "crown-ibp" or eps > 0):
                if config.mode == "crown-ibp":  # the NRS interval pass reads the plain model's running statistics
                    _copy_buffers(trainee, model)
                loss = loss + config.nrs_weight * nrs_loss(model, x, config.eps, config.gamma_pow)
            if config.slim_weight > 0:
                loss = loss + config.slim_weight * slimming_loss(model)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainee.parameters(), config.grad_clip)
            optimiser.step()
            if masks:
                _apply_masks(trainee if config.mode == "crown-ibp" else model, masks)
            total += float(loss.detach()) * len(batch)
        scheduler.step()
        if on_epoch is not None:
            on_epoch(epoch, total / len(images))
    if config.mode == "crown-ibp":  # the bounded module keeps its own BatchNorm buffers: hand them back
        _copy_buffers(trainee, model)
    return model.eval()


def _apply_masks(module: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name in masks:
                parameter.mul_(masks[name])


def _copy_buffers(source: nn.Module, target: nn.Module) -> None:
    """Copy BatchNorm running statistics by name (between a plain model and its auto_LiRPA bounded module)."""
    target_buffers = dict(target.named_buffers())
    with torch.no_grad():
        for name, buffer in source.named_buffers():
            if name in target_buffers:
                target_buffers[name].copy_(buffer)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Clean accuracy."""
    with torch.no_grad():
        return float((model.eval()(images).argmax(1) == labels).float().mean())
