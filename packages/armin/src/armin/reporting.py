"""Turn training results into the run's metrics, tables, figures and claims (paper vs this run)."""

from __future__ import annotations

import math
from typing import Any

import torch
from repro_shared.experiments import Claim

from .efficiency import (
    matmul_macs_per_step,
    peak_cuda_bytes,
    time_per_step,
    training_memory_bytes,
)
from .models import build_model, count_parameters
from .tasks import TaskConfig, algorithmic_batch


def _plot_curves(results: dict[str, dict], key: str, ylabel: str, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2))
    for name, result in results.items():
        history = result["history"]
        axis.plot([row["iteration"] for row in history], [row[key] for row in history], label=name)
    axis.set_xlabel("iteration")
    axis.set_ylabel(ylabel)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _summary_rows(results: dict[str, dict]) -> list[dict[str, Any]]:
    return [{"model": name, **{key: value for key, value in result.items() if key != "history"}}
            for name, result in results.items()]


def _flat_metrics(results: dict[str, dict]) -> dict[str, float]:
    return {f"{name}.{key}": value for name, result in results.items() for key, value in result.items()
            if key != "history" and not isinstance(value, str)}


# --- claims ----------------------------------------------------------------------------------------------------
# Each claim's effect is signed so that a positive value is what the paper claims. "Similar to LSTM" is read as
# non-inferiority: ARMIN may be worse than LSTM by at most a margin (effect = margin − (ARMIN's error − LSTM's)), and
# better is fine. "Fewer / faster / less" is a log ratio ln(other / ARMIN): scale-free, positive when ARMIN is lower.
BITS_RELATIVE_MARGIN, BITS_MARGIN = 0.1, 0.1  # ARMIN's bits/sequence ≤ 1.1 × LSTM's + 0.1
ACCURACY_MARGIN = 0.02  # ARMIN's test accuracy ≥ LSTM's − 0.02
BPC_MARGIN = 0.05  # ARMIN's test BPC ≤ LSTM's + 0.05


def log_ratio(other: float, mine: float) -> float:
    """ln(other / mine): positive when ARMIN's cost ``mine`` is below the other model's (NaN if either is not > 0)."""
    return math.log(other / mine) if other > 0 and mine > 0 else math.nan


def _lower_claim(name: str, paper_value: str, mine: float, theirs: float, unit: str, digits: int,
                 exact: bool = False) -> Claim:
    """``exact``: a count fixed by the sizes (parameters, multiply-adds, saved activations), not a timing."""
    return Claim(name, paper_value, f"{mine:.{digits}f} vs {theirs:.{digits}f}{unit}", effect=log_ratio(theirs, mine),
                 note="effect = ln(other / ARMIN)", exact=exact)


def algorithmic_claims(task: str, results: dict[str, dict]) -> list[Claim]:
    """ARMIN vs LSTM bit error (non-inferiority), ARMIN vs AwTA (the addressing ablation), parameters, and time per
    iteration vs LSTM and NTM."""
    claims = []
    if "armin" in results and "lstm" in results:
        armin, lstm = results["armin"], results["lstm"]
        mine, theirs = armin["eval_bits_per_sequence"], lstm["eval_bits_per_sequence"]
        claims.append(Claim(
            f"{task}: ARMIN's bit error is similar to LSTM's (eval bits/sequence, ARMIN vs LSTM)", "similar",
            f"{mine:.2f} vs {theirs:.2f}", effect=(1 + BITS_RELATIVE_MARGIN) * theirs + BITS_MARGIN - mine,
            note="effect = 1.1 × LSTM + 0.1 − ARMIN (bits/sequence)"))
        claims.append(_lower_claim("ARMIN has fewer parameters than LSTM", "fewer", armin["parameters"],
                                   lstm["parameters"], "", 0, exact=True))
    if "armin" in results and "awta" in results:  # the paper's ablation: the same cell with TARDIS addressing
        mine, theirs = results["armin"]["eval_bits_per_sequence"], results["awta"]["eval_bits_per_sequence"]
        claims.append(Claim(
            f"{task}: auto-addressing learns at least as well as TARDIS addressing (eval bits/sequence, ARMIN vs "
            "AwTA)", "at least as well", f"{mine:.2f} vs {theirs:.2f}",
            effect=(1 + BITS_RELATIVE_MARGIN) * theirs + BITS_MARGIN - mine,
            note="effect = 1.1 × AwTA + 0.1 − ARMIN (bits/sequence)"))
    for other in ("lstm", "ntm"):
        if "armin" in results and other in results:
            claims.append(_lower_claim(f"ARMIN trains faster per iteration than {other.upper()} (s/iteration)",
                                       "faster", results["armin"]["seconds_per_iteration"],
                                       results[other]["seconds_per_iteration"], "", 4))
    return claims


