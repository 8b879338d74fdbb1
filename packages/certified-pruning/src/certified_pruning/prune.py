"""Pruning methods of the paper as score functions over a `cifar_model_deep`, and the lottery-ticket loop.

Sources: `LTH-training/pruner/pruner.py`, the prune/rewind loop of `fgsm_train.py` and
`lirpa_train.py`. Masks are plain dicts `parameter name -> 0/1 tensor` kept beside the plain `nn.Module` and applied
by `train.train_model` after every optimiser step (the same names work on the auto_LiRPA bounded module).

Conventions. Unstructured masks cover conv weights only (as the released code; `include_linear=True` adds the linear
weights). Channel masks cover a BatchNorm's weight and bias (γ, β) with shape (C,). A pruning step removes
`round(amount · remaining)` of the *remaining* units with the lowest scores (globally; HYDRA per layer; ties broken
by position), so masks only ever shrink; the released code thresholds all scores with `kthvalue` and `<=`, which
can also revive a pruned unit whose score is not the lowest (see README "Deviations").
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from repro_shared.errors import ConfigError
from torch import nn

from certified_pruning.checks import AT_LEAST_ONE, NON_NEGATIVE, OPEN_FRACTION, POSITIVE, check_fields
from certified_pruning.train import TrainConfig, interval_relu_inputs, train_model

Masks = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

UNSTRUCTURED = ("random", "imp", "snip", "taylor", "hydra")
STRUCTURED = ("slim", "nrs", "refill")
METHODS = UNSTRUCTURED + STRUCTURED


def prunable_weights(model: nn.Module, include_linear: bool = False) -> dict[str, nn.Parameter]:
    """Weights unstructured pruning acts on: conv weights ("only nn.Conv2d"), optionally linear ones."""
    kinds = (nn.Conv2d, nn.Linear) if include_linear else (nn.Conv2d,)
    return {f"{name}.weight": module.weight for name, module in model.named_modules() if isinstance(module, kinds)}


def batch_norms(model: nn.Module) -> dict[str, nn.BatchNorm2d]:
    """BatchNorm layers by module name — the channels of structured pruning (slim / nrs / refill)."""
    found = {name: module for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)}
    if not found:
        raise ConfigError("channel pruning needs BatchNorm2d layers (cifar_model_deep with batch_norm=True)")
    return found


def dense_masks(model: nn.Module, include_linear: bool = False) -> Masks:
    """All-ones unstructured masks (round 0 of the lottery loop is the dense model)."""
    return {name: torch.ones_like(weight) for name, weight in prunable_weights(model, include_linear).items()}


def dense_channel_masks(model: nn.Module) -> Masks:
    """All-ones channel masks, one (C,) tensor per BN layer (keyed by the BN module name)."""
    return {name: torch.ones_like(bn.weight) for name, bn in batch_norms(model).items()}


def channel_parameter_masks(channel_masks: Masks) -> Masks:
    """Expand channel masks to the parameter masks `train_model` applies: BN weight **and** bias."""
    return {f"{name}.{kind}": mask for name, mask in channel_masks.items() for kind in ("weight", "bias")}


def sparsity(masks: Masks) -> float:
    """Fraction of masked-out entries over all masks."""
    total = sum(mask.numel() for mask in masks.values())
    return 1.0 - sum(float(mask.sum()) for mask in masks.values()) / total


def prune_lowest(scores: dict[str, torch.Tensor], masks: Masks, amount: float,
                 keep_one_per_layer: bool = False) -> Masks:
    """Global pruning step of the released code: zero the round(amount·remaining) lowest-scored remaining entries."""
    if not 0 <= amount <= 1:
        raise ConfigError(f"amount={amount}: the fraction of remaining weights to prune must be in [0, 1]")
    names = list(masks)
    flat_scores = torch.cat([scores[name].detach().flatten().double() for name in names])
    flat_masks = torch.cat([masks[name].flatten() for name in names])
    remaining = flat_masks.nonzero().flatten()
    count = round(amount * len(remaining))
    candidates = remaining
    if keep_one_per_layer:  # structured pruning must never empty a layer (the compression step asserts it)
        protected, offset = [], 0
        for name in names:
            layer = (masks[name].flatten() * 1.0).nonzero().flatten()
            if len(layer):
                best = layer[scores[name].detach().flatten().double()[layer].argmax()]
                protected.append(int(best) + offset)
            offset += masks[name].numel()
        keep = torch.ones(len(flat_masks), dtype=torch.bool)
        keep[protected] = False
        candidates = remaining[keep[remaining]]
        count = min(count, len(candidates))
    order = torch.sort(flat_scores[candidates], stable=True).indices
    new_flat = flat_masks.clone()
    new_flat[candidates[order[:count]]] = 0
    result, offset = {}, 0
    for name in names:
        size = masks[name].numel()
        result[name] = new_flat[offset:offset + size].view_as(masks[name]).clone()
        offset += size
    return result


# ---------------------------------------------------------------- unstructured scores

def random_scores(masks: Masks, seed: int) -> dict[str, torch.Tensor]:
    """`random` (RandomUnstructured): i.i.d. uniform scores from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.rand(mask.shape, generator=generator) for name, mask in masks.items()}


