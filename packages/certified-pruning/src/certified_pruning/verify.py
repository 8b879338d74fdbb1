"""Complete verification of L∞ robustness, following the protocol of the paper's α,β-CROWN runs:

clean check → PGD attack → CROWN → α-CROWN → ReLU-split branch and bound on the labels still open, sorted by PGD
margin. Branch and bound bounds each domain by CROWN with its splits imposed on the intermediate bounds (`relaxation`),
branches on the neuron with the largest BaBSR intercept score, processes domains in batches, and decides fully split
leaves exactly by an LP (`milp.leaf_lp_minimum`), so that with enough domains it decides every instance.

The budget that decides an outcome is deterministic: a number of BaB domains per image (`max_domains`); an image
whose domains run out is a ``timeout`` (undecided within the budget), the same on any machine and load. The paper's
verifier budgets wall-clock seconds instead; here `timeout` seconds are only a safety net against a runaway image: an
image it stops is marked ``clock_stop`` and counted by `summarise`, so a load-dependent result is never silent.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from repro_shared.errors import ConfigError
from torch import nn

from certified_pruning.affine_net import AffineReluNetwork, to_affine_relu_network
from certified_pruning.attack import pgd_attack
from certified_pruning.bounds import LinfBall, check_supported
from certified_pruning.checks import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, check_fields
from certified_pruning.milp import leaf_lp_minimum
from certified_pruning.relaxation import LayerBounds, backward_lower_bound, crown_layer_bounds, optimise_alpha

STATUSES = ("verified", "falsified", "timeout", "unknown")
STAGES = ("clean", "pgd", "crown", "alpha-crown", "bab")


@dataclass(frozen=True)
class VerifierConfig:
    """Settings of the complete verifier (paper: PGD 100 steps × 100 restarts, α-CROWN 100 it., 300 s per image)."""

    eps: float
    input_lower: float = 0.0
    input_upper: float = 1.0
    pgd_steps: int = 100
    pgd_restarts: int = 20
    alpha_iterations: int = 20  # α-CROWN iterations on the root bound
    alpha_lr: float = 0.1
    batch_domains: int = 32  # domains split per branch-and-bound step
    max_domains: int = 200_000  # BaB domains per image, shared by all labels: the deterministic budget
    timeout: float = 600.0  # wall-clock safety net per image (seconds); a stop is recorded as clock_stop
    seed: int = 100

    def __post_init__(self) -> None:
        if not self.eps > 0:
            raise ConfigError(f"eps={self.eps}: the perturbation radius must be positive")
        check_fields(self, {"timeout": POSITIVE, "batch_domains": AT_LEAST_ONE, "max_domains": AT_LEAST_ONE,
                            "pgd_steps": NON_NEGATIVE, "pgd_restarts": AT_LEAST_ONE,
                            "alpha_iterations": NON_NEGATIVE, "alpha_lr": POSITIVE})

    @property
    def ball(self) -> LinfBall:
        return LinfBall(self.eps, self.input_lower, self.input_upper)


def dense_verifier_bytes(layer_sizes: list[int], batch_domains: int) -> int:
    """Memory the dense verifier needs, roughly: float64 composed affine maps (n_k × n_(k-1) for consecutive layer
    sizes, input first) plus the CROWN coefficients of one batch of domains when bounding the widest layer
    (batch · 2 · widest · widest input-or-hidden layer)."""
    maps = sum(after * before for before, after in itertools.pairwise(layer_sizes))
    widest_hidden, widest = max(layer_sizes[1:-1], default=0), max(layer_sizes[:-1])
    return 8 * (maps + batch_domains * 2 * widest_hidden * widest)


def check_verifier_memory(layer_sizes: list[int], batch_domains: int, limit_gib: float) -> None:
    """Refuse, before any training, a network whose dense verification would need more than `limit_gib` GiB."""
    need = dense_verifier_bytes(layer_sizes, batch_domains) / 2**30
    if need > limit_gib:
        raise ConfigError(f"verifying this network ({sum(layer_sizes[1:-1]):,} ReLUs, batches of {batch_domains} "
                          f"domains) needs about {need:,.1f} GiB in the dense verifier, over verifier_memory_gib="
                          f"{limit_gib}", "the dense verifier is for networks of a few thousand ReLUs")


@dataclass
class ImageResult:
    """What the verifier records for one image."""

    index: int
    label: int
    prediction: int
    status: str  # one of STATUSES
    stage: str  # where it was decided: one of STAGES (or where it stopped)
    seconds: float
    domains: int  # branch-and-bound domains bounded
    unstable_neurons: int  # at the root (CROWN intermediate bounds over the full ball)
    initial_bound: float | None  # smallest α-CROWN margin lower bound (None when decided before α-CROWN)
    open_labels: list[int] = field(default_factory=list)  # labels α-CROWN left to branch and bound
    counterexample: list[float] | None = None  # a point in the ball whose prediction is not the label
    clock_stop: bool = False  # the wall-clock safety net, not the domain budget, ended this image
    bab_seconds: float = 0.0  # of `seconds`, the time spent in branch and bound (after the clean/PGD/α-CROWN filters)

    @property
    def verified(self) -> bool:
        return self.status == "verified"


@dataclass
class _Domain:
    """A branch-and-bound sub-problem: per-layer pre-activation bounds with its splits imposed, and its bound."""

    lower_bound: float
    lowers: list[torch.Tensor]
    uppers: list[torch.Tensor]
    scores: list[torch.Tensor]


@dataclass
class LabelOutcome:
    status: str
    domains: int
    counterexample: torch.Tensor | None = None
    clock_stop: bool = False


class Deadline:
    """Wall-clock safety net shared by every stage of one image (checked between BaB batches)."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def passed(self) -> bool:
        return time.perf_counter() >= self.end


