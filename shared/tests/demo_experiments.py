"""A demo experiment registered by these tests (through REPRO_EXPERIMENTS), exercising the whole runner.

``line``: fit y = 2x + 1 on seeded noisy data by SGD, log the loss per step, checkpoint every few steps, and declare
the fitted slope as a claim against the true slope. ``needs-data`` requires a local dataset folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from repro_shared.errors import ConfigError
from repro_shared.experiments import Claim, Experiment


@dataclass(frozen=True)
class LineConfig:
    steps: int = 20
    learning_rate: float = 0.1
    samples: int = 64
    checkpoint_every: int = 5
    sleep_per_step: float = 0.0  # lets a test kill the run mid-way

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps}: must be at least 1")


def run_line(config: LineConfig, ctx) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    x = torch.randn(config.samples, 1)  # drawn on the CPU, so every device sees the same data
    y = 2 * x + 1 + 0.1 * torch.randn(config.samples, 1)
    x, y = x.to(ctx.device), y.to(ctx.device)
    model = torch.nn.Linear(1, 1).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    start = 0
    state = ctx.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start = state["step"]
    for step in ctx.progress(range(start, config.steps), desc="fit", total=config.steps - start):
        batch = torch.randint(0, config.samples, (16,))
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.log_metrics(step=step + 1, loss=loss.item())
        if (step + 1) % config.checkpoint_every == 0:
            ctx.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "rng": torch.get_rng_state(), "step": step + 1})
        time.sleep(config.sleep_per_step)
    slope, intercept = model.weight.item(), model.bias.item()
    with torch.no_grad():
        final_loss = torch.nn.functional.mse_loss(model(x), y).item()
    if ctx.is_main_process:  # under a multi-process launch only rank 0 writes files
        figure, axis = plt.subplots(figsize=(3, 3))
        axis.scatter(x.cpu().numpy(), y.cpu().numpy(), s=4)
        axis.plot([-3, 3], [-3 * slope + intercept, 3 * slope + intercept], color="red")
        figure.savefig(ctx.figure("fit"))
        plt.close(figure)
    return {
        "metrics": {"slope": slope, "intercept": intercept, "final_loss": final_loss},
        "claims": [Claim("slope is positive", 2.0, slope, effect=slope)],
        "tables": {"parameters": [{"name": "slope", "value": slope}, {"name": "intercept", "value": intercept}]},
    }


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "demo-set"


def check_data(config: DataConfig, ctx) -> None:
    from repro_shared.data import DatasetSpec, locate_dataset

    locate_dataset(DatasetSpec(config.dataset, hub_id=f"repro-test/{config.dataset}", required_files=("rows.txt",)),
                   ctx.data_dir)


def run_data(config: DataConfig, ctx) -> dict:
    from repro_shared.data import DatasetSpec, locate_dataset

    folder = locate_dataset(DatasetSpec(config.dataset, required_files=("rows.txt",)), ctx.data_dir)
    rows = (folder / "rows.txt").read_text().split()
    return {"metrics": {"rows": len(rows)}}


@dataclass(frozen=True)
class CoinConfig:
    """A measured effect of known size: ``items`` paired differences drawn as effect + noise * N(0, 1)."""

    effect: float = 0.5
    noise: float = 1.0
    items: int = 40


def run_coin(config: CoinConfig, ctx) -> dict:
    import numpy as np
    from repro_shared.evidence import bootstrap_interval

    rng = np.random.default_rng(ctx.seed)
    differences = config.effect + config.noise * rng.standard_normal(config.items)
    mean = float(differences.mean())
    interval = bootstrap_interval(lambda d: float(np.mean(d)), differences, seed=ctx.seed)
    return {"metrics": {"mean_difference": mean},
            "claims": [Claim("the treatment raises the score", "higher", mean, effect=mean, interval=interval),
                       Claim("a claim without an effect", "yes", "yes", True)]}


def experiments() -> list[Experiment]:
    line_scales = {"smoke": LineConfig(steps=10), "quick": LineConfig(steps=40), "paper": LineConfig(steps=1000)}
    data_scales = {scale: DataConfig() for scale in ("smoke", "quick", "paper")}
    coin_scales = {"smoke": CoinConfig(items=10), "quick": CoinConfig(), "paper": CoinConfig(items=1000),
                   "tour": CoinConfig(items=20)}
    return [
        Experiment("line", "fit a line by SGD (demo)", line_scales, run_line),
        Experiment("needs-data", "count the rows of a local dataset (demo)", data_scales, run_data, check_data),
        Experiment("coin", "a paired effect of known size (demo)", coin_scales, run_coin, tour_seeds=(0, 1, 2)),
    ]


@dataclass(frozen=True)
class BoomConfig:
    error: str = "ZeroDivisionError"


def run_boom(config: BoomConfig, ctx) -> dict:
    import builtins

    raise getattr(builtins, config.error)("boom")


def failing_experiments() -> list[Experiment]:
    """Registered only by tests of failure handling: an experiment that raises an arbitrary exception type."""
    scales = {scale: BoomConfig() for scale in ("smoke", "quick", "paper", "tour")}
    return [Experiment("boom", "raises (demo)", scales, run_boom, tour_seeds=(0,))]