def magnitude_scores(model: nn.Module, masks: Masks) -> dict[str, torch.Tensor]:
    """`l1unstruct` / IMP (L1Unstructured): |w|, smallest pruned."""
    weights = dict(model.named_parameters())
    return {name: weights[name].detach().abs() for name in masks}


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Default loss for gradient scores; the paper uses the mode's robust loss (pass e.g. fgsm_gradalign_loss)."""
    return F.cross_entropy(model(x), y)


@contextmanager
def _scoring_in_training_mode(model: nn.Module):
    """The released scorer calls `model.train()` before the scoring loss (BatchNorm with batch statistics); the
    running statistics that forward updates, and the module's mode, are restored afterwards."""
    was_training = model.training
    buffers = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    model.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
        model.train(was_training)


def snip_scores(model: nn.Module, masks: Masks, x: torch.Tensor, y: torch.Tensor,
                loss_fn: LossFn = cross_entropy_loss) -> dict[str, torch.Tensor]:
    """`snip` (`pruner.py:58-135`): |∂L/∂m| at the current mask on one batch (= |w·∂L/∂(w⊙m)|), previous mask
    multiplied in; BatchNorm in training mode, as the released scorer."""
    weights = dict(model.named_parameters())
    originals = {name: weights[name].detach().clone() for name in masks}
    mask_vars = {name: masks[name].detach().clone().float().requires_grad_(True) for name in masks}
    # Parametrise w_eff = w ⊙ m with the mask as the differentiated variable; restore the weights afterwards.
    from torch.nn.utils import parametrize

    class _Mask(nn.Module):
        def __init__(self, mask: torch.Tensor):
            super().__init__()
            self.mask = mask

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight * self.mask

    modules = dict(model.named_modules())
    for name in masks:
        parametrize.register_parametrization(modules[name.rsplit(".", 1)[0]], "weight", _Mask(mask_vars[name]))
    try:
        with _scoring_in_training_mode(model):
            loss = loss_fn(model, x, y)
            grads = torch.autograd.grad(loss, [mask_vars[name] for name in masks])
    finally:
        for name in masks:
            parametrize.remove_parametrizations(modules[name.rsplit(".", 1)[0]], "weight", leave_parametrized=False)
        with torch.no_grad():
            current = dict(model.named_parameters())
            for name in masks:
                current[name].copy_(originals[name])
    return {name: grad.abs() * masks[name] for name, grad in zip(masks, grads, strict=True)}


def taylor_scores(model: nn.Module, masks: Masks, x: torch.Tensor, y: torch.Tensor,
                  loss_fn: LossFn = cross_entropy_loss) -> dict[str, torch.Tensor]:
    """`taylor1ScorerAbs`: per-weight first-order Taylor |w·∂L/∂w| on one batch, same protocol as SNIP (BatchNorm in
    training mode)."""
    weights = dict(model.named_parameters())
    with _scoring_in_training_mode(model):
        loss = loss_fn(model, x, y)
        grads = torch.autograd.grad(loss, [weights[name] for name in masks])
    return {name: (weights[name].detach() * grad).abs() * masks[name]
            for name, grad in zip(masks, grads, strict=True)}