def pixel_claims(task: str, dataset: str, results: dict[str, dict]) -> list[Claim]:
    """ARMIN's test accuracy is not below LSTM's by more than ``ACCURACY_MARGIN``."""
    if "armin" not in results or "lstm" not in results:
        return []
    armin, lstm = results["armin"]["test_accuracy"], results["lstm"]["test_accuracy"]
    return [Claim(f"{task} {dataset}: ARMIN's test accuracy is similar to LSTM's", "similar",
                  f"{armin:.3f} vs {lstm:.3f}", effect=armin - (lstm - ACCURACY_MARGIN),
                  note="effect = ARMIN − LSTM + 0.02 (test accuracy)")]


def char_claims(results: dict[str, dict]) -> list[Claim]:
    """ARMIN's test BPC is not above LSTM's by more than ``BPC_MARGIN``."""
    if "armin" not in results or "lstm" not in results:
        return []
    armin, lstm = results["armin"]["test_bpc"], results["lstm"]["test_bpc"]
    return [Claim("char-LM: ARMIN's test BPC is similar to LSTM's", "similar", f"{armin:.3f} vs {lstm:.3f}",
                  effect=lstm + BPC_MARGIN - armin, note="effect = LSTM + 0.05 − ARMIN (test BPC)")]


def efficiency_claims(rows: list[dict], memory_rows: list[dict]) -> list[Claim]:
    """Parameters, multiply-adds and training time per step vs LSTM(300); time vs NTM and TARDIS; memory vs NTM.

    Times are ratios measured within one run (the same machine state for both models).
    """
    by_model = {row["model"]: row for row in rows}
    claims = []
    if "armin" in by_model and "lstm" in by_model:
        armin, lstm = by_model["armin"], by_model["lstm"]
        claims += [
            _lower_claim("ARMIN(100) has fewer parameters than LSTM(300)", "fewer", armin["parameters"],
                         lstm["parameters"], "", 0, exact=True),
            _lower_claim("ARMIN(100) needs fewer multiply-adds per step than LSTM(300)", "fewer",
                         armin["macs_per_step"], lstm["macs_per_step"], "", 0, exact=True),
            _lower_claim("ARMIN(100) trains faster per step than LSTM(300) (ms per time step)", "faster",
                         armin["train_ms_per_time_step"], lstm["train_ms_per_time_step"], "", 3),
        ]
    for other in ("ntm", "tardis"):
        if "armin" in by_model and other in by_model:
            claims.append(_lower_claim(f"ARMIN trains faster per step than {other.upper()}", "faster",
                                       by_model["armin"]["train_ms_per_time_step"],
                                       by_model[other]["train_ms_per_time_step"], " ms", 3))
    longest = max((row["length"] for row in memory_rows), default=None)
    memory_at = {row["model"]: row["saved_activation_mb"] for row in memory_rows if row["length"] == longest}
    if "armin" in memory_at and "ntm" in memory_at:
        claims.append(_lower_claim(f"ARMIN holds less training memory than NTM at length {longest}", "less",
                                   memory_at["armin"], memory_at["ntm"], " MB", 1, exact=True))
    return claims


