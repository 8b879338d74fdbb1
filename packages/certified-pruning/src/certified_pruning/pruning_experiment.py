"""The paper's main experiment: every pruning method × training mode × sparsity, each pruned model verified completely.

For each training mode (FGSM+GradAlign, CROWN-IBP) and pruning method, the iterative lottery-ticket loop
trains round 0 dense, then prunes `rate` of what remains, rewinds to θ₀ and retrains; every trained round is one
sparsity level. Each round's model (channel methods: physically compressed, `compress_channels`) is verified on the
first `images` test images with the complete verifier (clean → PGD → α-CROWN → BaB), and one point is appended to
`points.jsonl`: clean / certified accuracy, falsified / timeout counts, unstable neurons, BaB domains and time, the
initial α-CROWN bound. Methods without a training term of their own (the NRS and RS regularisers, slimming's L1 on
γ) share the dense round 0 of their mode (same θ₀, same seed: the paper's runs of those methods start from the same
dense training). A (mode, method) pair is one unit: its
trained rounds are checkpointed and its points are appended as they finish, so `--resume` skips done points and
continues a half-verified point image by image.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from repro_shared import io
from repro_shared.errors import ConfigError
from torch import nn

from certified_pruning.checks import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, check_fields
from certified_pruning.prune import STRUCTURED
from certified_pruning.train import MODES

# Pruning methods of the grid: the pruner's methods, plus IMP trained with the NRS regulariser (`*_l1unstruct_nrs`
# configs) and with the plain RS regulariser of Xiao et al. 2019 (γ⁰, the paper's RS baseline).
REGULARISED = {"imp-nrs": ("imp", 2.0), "imp-rs": ("imp", 0.0), "nrs": ("nrs", 2.0)}  # method: (pruner, γ power)
# methods whose training differs from plain training (a regulariser, or slimming's L1 on γ): own dense round 0
OWN_ROUND_ZERO = frozenset({*REGULARISED, "slim"})
# run order: the paper's proposal and the main baseline first, so a cut-short run still holds the key comparison
GRID_METHODS = ("imp", "nrs", "imp-nrs", "random", "snip", "taylor", "hydra", "slim", "refill", "imp-rs")
TRAIN_MODES = tuple(mode for mode in MODES if mode != "natural")  # the paper has no natural-training entry point


@dataclass(frozen=True)
class PruningConfig:
    """The grid (methods × modes × lottery rounds) and the training / verification settings of every point."""

    dataset: str = "digits"
    methods: tuple[str, ...] = GRID_METHODS
    modes: tuple[str, ...] = TRAIN_MODES
    eps: float = 0.05  # training and verification ε, raw pixel units (paper: 2/255 CIFAR-10 / SVHN, 0.1 FashionMNIST)
    rounds: int = 4  # trained rounds of unstructured methods; round 0 is dense (paper: 16)
    rate: float = 0.5  # fraction of the remaining conv weights pruned per round (paper: 0.2)
    structured_rounds: int = 4  # paper: 12
    structured_rate: float = 0.3  # fraction of the remaining channels pruned per round (paper: 0.11)
    channels: tuple[int, ...] = (8, 16, 16, 32, 32)  # 1,216 ReLUs on 8×8 inputs
    fc_width: int = 32
    batch_size: int = 64
    fgsm_epochs: int = 10
    fgsm_learning_rate: float = 0.05  # SGD (paper 0.01 for 200 epochs)
    crown_epochs: int = 15
    crown_learning_rate: float = 0.005  # Adam (paper 1e-3 for 200 epochs)
    schedule_start_fraction: float = 0.05  # ε ramp: start epoch 1 + 5 % and length 40.5 % of the epochs (paper 11, 81)
    schedule_length_fraction: float = 0.405
    nrs_weight_fgsm: float = 0.01  # paper rs_weight, FGSM configs
    nrs_weight_crown: float = 0.001  # paper rs_weight, CROWN-IBP configs
    slim_weight: float = 1e-4  # paper slim_weight of the `slim` configs: + slim_weight · mean|γ| while training
    fgsm_rewind_fraction: float = 0.04  # FGSM rounds ≥ 1 pre-step the LR schedule by this share of the epochs (8/200)
    hydra_epochs: int = 5  # paper 20
    score_batch: int = 128  # one batch for SNIP / Taylor scores and the NRS channel statistic
    images: int = 25  # verified test images per point (paper 200)
    bab_domains: int = 300  # BaB domains per image: the deterministic verification budget (paper: 300 s per image)
    timeout: float = 120.0  # wall-clock safety net per image, seconds; images it stops are counted (clock_stops)
    pgd_steps: int = 50
    pgd_restarts: int = 5
    alpha_iterations: int = 10
    batch_domains: int = 32
    make_figures: bool = True
    # the pre-registered pruning method of the headline claims (its highest sparsity against the dense model)
    headline_method: str = "random"
    verifier_memory_gib: float = 8.0  # preflight: refuse a network whose dense verification would need more

    def __post_init__(self) -> None:
        if not self.eps > 0:
            raise ConfigError(f"eps={self.eps}: the perturbation radius must be positive (e.g. 2/255)")
        unknown = [m for m in self.methods if m not in (*GRID_METHODS, "dense")]
        if unknown or not self.methods:
            raise ConfigError(f"methods={self.methods}: unknown {unknown}", f"choose from {GRID_METHODS}")
        bad_modes = [m for m in self.modes if m not in TRAIN_MODES]
        if bad_modes or not self.modes:
            raise ConfigError(f"modes={self.modes}: unknown {bad_modes}", f"choose from {TRAIN_MODES}")
        for name in ("rate", "structured_rate"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ConfigError(f"{name}={value}: the sparsity step (fraction of the remaining weights or channels "
                                  "pruned per round) must lie strictly between 0 and 1")
        check_fields(self, {
            "rounds": AT_LEAST_ONE, "structured_rounds": AT_LEAST_ONE, "fc_width": AT_LEAST_ONE,
            "batch_size": AT_LEAST_ONE, "fgsm_epochs": AT_LEAST_ONE, "fgsm_learning_rate": POSITIVE,
            "crown_epochs": AT_LEAST_ONE, "crown_learning_rate": POSITIVE, "schedule_start_fraction": FRACTION,
            "schedule_length_fraction": POSITIVE, "nrs_weight_fgsm": NON_NEGATIVE, "nrs_weight_crown": NON_NEGATIVE,
            "slim_weight": NON_NEGATIVE, "fgsm_rewind_fraction": FRACTION, "hydra_epochs": NON_NEGATIVE,
            "score_batch": AT_LEAST_ONE, "images": AT_LEAST_ONE,
            "bab_domains": (AT_LEAST_ONE[0], "the per-image branch-and-bound budget must be >= 1"),
            "timeout": (POSITIVE[0], "the wall-clock safety net (seconds per image) must be > 0"),
            "pgd_steps": NON_NEGATIVE, "pgd_restarts": AT_LEAST_ONE, "alpha_iterations": NON_NEGATIVE,
            "batch_domains": AT_LEAST_ONE, "verifier_memory_gib": POSITIVE})
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels={self.channels}: five positive channel counts")
        if self.headline_method not in GRID_METHODS:
            raise ConfigError(f"headline_method={self.headline_method!r} is not a pruning method",
                              f"choose from {GRID_METHODS}")


# ---------------------------------------------------------------- the parts of one unit

def unit_order(config: PruningConfig) -> list[tuple[str, str]]:
    """(mode, method) units in run order: per mode the shared dense round first, then the methods."""
    units = []
    for mode in config.modes:
        if any(method not in OWN_ROUND_ZERO for method in config.methods):
            units.append((mode, "dense"))
        units += [(mode, method) for method in config.methods if method != "dense"]
    return units


def pruner_of(method: str) -> str:
    """The pruning method of `prune` behind a grid method."""
    return REGULARISED[method][0] if method in REGULARISED else method


def train_config(config: PruningConfig, mode: str, method: str, seed: int):
    """TrainConfig of one round: the mode's optimiser and ε ramp, and the method's regulariser."""
    from certified_pruning.train import TrainConfig

    epochs = config.fgsm_epochs if mode == "fgsm" else config.crown_epochs
    nrs_weight, gamma_pow = 0.0, 2.0
    if method in REGULARISED:
        gamma_pow = REGULARISED[method][1]
        nrs_weight = config.nrs_weight_fgsm if mode == "fgsm" else config.nrs_weight_crown
    return TrainConfig(mode=mode, eps=config.eps, epochs=epochs, batch_size=config.batch_size,
                       learning_rate=config.fgsm_learning_rate if mode == "fgsm" else config.crown_learning_rate,
                       weight_decay=5e-4 if mode == "fgsm" else 0.0,
                       schedule_start=1 + int(config.schedule_start_fraction * epochs + 0.5),
                       schedule_length=max(1, int(config.schedule_length_fraction * epochs + 0.5)),
                       nrs_weight=nrs_weight, gamma_pow=gamma_pow,
                       slim_weight=config.slim_weight if method == "slim" else 0.0, seed=seed)


def prune_config(config: PruningConfig, method: str, seed: int):
    """PruneConfig of a grid method (structured methods use the channel rate and round count)."""
    from certified_pruning.prune import PruneConfig

    pruner = pruner_of(method)
    structured = pruner in STRUCTURED
    return PruneConfig(method=pruner, rate=config.structured_rate if structured else config.rate,
                       rounds=config.structured_rounds if structured else config.rounds, eps=config.eps, seed=seed,
                       hydra_epochs=config.hydra_epochs)


def robust_score_loss(mode: str, eps: float, num_classes: int):
    """The mode's robust loss at full ε, for SNIP / Taylor / HYDRA scores ("of the *robust* loss").

    FGSM: FGSM+GradAlign. CROWN-IBP: at ε = ε_max the mixing weight κ is 0, so the loss is the IBP robust
    cross-entropy, computed here in plain torch (it must differentiate through pruning re-parametrisations).
    """
    from certified_pruning.train import fgsm_gradalign_loss

    if mode == "fgsm":
        return lambda model, x, y: fgsm_gradalign_loss(model, x, y, eps, 0.2)
    return lambda model, x, y: ibp_robust_loss(model, x, y, eps, num_classes)


def ibp_robust_loss(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float,
                    num_classes: int) -> torch.Tensor:
    """IBP robust CE (`lirpa_train.py` at κ = 0): margins e_y − e_j bounded by IBP, spec folded into the last layer.

    A model in training mode normalises its BatchNorms with the batch statistics (auto_LiRPA's BN node in training,
    as the released scoring runs it), one in eval mode with the running statistics.
    """
    from certified_pruning.affine_net import interval_affine
    from certified_pruning.train import interval_relu_inputs

    *_, (lower, upper, _) = interval_relu_inputs(model, x, eps, batch_statistics=model.training)
    lower, upper = lower.clamp(min=0), upper.clamp(min=0)
    last = model[-1]
    eye = torch.eye(num_classes, dtype=x.dtype)
    spec = eye[y].unsqueeze(1) - eye.unsqueeze(0)  # (B, classes, classes): row j = e_y − e_j
    weight = spec @ last.weight  # (B, classes, features)
    bias = spec @ last.bias
    margin_lower, _ = interval_affine(lower, upper, lambda c: (weight @ c.unsqueeze(-1)).squeeze(-1) + bias,
                                      lambda r: (weight.abs() @ r.unsqueeze(-1)).squeeze(-1))
    # CE over [0, −lb_j for j ≠ y]: the j = y row is the constant 0 already
    return F.cross_entropy(-margin_lower, y)


def weight_sparsity(model: nn.Module, dense_conv_weights: int) -> float:
    """Fraction of the dense model's conv weights that are zero or physically removed (common x-axis of the plots)."""
    alive = sum(int((m.weight != 0).sum()) for m in model.modules() if isinstance(m, nn.Conv2d))
    return 1.0 - alive / dense_conv_weights