class _TopKStraightThrough(torch.autograd.Function):
    """HYDRA's `GetSubnet`: forward the 0/1 top-k mask of |s|, backward the gradient unchanged (straight-through)."""

    @staticmethod
    def forward(ctx, magnitudes: torch.Tensor, allowed: torch.Tensor, keep: int) -> torch.Tensor:
        ranked = torch.where(allowed.bool(), magnitudes, torch.full_like(magnitudes, -torch.inf)).flatten()
        mask = torch.zeros_like(ranked)
        mask[ranked.topk(keep).indices] = 1
        return mask.view_as(magnitudes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None, None


def hydra_scores(model: nn.Module, masks: Masks, images: torch.Tensor, labels: torch.Tensor, rate: float,
                 loss_fn: LossFn = cross_entropy_loss, epochs: int = 20, learning_rate: float = 0.01,
                 batch_size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """`hydra`: scores s₀ = √(6/fan_in)·w/max|w|, weights frozen, Adam on s through a per-layer top-k
    straight-through mask keeping (1−rate) of each layer's remaining weights, LR ×0.1 at epochs 10 and 15 of 20;
    returns |s| (only remaining weights compete). The model's state is restored afterwards."""
    from torch.nn.utils import parametrize

    saved = {key: value.detach().clone() for key, value in model.state_dict().items()}
    weights = dict(model.named_parameters())
    modules = dict(model.named_modules())
    popup = {}
    for name in masks:
        weight = weights[name].detach()
        fan_in = weight[0].numel()
        popup[name] = nn.Parameter((6 / fan_in) ** 0.5 * weight / weight.abs().max().clamp(min=1e-12))

    class _Subnet(nn.Module):
        def __init__(self, scores: nn.Parameter, allowed: torch.Tensor):
            super().__init__()
            self.scores, self.allowed = scores, allowed
            self.keep = round((1 - rate) * int(allowed.sum()))

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight * _TopKStraightThrough.apply(self.scores.abs(), self.allowed, self.keep)

    frozen = [p for p in model.parameters() if p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    for name in masks:
        parametrize.register_parametrization(modules[name.rsplit(".", 1)[0]], "weight",
                                             _Subnet(popup[name], masks[name]), unsafe=True)
    try:
        if epochs > 0:
            optimiser = torch.optim.Adam(popup.values(), lr=learning_rate)
            milestones = [round(epochs * 0.5), round(epochs * 0.75)]
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=milestones, gamma=0.1)
            generator = torch.Generator().manual_seed(seed)
            model.train()
            for _ in range(epochs):
                for batch in torch.randperm(len(images), generator=generator).split(batch_size):
                    loss = loss_fn(model, images[batch], labels[batch])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                scheduler.step()
    finally:
        for name in masks:
            parametrize.remove_parametrizations(modules[name.rsplit(".", 1)[0]], "weight", leave_parametrized=False)
        for parameter in frozen:
            parameter.requires_grad_(True)
        model.load_state_dict(saved)
    return {name: popup[name].detach().abs() * masks[name] for name in masks}


# ---------------------------------------------------------------- channel scores

def slimming_scores(model: nn.Module, channel_masks: Masks) -> dict[str, torch.Tensor]:
    """`slim` (network slimming): channel score |γ_c| of the BN; smallest pruned."""
    norms = batch_norms(model)
    return {name: norms[name].weight.detach().abs() for name in channel_masks}


def nrs_channel_scores(model: nn.Sequential, x: torch.Tensor, eps: float, channel_masks: Masks,
                       delta: float = 1e-20) -> dict[str, torch.Tensor]:
    """NRS channel pruning: (γ_c≠0)·mean over samples/pixels of tanh(1 + l·u/γ_c²), IBP at full ε.

    Lowest (most unstable) pruned. The released FGSM path sums per-batch channel means over the clean test pass;
    with equal batches that is a constant multiple of this mean.
    """
    norms = batch_norms(model)
    by_module = {id(module): name for name, module in norms.items()}
    scores = {}
    with torch.no_grad():
        for lower, upper, bn in interval_relu_inputs(model.eval(), x, eps):
            if bn is None or by_module.get(id(bn)) not in channel_masks:
                continue
            gamma = bn.weight.detach()
            stability = torch.tanh(1 + lower * upper / (gamma.abs().view(1, -1, 1, 1) ** 2 + delta))
            scores[by_module[id(bn)]] = stability.mean(dim=(0, 2, 3)) * (gamma != 0)
    return scores


def refill_scores(model: nn.Module, channel_masks: Masks, imp_amount: float = 0.2) -> dict[str, torch.Tensor]:
    """IMP-Refill (`pruner.py:182-186, 197-256`): global IMP of `imp_amount` of the *remaining* conv weights (the
    filters of surviving channels: the released code masks a pruned channel's filter), then channel score = mean |w|
    of its IMP-pruned filter (0 for a pruned channel)."""
    conv_names = _conv_before_bn(model)
    weights = dict(model.named_parameters())
    conv_masks = {conv: channel_masks[bn].view(-1, 1, 1, 1).expand_as(weights[conv]).clone()
                  if bn in channel_masks else torch.ones_like(weights[conv]) for bn, conv in conv_names.items()}
    imp = prune_lowest(magnitude_scores(model, conv_masks), conv_masks, imp_amount)
    return {bn: (weights[conv].detach() * imp[conv]).abs().mean(dim=(1, 2, 3))
            for bn, conv in conv_names.items() if bn in channel_masks}


def _conv_before_bn(model: nn.Module) -> dict[str, str]:
    """BN module name -> weight name of the conv feeding it (cifar_model_deep: Conv directly before each BN)."""
    pairs, previous = {}, None
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d) and previous is not None:
            pairs[name] = f"{previous}.weight"
        if isinstance(module, nn.Conv2d):
            previous = name
    return pairs


# ---------------------------------------------------------------- masks, rewinding, the loop

def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned entries in place (parameter-name masks, as `train_model` applies after each step)."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            parameters[name].mul_(mask)


def rewind(model: nn.Module, initial_state: dict[str, torch.Tensor], masks: Masks) -> None:
    """Lottery-ticket rewinding: all weights and BN statistics ← θ₀, then θ₀ ⊙ mask."""
    model.load_state_dict(initial_state)
    apply_masks(model, masks)


@dataclass(frozen=True)
class PruneConfig:
    """A pruning run: method, rate per round (of the remaining weights / channels), rounds (round 0 = dense)."""

    method: str = "imp"
    rate: float = 0.2  # paper: 0.2 unstructured, 0.11 structured
    rounds: int = 4
    include_linear: bool = False
    eps: float = 0.05  # NRS channel scores use IBP at this ε (the training ε)
    seed: int = 0
    hydra_epochs: int = 20

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r}: choose one of {METHODS}")
        check_fields(self, {"rate": OPEN_FRACTION, "rounds": AT_LEAST_ONE, "eps": POSITIVE,
                            "hydra_epochs": NON_NEGATIVE})