def _stack(domains: list[_Domain]) -> LayerBounds:
    return LayerBounds([torch.stack(layer) for layer in zip(*(d.lowers for d in domains), strict=True)],
                       [torch.stack(layer) for layer in zip(*(d.uppers for d in domains), strict=True)])


def choose_branch(domain: _Domain) -> tuple[int, int] | None:
    """BaBSR-style branching: the unstable neuron whose triangle-relaxation intercept costs the bound most.

    Falls back to the unstable neuron with the largest relaxation area −l·u/(u−l); None when none is unstable.
    """
    best, best_score, fallback, fallback_score = None, 0.0, None, -1.0
    for layer, (lower, upper, score) in enumerate(zip(domain.lowers, domain.uppers, domain.scores, strict=True)):
        unstable = (lower < 0) & (upper > 0)
        if not unstable.any():
            continue
        masked = torch.where(unstable, score, torch.full_like(score, -1.0))
        index = int(masked.argmax())
        if masked[index] > best_score:
            best, best_score = (layer, index), float(masked[index])
        area = torch.where(unstable, -lower * upper / (upper - lower).clamp(min=1e-12), torch.full_like(lower, -1.0))
        index = int(area.argmax())
        if area[index] > fallback_score:
            fallback, fallback_score = (layer, index), float(area[index])
    return best if best is not None else fallback


def _split(domain: _Domain, layer: int, neuron: int) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """The two children of a ReLU split: inactive (u ← min(u, 0)) and active (l ← max(l, 0))."""
    inactive_upper = [u.clone() for u in domain.uppers]
    inactive_upper[layer][neuron] = min(float(inactive_upper[layer][neuron]), 0.0)
    active_lower = [lo.clone() for lo in domain.lowers]
    active_lower[layer][neuron] = max(float(active_lower[layer][neuron]), 0.0)
    return [(domain.lowers, inactive_upper), (active_lower, domain.uppers)]