def ibp_unstable_per_image(model: nn.Sequential, images: torch.Tensor, eps: float) -> list[int]:
    """Unstable ReLUs of each image under IBP at full ε (l·u < 0, |l|,|u| ≤ 1e-5 zeroed)."""
    from certified_pruning.train import interval_relu_inputs

    with torch.no_grad():
        total = torch.zeros(len(images), dtype=torch.long)
        for lower, upper, _ in interval_relu_inputs(model.eval(), images, eps):
            lower = torch.where(lower.abs() <= 1e-5, torch.zeros_like(lower), lower)
            upper = torch.where(upper.abs() <= 1e-5, torch.zeros_like(upper), upper)
            total += (lower * upper < 0).flatten(1).sum(1)
    return total.tolist()


def ibp_unstable(model: nn.Sequential, images: torch.Tensor, eps: float) -> float:
    """Mean number of unstable ReLUs per image under IBP at full ε."""
    return float(np.mean(ibp_unstable_per_image(model, images, eps)))


# ---------------------------------------------------------------- points file (resumable)

def read_points(path: Path) -> list[dict]:
    """Points recorded so far (a torn last line, from a kill mid-write, is dropped)."""
    points = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                points.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return points


def append_point(path: Path, point: dict) -> None:
    """Append one point as a JSON line, fsynced (the run can be killed at any moment)."""
    points = read_points(path)  # rewrite without a torn line before appending
    if path.exists() and len(points) != len(path.read_text().splitlines()):
        io.atomic_write_text(path, "".join(json.dumps(p) + "\n" for p in points))
    with path.open("a") as stream:
        stream.write(json.dumps(point) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def point_key(point: dict) -> tuple[str, str, int]:
    return point["mode"], point["method"], point["round"]


# ---------------------------------------------------------------- running a unit

@dataclass
class GridContext:
    """What every unit needs: data, model shape, run paths, the verifier settings."""

    config: PruningConfig
    ctx: object
    split: object
    model_config: object
    points_path: Path
    done: set

    def fresh_model(self) -> nn.Sequential:
        """θ₀: the same seeded initialisation for every unit of the run."""
        from certified_pruning.models import cifar_model_deep

        torch.manual_seed(self.ctx.seed)
        return cifar_model_deep(self.model_config)

    def checkpoint_path(self, mode: str, method: str) -> Path:
        return self.ctx.artifact(f"checkpoints/units/{mode}_{method}.pt")


def verify_point(grid: GridContext, model: nn.Sequential, masks: dict, mode: str, method: str, round_index: int,
                 train_seconds: float) -> dict:
    """Compress (channel methods), verify the first `images` test images, and summarise one point."""
    from certified_pruning.models import count_relus
    from certified_pruning.prune import channel_parameter_masks, compress_channels, sparsity
    from certified_pruning.verify import VerifierConfig, stage_counts, summarise, verify_dataset

    config, split = grid.config, grid.split
    structured = pruner_of(method) in STRUCTURED
    if structured:
        from certified_pruning.prune import apply_masks

        apply_masks(model, channel_parameter_masks(masks))
        model = compress_channels(model, masks)
    model = model.eval()
    count = min(config.images, len(split.test_labels))
    images, labels = split.test_images[:count], split.test_labels[:count]
    verifier = VerifierConfig(eps=config.eps, timeout=config.timeout, pgd_steps=config.pgd_steps,
                              pgd_restarts=config.pgd_restarts, alpha_iterations=config.alpha_iterations,
                              batch_domains=config.batch_domains, max_domains=config.bab_domains,
                              seed=grid.ctx.seed)
    started = time.perf_counter()
    results = verify_dataset(model, images, labels, verifier,
                             grid.ctx.artifact(f"verification/{mode}_{method}_r{round_index}.jsonl"), resume=True)
    verify_seconds = time.perf_counter() - started
    summary = summarise(results)
    reached = [r for r in results if r.initial_bound is not None]  # images that got to α-CROWN
    dense_conv = sum(m.weight.numel() for m in grid.fresh_model().modules() if isinstance(m, nn.Conv2d))
    unstable = ibp_unstable_per_image(model, images, config.eps)
    with torch.no_grad():
        test_correct = (model(split.test_images).argmax(1) == split.test_labels).int().tolist()
    return {
        "mode": mode, "method": method, "round": round_index,
        "sparsity": sparsity(masks) if masks else 0.0,  # of the method's own unit (conv weights, or channels)
        "weight_sparsity": weight_sparsity(model, dense_conv),
        "relus": count_relus(model, split.input_shape),
        "test_accuracy": float(np.mean(test_correct)),
        "clean_accuracy": summary["clean_accuracy"],
        "certified_accuracy": summary["verified_accuracy"],
        "certified_upper_bound": summary["certified_upper_bound"],  # the budget's undecided images lie in between
        "verified": sum(r.status == "verified" for r in results),
        "falsified": sum(r.status == "falsified" for r in results),
        "timeout": sum(r.status == "timeout" for r in results),
        "unknown": sum(r.status == "unknown" for r in results),
        "images": count,
        "ibp_unstable": float(np.mean(unstable)),
        "crown_unstable": float(np.mean([r.unstable_neurons for r in reached])) if reached else None,
        "initial_bound": float(np.mean([r.initial_bound for r in reached])) if reached else None,
        "mean_domains": summary["mean_domains"],
        "bab_domains_opened": float(np.mean([r.domains for r in reached])) if reached else 0.0,
        "mean_verify_seconds": summary["mean_seconds"],
        "train_seconds": round(train_seconds, 2),
        "verify_seconds": round(verify_seconds, 2),
        "stages": stage_counts(results),
        # per item, for the headline claims' paired bootstrap intervals (same images / test items in every point)
        "certified_per_image": [int(r.verified) for r in results],
        "ibp_unstable_per_image": unstable,
        "test_correct": test_correct,
    }


def run_unit(grid: GridContext, mode: str, method: str) -> None:
    """One (mode, method) lottery loop, checkpointed after every trained round."""
    from certified_pruning.prune import initial_masks, iterative_pruning

    config, split, ctx = grid.config, grid.split, grid.ctx
    rounds_method = "imp" if method == "dense" else method
    prune = prune_config(config, rounds_method, ctx.seed)
    rounds = 1 if method == "dense" else prune.rounds
    if all((mode, point_name(method, r), r) in grid.done for r in range(rounds)):
        return
    train = train_config(config, mode, method, ctx.seed)
    loss_fn = robust_score_loss(mode, config.eps, split.num_classes)
    model = grid.fresh_model()
    initial_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    masks = initial_masks(model, prune)
    start, train_seconds = 0, 0.0
    saved = _load(grid.checkpoint_path(mode, method))
    if saved is None and method not in OWN_ROUND_ZERO and method != "dense":
        saved = _load(grid.checkpoint_path(mode, "dense"))  # the shared dense round 0 of this mode
        if saved is not None:
            saved = {**saved, "masks": masks}
    if saved is not None:
        model.load_state_dict(saved["model"])
        masks, start, train_seconds = saved["masks"], saved["round"] + 1, saved.get("train_seconds", 0.0)
        _verify_if_missing(grid, model, masks, mode, point_name(method, saved["round"]), saved["round"],
                           train_seconds)

    def round_config(round_index: int):
        prestep = round(config.fgsm_rewind_fraction * train.epochs) if mode == "fgsm" and round_index > 0 else 0
        return replace(train, seed=ctx.seed + round_index, lr_prestep_epochs=prestep)

    def checkpoint_and_verify(round_index: int, model: nn.Sequential, masks: dict, seconds: float) -> None:
        io.atomic_torch_save({"model": model.state_dict(), "masks": masks, "round": round_index,
                              "train_seconds": seconds}, grid.checkpoint_path(mode, method))
        _verify_if_missing(grid, model, masks, mode, point_name(method, round_index), round_index, seconds)

    iterative_pruning(model, split.train_images, split.train_labels, train, split.num_classes,
                      replace(prune, rounds=rounds), loss_fn, config.score_batch, checkpoint_and_verify,
                      round_config=round_config, initial_state=initial_state, start_round=start, masks=masks)


def point_name(method: str, round_index: int) -> str:
    """The method a point is recorded under: round 0 of a method without a regulariser is the shared dense point."""
    return method if round_index or method in OWN_ROUND_ZERO else "dense"


def _verify_if_missing(grid: GridContext, model: nn.Sequential, masks: dict, mode: str, method: str,
                       round_index: int, train_seconds: float) -> None:
    if (mode, method, round_index) in grid.done:
        return
    import copy

    point = verify_point(grid, copy.deepcopy(model), masks, mode, method, round_index, train_seconds)
    append_point(grid.points_path, point)
    grid.done.add(point_key(point))
    grid.ctx.log.info("%s %s round %d: sparsity %.3f, clean %.3f, certified %.3f, timeouts %d, unstable %.1f",
                      mode, method, round_index, point["weight_sparsity"], point["clean_accuracy"],
                      point["certified_accuracy"], point["timeout"], point["ibp_unstable"])


def _load(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


# ---------------------------------------------------------------- the experiment

def check_pruning(config: PruningConfig, ctx) -> None:
    """Preflight: the dataset must be loadable (offline, a Hub dataset fails here at once) and the dense network
    small enough for the dense verifier (`verifier_memory_gib`); the package computes on the CPU."""
    from certified_pruning.data import check_dataset

    check_dataset(config.dataset)
    check_scale(config.dataset, config.channels, config.fc_width, config.batch_domains, config.verifier_memory_gib,
                ctx)


def check_scale(dataset: str, channels: tuple[int, ...], fc_width: int, batch_domains: int, memory_gib: float,
                ctx) -> None:
    """The dense verifier's memory preflight, and a note that `--device` is not used (everything runs on the CPU)."""
    from certified_pruning.data import INPUT_SHAPES
    from certified_pruning.models import layer_sizes, model_config_for
    from certified_pruning.verify import check_verifier_memory

    shape = INPUT_SHAPES[dataset]
    check_verifier_memory(layer_sizes(model_config_for(shape, 10, channels, fc_width)), batch_domains, memory_gib)
    device = getattr(ctx, "device", None)
    if device is not None and device.type != "cpu":
        ctx.log.warning("certified-pruning trains and verifies on the CPU: --device %s is not used", device)


def run_pruning(config: PruningConfig, ctx) -> dict:
    """Run every (mode, method) unit not yet done, then tabulate the points, draw the figures, check the claims."""
    from certified_pruning.data import load_split
    from certified_pruning.models import model_config_for
    from certified_pruning.pruning_report import claims, figures, stage_totals, summary_tables

    check_pruning(config, ctx)
    split = load_split(config.dataset, seed=ctx.seed)
    model_config = model_config_for(split.input_shape, split.num_classes, config.channels, config.fc_width)
    points_path = ctx.artifact("points.jsonl")
    grid = GridContext(config, ctx, split, model_config, points_path,
                       {point_key(p) for p in read_points(points_path)})
    units = unit_order(config)
    for mode, method in ctx.progress(units, desc="pruning units"):
        run_unit(grid, mode, method)
    points = read_points(points_path)
    if config.make_figures:
        figures(points, ctx.path / "figures")
    return {"metrics": {"points": len(points), "units": len(units), **stage_totals(points)},
            "claims": claims(points, config.headline_method, seed=ctx.seed),
            "tables": summary_tables(points),
            "config_summary": asdict(config)}
