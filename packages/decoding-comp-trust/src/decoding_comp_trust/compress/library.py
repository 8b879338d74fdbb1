"""The library paths: llm-compressor (GPTQ, AWQ, SparseGPT, Wanda) and auto-round (SignRound), run on CPU.

Both get the calibration windows explicitly (their default calibration sets come from the Hub). llm-compressor
leaves quantized layers with ``weight_scale``/``weight_zero_point`` and (for AWQ) unquantized weights; the functions
here return a plain dense state dict with quantize-dequantize applied, which any ``transformers`` reloads.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from collections.abc import Iterator
from typing import Any

import torch
from repro_shared.errors import ConfigError
from torch import nn

from .settings import AWQ_GRIDS, CompressSettings

# calibration windows per forward pass: one batch per block instead of one window (per-call overhead dominates on CPU)
BATCH = 16
_EXTRA_SUFFIXES = ("weight_scale", "weight_zero_point", "weight_g_idx", "weight_global_scale")


@contextlib.contextmanager
def cpu_pin_memory_shim() -> Iterator[None]:
    """llm-compressor 0.14's AWQ pins cached activations with ``Tensor.pin_memory()``, which raises
    ``RuntimeError: Cannot access accelerator device when none is available.`` on a CPU-only machine. Pinning only
    speeds up host-to-GPU copies, so without a GPU it is skipped (restored afterwards)."""
    from llmcompressor.pipelines.cache import IntermediatesCache

    original = IntermediatesCache.__dict__["_pin_intermediate"]
    if torch.cuda.is_available():
        yield
        return
    IntermediatesCache._pin_intermediate = classmethod(lambda cls, intermediate: None)
    try:
        yield
    finally:
        IntermediatesCache._pin_intermediate = original


@contextlib.contextmanager
def _config_on_disk(model: nn.Module) -> Iterator[None]:
    """``oneshot`` re-reads ``model.config.name_or_path`` from disk; an in-memory model gets a temporary copy."""
    from pathlib import Path

    original = model.config.name_or_path
    if original and (Path(original) / "config.json").exists():
        yield
        return
    with tempfile.TemporaryDirectory(prefix="dct-config-") as folder:
        model.config.save_pretrained(folder)
        model.config.name_or_path = folder
        try:
            yield
        finally:
            model.config.name_or_path = original


def awq_modifier(grid: str = "llm-compressor") -> Any:
    """llm-compressor's AWQ with activation-only scales s = mean|x|^α (``duo_scaling=False``, as llm-awq, the paper's
    AWQ) over 20 ratios α: "llm-compressor" = k/19, k = 0…19 (0 to 1 inclusive, the library's grid); "llm-awq" =
    k/20, k = 0…19 (0 to 0.95, `auto_scale.py`'s ``ratio * 1 / n_grid``, the paper's)."""
    from llmcompressor.modifiers.transform.awq import AWQModifier

    if grid == "llm-compressor":
        return AWQModifier(duo_scaling=False, n_grid=20)
    if grid != "llm-awq":
        raise ConfigError(f"awq_grid={grid!r}", f"use one of {', '.join(AWQ_GRIDS)}")

    class LlmAwqGridAWQModifier(AWQModifier):
        def _get_grid_search_params(self) -> list[tuple[float, bool]]:
            return [(k / self.n_grid, False) for k in range(self.n_grid)]

    return LlmAwqGridAWQModifier(duo_scaling=False, n_grid=20)


def _modifier(settings: CompressSettings, targets: list[str], awq_grid: str = "llm-compressor") -> Any:
    ignore = ["lm_head"]
    if settings.is_quantization:
        weights = {"num_bits": settings.bits, "type": "int", "symmetric": settings.is_symmetric,
                   "strategy": "group", "group_size": settings.group_size}
        groups = {"group_0": {"targets": targets, "weights": weights}}
        if settings.method == "gptq":
            from llmcompressor.modifiers.quantization import GPTQModifier

            # actorder="weight": the paper's desc_act sweep order with contiguous groups (see README)
            return GPTQModifier(config_groups=groups, ignore=ignore, dampening_frac=0.01, block_size=128,
                                actorder="weight")
        from llmcompressor.modifiers.quantization import QuantizationModifier

        return [awq_modifier(awq_grid), QuantizationModifier(config_groups=groups, ignore=ignore)]
    pattern = settings.sparsity_pattern()
    structure = f"{pattern.m - pattern.n}:{pattern.m}" if pattern.structured else "0:0"  # llm-compressor: N pruned of M
    if settings.method == "sparsegpt":
        try:
            from llmcompressor.modifiers.pruning.sparsegpt import SparseGPTModifier
        except ImportError:  # llm-compressor < 0.14.1 keeps it in obcq
            from llmcompressor.modifiers.obcq import SparseGPTModifier

        return SparseGPTModifier(sparsity=pattern.sparsity, mask_structure=structure, targets=targets, ignore=ignore,
                                 dampening_frac=0.01, block_size=128)
    from llmcompressor.modifiers.pruning import WandaPruningModifier

    return WandaPruningModifier(sparsity=pattern.sparsity, mask_structure=structure, targets=targets, ignore=ignore)


def _recipe(settings: CompressSettings, targets: list[str], awq_grid: str = "llm-compressor") -> list[Any]:
    modifier = _modifier(settings, targets, awq_grid)
    return modifier if isinstance(modifier, list) else [modifier]


def _dataset(windows: torch.Tensor) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": windows.tolist(), "attention_mask": torch.ones_like(windows).tolist()})


def llmcompressor_compress(model: nn.Module, tokenizer: Any, settings: CompressSettings, windows: torch.Tensor,
                           target_names: list[str], awq_grid: str = "llm-compressor") -> dict[str, torch.Tensor]:
    """Run llm-compressor's ``oneshot`` with one modifier; the dense (fake-quantized / masked) state dict."""
    from llmcompressor import oneshot

    targets = ["re:^" + re.escape(name) + "$" for name in target_names]
    shim = cpu_pin_memory_shim() if settings.method == "awq" else contextlib.nullcontext()
    recipe = _recipe(settings, targets, awq_grid)
    with _config_on_disk(model), shim, _quiet_loguru():
        oneshot(model=model, processor=tokenizer, dataset=_dataset(windows), recipe=recipe,
                max_seq_length=windows.shape[1], num_calibration_samples=windows.shape[0], batch_size=BATCH,
                shuffle_calibration_samples=False, output_dir=None, log_dir=None)
    return dense_state_dict(model)


@torch.no_grad()
def dense_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Model parameters with quantize-dequantize applied where llm-compressor attached a quantization scheme."""
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize

    state = {k: v for k, v in model.state_dict().items() if not k.endswith(_EXTRA_SUFFIXES)}
    for name, module in model.named_modules():
        scheme = getattr(module, "quantization_scheme", None)
        if scheme is None or scheme.weights is None or not hasattr(module, "weight_scale"):
            continue
        state[f"{name}.weight"] = fake_quantize(module.weight.data, module.weight_scale.data,
                                                module.weight_zero_point.data, scheme.weights)
    return state


@contextlib.contextmanager
def _quiet_loguru() -> Iterator[None]:
    """llm-compressor logs every layer at INFO through loguru; keep errors only during a run."""
    try:
        from loguru import logger
    except ImportError:  # pragma: no cover
        yield
        return
    import sys

    logger.remove()
    handler = logger.add(sys.stderr, level="ERROR")
    try:
        yield
    finally:
        logger.remove(handler)
        logger.add(sys.stderr, level="WARNING")


def autoround_compress(model: nn.Module, tokenizer: Any, settings: CompressSettings, windows: torch.Tensor, *,
                       iters: int) -> dict[str, torch.Tensor]:
    """auto-round's SignRound at ``settings.bits``/group size on CPU; it consumes ``model`` (returned weights qdq)."""
    from auto_round import AutoRound

    logging.getLogger("auto_round").setLevel(logging.WARNING)
    rounder = AutoRound(model, tokenizer=tokenizer, bits=settings.bits, group_size=settings.group_size,
                        sym=settings.is_symmetric, dataset=[row.unsqueeze(0) for row in windows], iters=iters,
                        nsamples=windows.shape[0], seqlen=windows.shape[1], batch_size=min(8, windows.shape[0]),
                        device_map="cpu", enable_torch_compile=False, seed=settings.seed, low_cpu_mem_usage=False)
    quantized, _ = rounder.quantize()
    return {k: v.detach().clone() for k, v in quantized.state_dict().items()}


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "llmcompressor", "compressed-tensors", "auto-round"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