def branch_and_bound(network: AffineReluNetwork, x_lower: torch.Tensor, x_upper: torch.Tensor, root: LayerBounds,
                     deadline: Deadline, batch_domains: int, max_domains: int) -> LabelOutcome:
    """ReLU-split branch and bound proving network(x) > 0 (one output) on the box, or finding x with network(x) ≤ 0."""
    last = len(network.weights) - 1
    root_result = backward_lower_bound(network, last, torch.ones(1, 1, dtype=torch.float64), root, x_lower, x_upper)
    counter = itertools.count()
    queue: list[tuple[float, int, _Domain]] = []
    visited, undecided_leaf = 1, False
    root_domain = _Domain(float(root_result.lower[0, 0]), [b[0] for b in root.lowers], [b[0] for b in root.uppers],
                          [s[0] for s in root_result.intercept_scores])
    if root_domain.lower_bound > 0:
        return LabelOutcome("verified", visited)
    heapq.heappush(queue, (root_domain.lower_bound, next(counter), root_domain))
    while queue:
        if visited >= max_domains:  # the deterministic budget is spent: undecided
            return LabelOutcome("timeout", visited)
        if deadline.passed():
            return LabelOutcome("timeout", visited, clock_stop=True)
        parents = [heapq.heappop(queue)[2] for _ in range(min(batch_domains, len(queue)))]
        children, split_layers = [], []
        for parent in parents:
            branch = choose_branch(parent)
            if branch is None:  # fully split leaf: decide exactly
                outcome = _decide_leaf(network, x_lower, x_upper, parent)
                if outcome.status == "falsified":
                    return LabelOutcome("falsified", visited, outcome.counterexample)
                undecided_leaf |= outcome.status == "unknown"
                continue
            children += _split(parent, *branch)
            split_layers += [branch[0], branch[0]]
        if not children:
            continue
        visited += len(children)
        known = LayerBounds([torch.stack([c[0][k] for c in children]) for k in range(len(root.lowers))],
                            [torch.stack([c[1][k] for c in children]) for k in range(len(root.uppers))])
        count = len(children)
        box_lower, box_upper = x_lower.expand(count, -1), x_upper.expand(count, -1)
        bounds = crown_layer_bounds(network, box_lower, box_upper, known, start_layer=min(split_layers) + 1)
        result = backward_lower_bound(network, last, torch.ones(1, 1, dtype=torch.float64), bounds,
                                      box_lower, box_upper)
        infeasible = bounds.infeasible()
        open_children = (~infeasible) & (result.lower[:, 0] <= 0)
        if open_children.any():
            candidates = _refine_candidates(network, result.input_minimiser[open_children, 0], x_lower, x_upper)
            values = network(candidates)[:, 0]
            if (values <= 0).any():
                return LabelOutcome("falsified", visited, candidates[int(values.argmin())].unsqueeze(0))
        for i in torch.nonzero(open_children).flatten().tolist():
            domain = _Domain(float(result.lower[i, 0]), [b[i] for b in bounds.lowers], [b[i] for b in bounds.uppers],
                             [s[i] for s in result.intercept_scores])
            heapq.heappush(queue, (domain.lower_bound, next(counter), domain))
    return LabelOutcome("unknown" if undecided_leaf else "verified", visited)