def algorithmic_results(config, results: dict[str, dict], ctx) -> dict:
    for _name, result in results.items():
        solved = [row["iteration"] for row in result["history"] if row["bits_per_sequence"] < config.solved_bits]
        result["iterations_to_solve"] = solved[0] if solved else None
    if ctx.is_main_process:
        _plot_curves(results, "bits_per_sequence", "train bit errors / sequence", ctx.figure("bit_errors"))
    claims = algorithmic_claims(config.task.name, results)
    return {"metrics": _flat_metrics(results), "claims": claims, "tables": {"models": _summary_rows(results)},
            "histories": {name: result["history"] for name, result in results.items()}}


def pixel_results(config, results: dict[str, dict], source: str, ctx) -> dict:
    if ctx.is_main_process:
        _plot_curves(results, "accuracy", "train accuracy (window mean)", ctx.figure("train_accuracy"))
    claims = pixel_claims("permuted" if config.permuted else "sequential", config.dataset, results)
    return {"metrics": _flat_metrics(results), "claims": claims, "tables": {"models": _summary_rows(results)},
            "data_source": source, "histories": {name: result["history"] for name, result in results.items()}}


def char_results(config, results: dict[str, dict], corpus, ctx) -> dict:
    if ctx.is_main_process:
        _plot_curves(results, "bpc", "train bits per character", ctx.figure("train_bpc"))
    claims = char_claims(results)
    return {"metrics": _flat_metrics(results), "claims": claims, "tables": {"models": _summary_rows(results)},
            "corpus": {"source": corpus.source, "train_chars": len(corpus.train), "vocabulary": len(corpus.vocabulary)},
            "histories": {name: result["history"] for name, result in results.items()}}


def efficiency_results(config, ctx) -> dict:
    """Parameters, MACs/step, train/inference time per step and memory vs length for each model on copy."""
    task = TaskConfig("copy", min_length=config.copy_length, max_length=config.copy_length + 1)
    batch = algorithmic_batch(task, config.batch_size, torch.Generator().manual_seed(0))
    inputs, targets = batch.inputs.to(ctx.device), batch.targets.to(ctx.device)
    steps = inputs.shape[0]
    rows, memory_rows = [], []
    for kind in ctx.progress(config.models, desc="models"):
        model_config = config.sizes.model(kind)
        torch.manual_seed(ctx.seed)
        model = build_model(model_config, task.input_size, task.output_size).to(ctx.device)
        train_s = time_per_step(model, inputs, targets, train=True, repeats=config.repeats)
        infer_s = time_per_step(model, inputs, targets, train=False, repeats=config.repeats)
        rows.append({"model": kind, "hidden": model_config.hidden, "parameters": count_parameters(model),
                     "macs_per_step": matmul_macs_per_step(model_config, task.input_size, task.output_size),
                     "train_ms_per_time_step": 1e3 * train_s / steps, "infer_ms_per_time_step": 1e3 * infer_s / steps,
                     "train_sequences_per_s": config.batch_size / train_s})
        for length in config.memory_lengths:
            long_inputs = torch.zeros(length, config.batch_size, task.input_size, device=ctx.device)
            row = {"model": kind, "length": length, "saved_activation_mb": training_memory_bytes(model, long_inputs)
                   / 2**20}
            if ctx.device.type == "cuda":
                row["peak_cuda_mb"] = peak_cuda_bytes(model, long_inputs, long_inputs[:, :, :8]) / 2**20
            memory_rows.append(row)
    if ctx.is_main_process:
        _plot_memory(memory_rows, ctx.figure("memory_vs_length"))
    claims = efficiency_claims(rows, memory_rows)
    metrics = {f"{row['model']}.{key}": value for row in rows for key, value in row.items() if key != "model"}
    return {"metrics": metrics, "claims": claims, "tables": {"per_step": rows, "memory": memory_rows}}


def _plot_memory(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2))
    for model in dict.fromkeys(row["model"] for row in rows):
        points = [(row["length"], row["saved_activation_mb"]) for row in rows if row["model"] == model]
        axis.plot(*zip(*points, strict=True), marker="o", label=model)
    axis.set_xlabel("sequence length")
    axis.set_ylabel("activation memory for backward (MB)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
