"""Training and evaluation: one loop for every task, with the paper's losses and metrics per task.

* algorithmic tasks: BCE on the answer phase, bit errors per sequence (threshold 0.5), RMSprop, clip by value;
* pixel tasks: NLL of the last step's prediction and accuracy, Adam, clip by norm, ×0.1 decay late in training;
* character LM: cross-entropy in bits per character, truncated BPTT carrying state and memory across segments.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from repro_shared.errors import ConfigError
from torch import Tensor, nn

from .addressing import tau_schedule
from .models import ModelConfig, State, build_model, count_parameters, detach_state
from .tasks import AlgorithmicBatch, CharCorpus, PixelSplits, TaskConfig, algorithmic_batch, batchify

OPTIMIZERS = ("rmsprop", "adam")
SELECTIONS = ("best", "final")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the inverse-temperature schedule."""

    optimizer: str = "rmsprop"  # rmsprop (momentum 0.9, alpha 0.95: algorithmic tasks) | adam (pixel, LM)
    learning_rate: float = 1e-4
    iterations: int = 1000
    batch_size: int = 16
    clip_value: float = 10.0  # gradient value clip (algorithmic tasks); 0 disables
    clip_norm: float = 0.0  # gradient norm clip (pixel tasks: 1); 0 disables
    decay_at: float = 1.0  # fraction of the iterations after which the learning rate is ×0.1 (1.0: never)
    log_every: int = 50  # iterations per logged window (and checkpoint)
    tau_start: float = 1.0  # inverse temperature τ of the Gumbel-softmax read ...
    tau_increment: float = 1.0  # ... increased by this ...
    tau_every: int = 400  # ... every this many iterations ...
    tau_max: float = 50.0  # ... up to this
    select: str = "best"  # which iterate is scored: "best" on held-out validation data at each log, or "final"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} is unknown", f"use one of {', '.join(OPTIMIZERS)}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"train select={self.select!r} is unknown", f"use one of {', '.join(SELECTIONS)}")
        for name in ("iterations", "batch_size", "log_every", "tau_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train {name}={getattr(self, name)}: must be at least 1")
        for name in ("learning_rate", "clip_value", "clip_norm", "tau_start", "tau_increment", "tau_max",
                     "decay_at"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"train {name}={getattr(self, name)}: must be a finite number")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate}: must be positive")
        for name in ("clip_value", "clip_norm", "tau_increment"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train {name}={getattr(self, name)}: must be >= 0 (0 disables clipping / "
                                  "keeps τ constant)")
        if not 0 < self.decay_at <= 1:
            raise ConfigError(f"decay_at={self.decay_at}: must be in (0, 1]")
        if self.tau_start <= 0:
            raise ConfigError(f"tau_start={self.tau_start}: must be positive (τ = 0 makes the read uniform and "
                              "stops gradients to the addressing layer)")
        if self.tau_max < self.tau_start:
            raise ConfigError(f"train tau_max={self.tau_max}: must be >= tau_start ({self.tau_start})")

    def tau(self, step: int) -> float:
        return tau_schedule(step, self.tau_start, self.tau_increment, self.tau_every, self.tau_max)


class TaskRunner(Protocol):
    """What the loop needs from a task."""

    input_size: int
    output_size: int

    def train_loss(self, model: nn.Module, step: int, tau: float, carry: State | None
                   ) -> tuple[Tensor, dict[str, Tensor], State | None]: ...

    def evaluate(self, model: nn.Module, tau: float) -> dict[str, float]: ...

    def validation_score(self, model: nn.Module, tau: float) -> float:
        """A held-out score (lower is better, data disjoint from ``evaluate``'s test data) to pick the best iterate."""
        ...


def step_generator(seed: int, step: int) -> torch.Generator:
    """The data generator of one iteration: a function of (seed, step) only, so a resumed run sees the same data."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


EVAL_BATCH = 32  # sequences per evaluation batch (one sequence length per batch), whatever the training batch
EVAL_SEED, VALIDATION_SEED = 10**9, 2 * 10**9  # generator seeds of the fixed evaluation / validation batches


class AlgorithmicRunner:
    """Copy / repeat copy / associative recall / priority sort: BCE on the answer phase, bit errors per sequence."""

    def __init__(self, task: TaskConfig, batch_size: int, eval_sequences: int, seed: int, device: torch.device,
                 validation_sequences: int = 128) -> None:
        self.task, self.batch_size = task, batch_size
        self.eval_sequences, self.validation_sequences = eval_sequences, validation_sequences
        self.seed, self.device = seed, device
        self.input_size, self.output_size = task.input_size, task.output_size

    def _loss(self, model: nn.Module, batch: AlgorithmicBatch, tau: float) -> tuple[Tensor, Tensor]:
        logits, _ = model(batch.inputs.to(self.device), tau=tau)
        answer = logits[-batch.answer_steps:]
        targets = batch.targets.to(self.device)
        loss = F.binary_cross_entropy_with_logits(answer, targets)
        return loss, bit_errors_per_sequence(answer, targets)

    def train_loss(self, model, step, tau, carry):
        batch = algorithmic_batch(self.task, self.batch_size, step_generator(self.seed, step))
        loss, bits = self._loss(model, batch, tau)
        return loss, {"loss": loss.detach(), "bits_per_sequence": bits}, None

    @torch.no_grad()
    def _score(self, model: nn.Module, tau: float, sequences: int, first_seed: int) -> tuple[float, float]:
        """Mean loss and bits per sequence on ``sequences`` fixed sequences, in batches of ``EVAL_BATCH``."""
        losses, bits, counted = 0.0, 0.0, 0
        for index in range(math.ceil(sequences / EVAL_BATCH)):
            size = min(EVAL_BATCH, sequences - counted)
            batch = algorithmic_batch(self.task, size, torch.Generator().manual_seed(first_seed + index))
            loss, bit = self._loss(model, batch, tau)
            losses, bits, counted = losses + float(loss) * size, bits + float(bit) * size, counted + size
        return losses / counted, bits / counted

    def evaluate(self, model, tau):
        """The fixed evaluation set (the same for every model and seed, whatever the training batch size)."""
        loss, bits = self._score(model, tau, self.eval_sequences, EVAL_SEED)
        return {"eval_loss": loss, "eval_bits_per_sequence": bits}

    def validation_score(self, model, tau):
        """Bits per sequence on held-out validation sequences (seeds disjoint from training and evaluation)."""
        return self._score(model, tau, self.validation_sequences, VALIDATION_SEED)[1]


def bit_errors_per_sequence(logits: Tensor, targets: Tensor) -> Tensor:
    """Σ |round(σ(out)) − target| over a sequence's answer, averaged over the batch (the paper's metric)."""
    wrong = ((logits > 0).to(targets.dtype) - targets).abs()
    return wrong.sum(dim=(0, 2)).mean()


class PixelRunner:
    """Pixel-by-pixel classification from the last step: NLL and accuracy."""

    def __init__(self, splits: PixelSplits, batch_size: int, seed: int, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        self.splits, self.batch_size, self.seed, self.device, self.dtype = splits, batch_size, seed, device, dtype
        self.input_size, self.output_size = 1, 10
        self.steps_per_epoch = max(1, len(splits.train[1]) // batch_size)

    def _loss(self, model: nn.Module, pixels: Tensor, labels: Tensor, tau: float) -> tuple[Tensor, Tensor]:
        logits, _ = model(pixels.transpose(0, 1).to(self.device, self.dtype), tau=tau)
        last = logits[-1]
        labels = labels.to(self.device)
        return F.cross_entropy(last, labels), (last.argmax(-1) == labels).float().mean()

    def train_loss(self, model, step, tau, carry):
        epoch, position = divmod(step, self.steps_per_epoch)
        pixels, labels = self.splits.train
        order = torch.randperm(len(labels), generator=step_generator(self.seed, -1 - epoch))
        index = order[position * self.batch_size:(position + 1) * self.batch_size]
        loss, accuracy = self._loss(model, pixels[index], labels[index], tau)
        return loss, {"loss": loss.detach(), "accuracy": accuracy}, None

    @torch.no_grad()
    def _split_scores(self, model: nn.Module, split: str, tau: float) -> tuple[float, float]:
        """Mean NLL and accuracy over one split, in chunks of 500 sequences."""
        pixels, labels = getattr(self.splits, split)
        losses, correct = 0.0, 0.0
        for start in range(0, len(labels), 500):
            loss, accuracy = self._loss(model, pixels[start:start + 500], labels[start:start + 500], tau)
            count = len(labels[start:start + 500])
            losses, correct = losses + float(loss) * count, correct + float(accuracy) * count
        return losses / len(labels), correct / len(labels)

    def evaluate(self, model, tau):
        results = {}
        for split in ("validation", "test"):
            results[f"{split}_nll"], results[f"{split}_accuracy"] = self._split_scores(model, split, tau)
        return results

    def validation_score(self, model, tau):
        """Validation NLL (the released pMNIST code keeps the checkpoint with the lowest validation loss)."""
        return self._split_scores(model, "validation", tau)[0]


class CharRunner:
    """Character-level LM with truncated BPTT: one-hot characters in, next-character logits out, BPC."""

    def __init__(self, corpus: CharCorpus, streams: int, bptt: int, device: torch.device) -> None:
        self.corpus, self.bptt, self.device = corpus, bptt, device
        self.input_size = self.output_size = len(corpus.vocabulary)
        self.train_streams = batchify(corpus.train, streams)
        self.segments = max(1, (self.train_streams.shape[0] - 1) // bptt)

    def _segment_loss(self, model: nn.Module, streams: Tensor, start: int, tau: float, state: State | None
                      ) -> tuple[Tensor, State, int]:
        chunk = streams[start:start + self.bptt + 1].to(self.device)
        inputs = F.one_hot(chunk[:-1], self.input_size).float()
        logits, state = model(inputs, state, tau=tau)
        loss = F.cross_entropy(logits.reshape(-1, self.output_size), chunk[1:].reshape(-1))
        return loss, state, chunk.shape[0] - 1

    def train_loss(self, model, step, tau, carry):
        segment = step % self.segments
        state = None if segment == 0 else carry  # a new pass over the corpus starts from the initial state
        loss, state, _ = self._segment_loss(model, self.train_streams, segment * self.bptt, tau, state)
        return loss, {"loss": loss.detach(), "bpc": loss.detach() / math.log(2)}, detach_state(state)

    @torch.no_grad()
    def evaluate(self, model, tau):
        results = {}
        for split in ("validation", "test"):
            streams = batchify(getattr(self.corpus, split), 8)
            state, total, count = None, 0.0, 0
            for start in range(0, streams.shape[0] - 1, self.bptt):
                loss, state, steps = self._segment_loss(model, streams, start, tau, state)
                total, count = total + float(loss) * steps, count + steps
            results[f"{split}_bpc"] = total / count / math.log(2)
        return results

    def validation_score(self, model, tau):
        return self.evaluate(model, tau)["validation_bpc"]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=config.learning_rate, momentum=0.9, alpha=0.95)
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=1e-8)


def clip_gradients(model: nn.Module, config: TrainConfig) -> None:
    if config.clip_value > 0:
        nn.utils.clip_grad_value_(model.parameters(), config.clip_value)
    if config.clip_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)


def _rng_state() -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


EVAL_NOISE_SEED = 7  # Gumbel noise during evaluation and validation: fixed, drawn outside the training stream


def held_out(score, model: nn.Module, device: torch.device):
    """``score(model)`` in eval mode with fixed Gumbel noise, leaving the training random stream untouched."""
    was_training = model.training
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(EVAL_NOISE_SEED)
        model.eval()
        try:
            return score(model)
        finally:
            model.train(was_training)


def save_weights(path, model: nn.Module, model_config: ModelConfig, runner: TaskRunner, iteration: int) -> None:
    """A reloadable file: the model's config and sizes with its state dict (``load_weights`` rebuilds the model)."""
    torch.save({"config": dataclasses.asdict(model_config), "input_size": runner.input_size,
                "output_size": runner.output_size, "iteration": iteration,
                "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()}}, path)


def load_weights(path, device: torch.device | str = "cpu") -> nn.Module:
    """The model saved by ``save_weights``, in eval mode, ready for ``runner.evaluate``."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(ModelConfig(**payload["config"]), payload["input_size"], payload["output_size"])
    model = model.to(device=device, dtype=getattr(torch, payload["dtype"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def train_models(models: dict[str, ModelConfig], runner: TaskRunner, config: TrainConfig, ctx,
                 dtype: torch.dtype = torch.float32) -> dict[str, dict]:
    """Train and evaluate each named model in turn on one task; checkpoints let an interrupted run resume exactly.

    Returns, per model: parameter count, evaluation metrics of the scored iterate (``config.select``: the best on
    held-out validation data, or the final one) with both iterates' metrics under ``final_`` / ``best_``, seconds
    per iteration and the logged history. The final and (when selected) best weights are saved under ``weights/``.
    """
    saved = ctx.load_checkpoint() or {}
    finished: dict[str, dict] = saved.get("finished", {})
    for index, (name, model_config) in enumerate(models.items()):
        if name in finished:
            continue
        torch.manual_seed(ctx.seed * 1000 + index)  # a model's initialisation depends on (seed, model) only
        model = build_model(model_config, runner.input_size, runner.output_size).to(device=ctx.device, dtype=dtype)
        optimizer = make_optimizer(model, config)
        progress = {"step": 0, "carry": None, "history": [], "seconds": 0.0, "best": None}
        if saved.get("current") == name:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            progress = saved["progress"]
            _set_rng_state(saved["rng"])
        _train_one(name, model, optimizer, runner, config, ctx, progress, finished)
        finished[name] = _evaluate_iterates(name, model, model_config, runner, config, ctx, progress)
        ctx.save_checkpoint({"finished": finished, "current": None})
    return finished


def _train_one(name: str, model: nn.Module, optimizer: torch.optim.Optimizer, runner: TaskRunner,
               config: TrainConfig, ctx, progress: dict, finished: dict) -> None:
    """Train ``model`` from ``progress`` to the last iteration; ``progress`` ends with the history and best iterate."""
    model.train()
    decay_step = int(config.decay_at * config.iterations)
    sums: dict[str, Tensor] = {}
    carry, started = progress["carry"], time.perf_counter()
    for step in ctx.progress(range(progress["step"], config.iterations), desc=name,
                             total=config.iterations - progress["step"]):
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * (0.1 if step >= decay_step else 1.0)
        loss, metrics, carry = runner.train_loss(model, step, config.tau(step), carry)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, config)
        optimizer.step()
        for key, value in metrics.items():  # summed as tensors: no host sync per step
            sums[key] = sums.get(key, 0.0) + value
        if (step + 1) % config.log_every == 0 or step + 1 == config.iterations:
            window = (step % config.log_every) + 1
            seconds = progress["seconds"] + time.perf_counter() - started
            record = {"iteration": step + 1, "tau": config.tau(step),
                      **{key: float(value) / window for key, value in sums.items()}}
            best = progress.get("best")
            if config.select == "best":  # validation time is not training time: measured outside `seconds`
                tau = config.tau(step)
                record["validation_score"] = held_out(lambda m, tau=tau: runner.validation_score(m, tau), model,
                                                      ctx.device)
                if best is None or record["validation_score"] < best["score"]:
                    best = {"score": record["validation_score"], "iteration": step + 1,
                            "state": {key: value.detach().clone() for key, value in model.state_dict().items()}}
            ctx.log_metrics(step=step + 1, model=name, **record)
            progress.update(step=step + 1, carry=carry, history=[*progress["history"], record], seconds=seconds,
                            best=best)
            sums = {}
            ctx.save_checkpoint({"finished": finished, "current": name, "model": model.state_dict(),
                                 "optimizer": optimizer.state_dict(), "progress": progress, "rng": _rng_state()})
            started = time.perf_counter()


def _evaluate_iterates(name: str, model: nn.Module, model_config: ModelConfig, runner: TaskRunner,
                       config: TrainConfig, ctx, progress: dict) -> dict:
    """Evaluate the final iterate (and the best one), save both weights, report the selected one's metrics."""
    tau = config.tau(config.iterations - 1)
    evaluate = lambda m: runner.evaluate(m, tau)  # noqa: E731
    final = held_out(evaluate, model, ctx.device)
    result = {"parameters": count_parameters(model), **final, **{f"final_{key}": v for key, v in final.items()}}
    if ctx.is_main_process:
        save_weights(ctx.artifact(f"weights/{name}.final.pt"), model, model_config, runner, config.iterations)
    best = progress.get("best")
    if best is not None:
        model.load_state_dict(best["state"])
        scores = held_out(evaluate, model, ctx.device)
        result.update({f"best_{key}": value for key, value in scores.items()}, best_iteration=best["iteration"])
        if config.select == "best":
            result.update(scores)
        if ctx.is_main_process:
            save_weights(ctx.artifact(f"weights/{name}.best.pt"), model, model_config, runner, best["iteration"])
    result["selected_iterate"] = config.select
    return {**result, "seconds_per_iteration": progress["seconds"] / max(1, config.iterations),
            "history": progress["history"]}