def _refine_candidates(network: AffineReluNetwork, starts: torch.Tensor, x_lower: torch.Tensor,
                       x_upper: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Cheap falsification: a few projected sign-gradient steps on the output from each open child's
    bound-minimising box vertex (any point of the box with output ≤ 0 is a counterexample, whatever the domain)."""
    step = (x_upper - x_lower) / 8
    points = starts.clone()
    best, best_values = starts.clone(), network(starts)[:, 0]
    for _ in range(steps):
        points.requires_grad_(True)
        values = network(points)[:, 0]
        (gradient,) = torch.autograd.grad(values.sum(), points)
        with torch.no_grad():
            points = torch.maximum(torch.minimum(points - step * gradient.sign(), x_upper), x_lower)
            values = network(points)[:, 0]
            better = values < best_values
            best[better], best_values[better] = points[better], values[better]
    return best


def _decide_leaf(network: AffineReluNetwork, x_lower: torch.Tensor, x_upper: torch.Tensor,
                 domain: _Domain) -> LabelOutcome:
    """Exact LP on a leaf with every neuron's sign fixed: verified (min > 0 or empty), falsified, or unknown."""
    result = leaf_lp_minimum(network, x_lower[0].numpy(), x_upper[0].numpy(),
                             [b.numpy() for b in domain.lowers], [b.numpy() for b in domain.uppers])
    if result.status == "infeasible" or (result.minimum is not None and result.minimum > 0):
        return LabelOutcome("verified", 0)
    if result.minimum is not None:
        point = torch.from_numpy(result.minimiser).unsqueeze(0).clamp(x_lower, x_upper)
        if float(network(point)[0, 0]) <= 0:
            return LabelOutcome("falsified", 0, point)
    return LabelOutcome("unknown", 0)  # LP says ≤ 0 but the point does not confirm it numerically, or LP failed


def verify_image(model: nn.Module, network: AffineReluNetwork, x: torch.Tensor, label: int, index: int,
                 config: VerifierConfig) -> ImageResult:
    """Decide robustness of one image (1, C, H, W) within the ball: clean → PGD → α-CROWN → BaB per open label."""
    start = time.perf_counter()
    deadline = Deadline(config.timeout)
    generator = torch.Generator().manual_seed(config.seed + index)
    x_lower, x_upper = config.ball.box(x)

    def finish(status: str, stage: str, prediction: int, **extra) -> ImageResult:
        return ImageResult(index, label, prediction, status, stage, time.perf_counter() - start, **extra)

    with torch.no_grad():
        prediction = int(model(x).argmax(dim=1))
    if prediction != label:
        return finish("falsified", "clean", prediction, domains=0, unstable_neurons=0, initial_bound=None,
                      counterexample=x.flatten().tolist())
    adversarial, pgd_margins = pgd_attack(model, x, label, x_lower, x_upper, config.pgd_steps,
                                          config.pgd_restarts, generator)
    if _confirmed_counterexample(network, adversarial.flatten(1).double(), label):
        return finish("falsified", "pgd", prediction, domains=0, unstable_neurons=0, initial_bound=None,
                      counterexample=adversarial.flatten().tolist())
    flat_lower, flat_upper = x_lower.flatten(1).double(), x_upper.flatten(1).double()
    root = crown_layer_bounds(network, flat_lower, flat_upper)
    unstable = int(sum(int(mask.sum()) for mask in root.unstable()))
    others = [j for j in range(network.num_outputs) if j != label]
    eye = torch.eye(network.num_outputs, dtype=torch.float64)
    spec = torch.stack([eye[label] - eye[j] for j in others]).unsqueeze(0)
    crown_bound = optimise_alpha(network, spec, root, flat_lower, flat_upper, 0).lower[0]
    if bool((crown_bound > 0).all()):  # CROWN alone proves every margin
        return finish("verified", "crown", prediction, domains=0, unstable_neurons=unstable,
                      initial_bound=float(crown_bound.min()))
    alpha_bound = optimise_alpha(network, spec, root, flat_lower, flat_upper, config.alpha_iterations,
                                 config.alpha_lr).lower[0]
    initial_bound = float(alpha_bound.min())
    open_labels = [j for j, bound in zip(others, alpha_bound.tolist(), strict=True) if bound <= 0]
    common = {"unstable_neurons": unstable, "initial_bound": initial_bound, "open_labels": open_labels}
    if not open_labels:
        return finish("verified", "alpha-crown", prediction, domains=0, **common)
    open_labels.sort(key=lambda j: float(pgd_margins[others.index(j)]))  # most attackable first
    domains, status = 0, "verified"
    bab_started = time.perf_counter()
    common["bab_seconds"] = 0.0

    def finish_bab(status: str, **extra) -> ImageResult:
        common["bab_seconds"] = time.perf_counter() - bab_started
        return finish(status, "bab", prediction, domains=domains, **common, **extra)

    for other in open_labels:
        outcome = branch_and_bound(network.with_spec((eye[label] - eye[other]).unsqueeze(0)), flat_lower, flat_upper,
                                   root, deadline, config.batch_domains, config.max_domains - domains)
        domains += outcome.domains
        if outcome.status == "falsified":
            if _confirmed_counterexample(network, outcome.counterexample, label):
                return finish_bab("falsified", counterexample=outcome.counterexample.flatten().tolist())
            status = "unknown"
        elif outcome.status != "verified":
            return finish_bab(outcome.status, clock_stop=outcome.clock_stop)
    return finish_bab(status)


def _confirmed_counterexample(network: AffineReluNetwork, point: torch.Tensor, label: int) -> bool:
    """True when the network (float64) does not predict `label` strictly at `point` (a tie counts as an attack)."""
    logits = network(point)[0]
    others = torch.cat([logits[:label], logits[label + 1:]])
    return bool(others.max() >= logits[label])


def prepare_network(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[nn.Module, AffineReluNetwork]:
    """Eval-mode copy of `model` and its dense affine form; checks layer types and the input shape."""
    check_supported(model)
    model = copy.deepcopy(model).float().eval()
    try:
        network = to_affine_relu_network(model, input_shape)
    except RuntimeError as error:
        raise ConfigError(f"input shape {tuple(input_shape)} does not fit the model: {error}") from error
    return model, network


def read_results(path: Path) -> list[ImageResult]:
    """Per-image results written so far (a torn last line, from a kill mid-write, is ignored)."""
    results = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                results.append(ImageResult(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                break
    return results


def verify_dataset(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: VerifierConfig,
                   results_path: Path | str, resume: bool = False,
                   on_result: Callable[[ImageResult], None] | None = None) -> list[ImageResult]:
    """Verify every image, appending one JSON line per image to `results_path` as soon as it is decided.

    With `resume`, images already in the file are kept and the run continues from the first one missing.
    """
    if images.dim() < 2 or len(images) != len(labels):
        raise ConfigError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    model, network = prepare_network(model, tuple(images.shape[1:]))
    warm_up_optimiser()
    path = Path(results_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = read_results(path) if resume else []
    with path.open("w") as stream:  # rewrite the kept lines, dropping a torn one
        for result in done:
            stream.write(json.dumps(asdict(result)) + "\n")
    for index in _remaining(len(images), len(done)):
        result = verify_image(model, network, images[index:index + 1].float(), int(labels[index]), index, config)
        with path.open("a") as stream:
            stream.write(json.dumps(asdict(result)) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        done.append(result)
        if on_result is not None:
            on_result(result)
    return done


def _remaining(total: int, finished: int) -> Iterator[int]:
    return iter(range(finished, total))


def warm_up_optimiser() -> None:
    """Take one Adam step on a dummy parameter: the first `torch.optim` step of a process imports lazily for
    seconds, which would otherwise be charged to the first image's α-CROWN (its time, and the safety net)."""
    parameter = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.Adam([parameter], lr=0.1)
    parameter.sum().backward()
    optimiser.step()


def stage_counts(results: list[ImageResult]) -> dict[str, int]:
    """How many images each stage decided (``verified_by_crown``, ``falsified_by_pgd``, ...), the undecided
    ``timeout`` / ``unknown`` counts, and ``clock_stops`` (images the wall-clock safety net ended)."""
    counts = {f"{status}_by_{stage}": 0 for status, stages in
              (("verified", ("crown", "alpha-crown", "bab")), ("falsified", ("clean", "pgd", "bab")))
              for stage in stages}
    for result in results:
        key = f"{result.status}_by_{result.stage}"
        if key in counts:
            counts[key] += 1
    counts["timeout"] = sum(r.status == "timeout" for r in results)
    counts["unknown"] = sum(r.status == "unknown" for r in results)
    counts["clock_stops"] = sum(r.clock_stop for r in results)
    return counts


def summarise(results: list[ImageResult]) -> dict[str, float]:
    """Verified accuracy, status fractions, mean time/domains/unstable neurons, per-stage counts over the images."""
    total = max(len(results), 1)
    summary = {f"{status}_fraction": sum(r.status == status for r in results) / total for status in STATUSES}
    summary["verified_accuracy"] = summary["verified_fraction"]
    # the other side of the true certified accuracy: an image not falsified (clean check, PGD, BaB) might be robust
    summary["certified_upper_bound"] = 1.0 - summary["falsified_fraction"]
    summary["clean_accuracy"] = sum(r.prediction == r.label for r in results) / total
    summary["mean_seconds"] = float(np.mean([r.seconds for r in results])) if results else 0.0
    summary["mean_domains"] = float(np.mean([r.domains for r in results])) if results else 0.0
    summary["mean_unstable_neurons"] = float(np.mean([r.unstable_neurons for r in results])) if results else 0.0
    summary.update(stage_counts(results))
    return summary