def initial_masks(model: nn.Module, config: PruneConfig) -> Masks:
    """Dense masks for the method's granularity (weights, or BN channels)."""
    if config.method in STRUCTURED:
        return dense_channel_masks(model)
    return dense_masks(model, config.include_linear)


def method_scores(model: nn.Module, masks: Masks, config: PruneConfig, x: torch.Tensor, y: torch.Tensor,
                  loss_fn: LossFn = cross_entropy_loss, round_index: int = 0,
                  train_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Dispatch to the score of `config.method` (the methods of the paper's table); x, y: the scoring batch / NRS data;
    train_data: the training set HYDRA optimises its scores on (default: x, y)."""
    method = config.method
    if method == "hydra":
        images, labels = train_data if train_data is not None else (x, y)
        return hydra_scores(model, masks, images, labels, config.rate, loss_fn, config.hydra_epochs,
                            seed=config.seed + round_index)
    if method == "random":
        return random_scores(masks, config.seed + round_index)
    if method == "imp":
        return magnitude_scores(model, masks)
    if method == "snip":
        return snip_scores(model, masks, x, y, loss_fn)
    if method == "taylor":
        return taylor_scores(model, masks, x, y, loss_fn)
    if method == "slim":
        return slimming_scores(model, masks)
    if method == "nrs":
        return nrs_channel_scores(model, x, config.eps, masks)
    return refill_scores(model, masks)


def prune_step(model: nn.Module, masks: Masks, config: PruneConfig, x: torch.Tensor, y: torch.Tensor,
               loss_fn: LossFn = cross_entropy_loss, round_index: int = 0, amount: float | None = None,
               train_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> Masks:
    """One pruning step: score, then prune `amount` (default the rate) of what remains, globally
    (HYDRA: per layer)."""
    amount = config.rate if amount is None else amount
    if config.method == "hydra":
        config = replace(config, rate=amount)
    scores = method_scores(model, masks, config, x, y, loss_fn, round_index, train_data)
    if config.method == "hydra":
        return {name: prune_lowest({name: scores[name]}, {name: masks[name]}, amount)[name] for name in masks}
    return prune_lowest(scores, masks, amount, keep_one_per_layer=config.method in STRUCTURED)


def train_masks(masks: Masks, config: PruneConfig) -> Masks:
    """The parameter masks `train_model` applies for this method's masks."""
    return channel_parameter_masks(masks) if config.method in STRUCTURED else masks


def lottery_round(model: nn.Module, initial_state: dict[str, torch.Tensor], masks: Masks, config: PruneConfig,
                  x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = cross_entropy_loss,
                  round_index: int = 0, train_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> Masks:
    """One lottery-ticket step after a trained round: prune `rate` of the remaining, rewind to θ₀ ⊙ m."""
    new_masks = prune_step(model, masks, config, x, y, loss_fn, round_index, train_data=train_data)
    rewind(model, initial_state, train_masks(new_masks, config))
    return new_masks


def iterative_pruning(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, train_config: TrainConfig,
                      num_classes: int, config: PruneConfig, loss_fn: LossFn = cross_entropy_loss,
                      score_batch: int = 128, on_round=None, *, round_config=None,
                      initial_state: dict[str, torch.Tensor] | None = None, start_round: int = 0,
                      masks: Masks | None = None) -> list[dict]:
    """The released lottery-ticket loop (`fgsm_train.py:158-356`, `lirpa_train.py:387-541`): for each round, prune the
    trained previous round and rewind to θ₀ ⊙ m (rounds ≥ 1), then train with a fresh optimiser and schedules.

    Round 0 is dense; after the last trained round nothing is pruned. `round_config(r)` gives round r's TrainConfig
    (default `train_config` every round); `on_round(r, model, masks, train_seconds)` may checkpoint and verify.
    To resume, pass θ₀ (`initial_state`), the masks of the last trained round, the model holding that round's
    trained weights, and `start_round` = that round + 1. Returns per trained round: its index, the sparsity of its
    masks, a copy of the masks.
    """
    import time

    initial_state = initial_state if initial_state is not None else {
        key: value.detach().clone() for key, value in model.state_dict().items()}
    masks = masks if masks is not None else initial_masks(model, config)
    round_config = round_config or (lambda round_index: train_config)
    x, y = images[:score_batch], labels[:score_batch]
    history = []
    for round_index in range(start_round, config.rounds):
        if round_index > 0:
            masks = lottery_round(model, initial_state, masks, config, x, y, loss_fn, round_index - 1,
                                  (images, labels))
        started = time.perf_counter()
        train_model(model, images, labels, round_config(round_index), num_classes, masks=train_masks(masks, config))
        seconds = time.perf_counter() - started
        history.append({"round": round_index, "sparsity": sparsity(masks),
                        "masks": {name: mask.clone() for name, mask in masks.items()}})
        if on_round is not None:
            on_round(round_index, model, masks, seconds)
    return history


def one_shot_pruning(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, train_config: TrainConfig,
                     num_classes: int, config: PruneConfig, amount: float = 0.9,
                     loss_fn: LossFn = cross_entropy_loss, score_batch: int = 128) -> Masks:
    """One-shot variant (`_1shot`): prune `amount` at initialisation by the method's score, train once."""
    masks = initial_masks(model, config)
    masks = prune_step(model, masks, config, images[:score_batch], labels[:score_batch], loss_fn, 0, amount,
                       (images, labels))
    apply_masks(model, train_masks(masks, config))
    train_model(model, images, labels, train_config, num_classes, masks=train_masks(masks, config))
    return masks


def compress_channels(model: nn.Sequential, channel_masks: Masks) -> nn.Sequential:
    """Physically remove pruned channels before verification (`utils.py:180-269` `--compress`)."""
    import copy

    layers = [copy.deepcopy(module) for module in model]
    names = [name for name, _ in model.named_children()]
    keep_in: torch.Tensor | None = None  # input channels of the next conv / linear that survive
    for index, module in enumerate(layers):
        if isinstance(module, nn.Conv2d):
            bn_name = names[index + 1] if index + 1 < len(layers) else None
            keep_out = channel_masks.get(bn_name, torch.ones(module.out_channels)).bool()
            if not keep_out.any():
                raise ConfigError(f"compressing layer {bn_name}: every channel is pruned")
            weight = module.weight.detach()[keep_out]
            if keep_in is not None:
                weight = weight[:, keep_in]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], module.kernel_size, module.stride, module.padding,
                             bias=module.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(weight)
                if module.bias is not None:
                    conv.bias.copy_(module.bias.detach()[keep_out])
            layers[index] = conv
            keep_in = keep_out
        elif isinstance(module, nn.BatchNorm2d):
            bn = nn.BatchNorm2d(int(keep_in.sum()), eps=module.eps, momentum=module.momentum)
            with torch.no_grad():
                for attribute in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, attribute).copy_(getattr(module, attribute).detach()[keep_in])
            layers[index] = bn
        elif isinstance(module, nn.Linear) and keep_in is not None:
            # Flatten is channel-major: each input channel owns in_features / C consecutive columns
            per_channel = module.in_features // len(keep_in)
            columns = keep_in.repeat_interleave(per_channel)
            linear = nn.Linear(int(columns.sum()), module.out_features)
            with torch.no_grad():
                linear.weight.copy_(module.weight.detach()[:, columns])
                linear.bias.copy_(module.bias.detach())
            layers[index] = linear
            keep_in = None
    return nn.Sequential(*layers).eval()
