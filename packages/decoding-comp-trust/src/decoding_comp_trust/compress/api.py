"""``compress(model, method, ...)``: one entry point over the paper's compression grid, and ``save_compressed``.

Which implementation runs (``backend="auto"``), per method:

=========  =====================================================  ==========================================
method     library path (default)                                  in-package reference (``backend="reference"``)
=========  =====================================================  ==========================================
gptq       llm-compressor ``GPTQModifier``                         ``algorithms.gptq_quantize``
awq        llm-compressor ``AWQModifier`` (+ CPU pin-memory shim)  none
autoround  auto-round ``AutoRound`` (SignRound)                    none
rtn        none (data-free, trivial)                               ``algorithms.rtn_quantize``
sparsegpt  llm-compressor ``SparseGPTModifier``                    ``algorithms.sparsegpt_prune``
wanda      llm-compressor ``WandaPruningModifier``                 ``algorithms.wanda_prune``
magnitude  none (llm-compressor has no N:M magnitude masks)        ``algorithms.magnitude_prune``
=========  =====================================================  ==========================================
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from repro_shared.errors import ConfigError
from repro_shared.io import atomic_directory, atomic_write_json
from torch import nn

from . import algorithms as alg
from .calibration import CalibrationConfig, calibration_windows
from .checks import effective_bits, folder_size, pruning_report, quantization_report
from .library import autoround_compress, library_versions, llmcompressor_compress
from .sequential import InputStats, compress_sequentially, target_linears
from .settings import AWQ_GRIDS, CompressSettings

LIBRARY_METHODS = {"gptq": "llm-compressor GPTQModifier", "awq": "llm-compressor AWQModifier",
                   "autoround": "auto-round AutoRound (SignRound)", "sparsegpt": "llm-compressor SparseGPTModifier",
                   "wanda": "llm-compressor WandaPruningModifier"}
REFERENCE_METHODS = {"gptq": "decoding_comp_trust.compress.algorithms.gptq_quantize",
                     "rtn": "decoding_comp_trust.compress.algorithms.rtn_quantize",
                     "sparsegpt": "decoding_comp_trust.compress.algorithms.sparsegpt_prune",
                     "wanda": "decoding_comp_trust.compress.algorithms.wanda_prune",
                     "magnitude": "decoding_comp_trust.compress.algorithms.magnitude_prune"}
MANIFEST = "compression.json"


@dataclass
class CompressionResult:
    """The compressed model (a fresh dense model object) and its manifest (method, settings, checks, timing)."""

    model: nn.Module
    settings: CompressSettings
    manifest: dict[str, Any] = field(default_factory=dict)


def resolve_backend(settings: CompressSettings) -> str:
    """``library`` or ``reference`` for this method; an error when the asked-for path does not exist."""
    wanted = settings.backend
    if wanted == "auto":
        return "library" if settings.method in LIBRARY_METHODS else "reference"
    table = LIBRARY_METHODS if wanted == "library" else REFERENCE_METHODS
    if settings.method not in table:
        other = "reference" if wanted == "library" else "library"
        raise ConfigError(f"{settings.method} has no {wanted} implementation here", f"use backend={other} or auto")
    return wanted


def _check_shapes(settings: CompressSettings, linears: dict[str, nn.Linear]) -> None:
    step = settings.group_size if settings.is_quantization else settings.sparsity_pattern().m
    if not step:
        return
    bad = sorted({m.in_features for m in linears.values() if m.in_features % step})
    if bad:
        what = f"group_size={settings.group_size}" if settings.is_quantization else f"pattern {settings.pattern}"
        raise ConfigError(f"{what} does not divide the in-features {bad} of the model's decoder Linear layers",
                          "choose a group size / M dividing every in-feature size (64 for SmolLM2-135M)")


def compress(model: nn.Module, method: str, *, tokenizer: Any = None, bits: int | None = None,
             group_size: int | None = None, sparsity: float | None = None, pattern: str | None = None,
             symmetric: bool | None = None, calibration: CalibrationConfig | torch.Tensor | None = None,
             seed: int = 0, backend: str = "auto", data_dir: str | Path | None = None, autoround_iters: int = 200,
             base_model: str | None = None, awq_grid: str = "llm-compressor") -> CompressionResult:
    """Compress the decoder Linear layers of ``model`` (consumed: it is modified or moved) with one grid setting.

    ``calibration``: a ``CalibrationConfig`` (text source, template, n_samples, seq_len; resampled by ``seed``) or a
    ready ``n_samples × seq_len`` LongTensor of token ids; required by every method except rtn and magnitude.
    ``awq_grid``: the ratios AWQ searches, "llm-compressor" (k/19, the default) or "llm-awq" (k/20, the paper's).
    """
    if awq_grid not in AWQ_GRIDS:
        raise ConfigError(f"awq_grid={awq_grid!r}", f"use one of {', '.join(AWQ_GRIDS)}")
    settings = CompressSettings(method, bits=bits, group_size=group_size, sparsity=sparsity, pattern=pattern,
                                symmetric=symmetric, seed=seed, backend=backend)
    path = resolve_backend(settings)
    linears = target_linears(model)
    _check_shapes(settings, linears)
    windows = _windows(settings, calibration, tokenizer, data_dir)
    torch.manual_seed(seed)
    started = time.perf_counter()
    template = copy.deepcopy(model.config)
    if path == "library":
        state = _run_library(model, tokenizer, settings, windows, list(linears), autoround_iters, awq_grid)
        compressed = _fresh_model(template, state, next(iter(state.values())).dtype)
    else:
        _run_reference(model, settings, windows)
        compressed = model
    seconds = time.perf_counter() - started
    manifest = _manifest(compressed, settings, path, calibration, windows, base_model, seconds, autoround_iters)
    manifest["awq_grid"] = awq_grid if settings.method == "awq" and path == "library" else None
    return CompressionResult(compressed.eval(), settings, manifest)


def _windows(settings: CompressSettings, calibration: Any, tokenizer: Any, data_dir: Any) -> torch.Tensor | None:
    if not settings.needs_calibration:
        return None
    if calibration is None:
        raise ConfigError(f"{settings.method} needs calibration data",
                          "pass calibration=CalibrationConfig(source=...) or a tensor of token ids")
    if isinstance(calibration, torch.Tensor):
        if calibration.dim() != 2 or calibration.dtype != torch.long:
            raise ConfigError("calibration tensor must be n_samples x seq_len token ids (torch.long)")
        return calibration
    if tokenizer is None:
        raise ConfigError("text calibration needs the model's tokenizer", "pass tokenizer=...")
    return calibration_windows(calibration, tokenizer, seed=settings.seed, data_dir=data_dir)


def _run_library(model: nn.Module, tokenizer: Any, settings: CompressSettings, windows: torch.Tensor,
                 targets: list[str], iters: int, awq_grid: str = "llm-compressor") -> dict[str, torch.Tensor]:
    if tokenizer is None:
        raise ConfigError(f"the library path of {settings.method} needs the tokenizer", "pass tokenizer=...")
    if settings.method == "autoround":
        return autoround_compress(model, tokenizer, settings, windows, iters=iters)
    return llmcompressor_compress(model, tokenizer, settings, windows, targets, awq_grid)


def _fresh_model(config: Any, state: dict[str, torch.Tensor], dtype: torch.dtype) -> nn.Module:
    """A clean model object (no library hooks or quantization attributes) holding ``state``."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"compressed state does not fit the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model


@torch.no_grad()
def _run_reference(model: nn.Module, settings: CompressSettings, windows: torch.Tensor | None) -> None:
    method = settings.method
    if method in ("rtn", "magnitude"):
        for module in target_linears(model).values():
            w = module.weight.data
            module.weight.data = (alg.rtn_quantize(w, settings.quantizer()) if method == "rtn"
                                  else alg.magnitude_prune(w, settings.sparsity_pattern())).to(w.dtype)
        return
    assert windows is not None

    def one_linear(_name: str, module: nn.Linear, stats: InputStats) -> torch.Tensor:
        w = module.weight.data
        if method == "gptq":
            return alg.gptq_quantize(w, stats.hessian, settings.quantizer(), act_order=True)
        if method == "sparsegpt":
            return alg.sparsegpt_prune(w, stats.hessian, settings.sparsity_pattern())
        return alg.wanda_prune(w, stats.input_norms, settings.sparsity_pattern())

    compress_sequentially(model, windows, one_linear, want_hessian=method != "wanda", desc=f"{method} blocks")


def _manifest(model: nn.Module, settings: CompressSettings, path: str, calibration: Any,
              windows: torch.Tensor | None, base_model: str | None, seconds: float, iters: int) -> dict[str, Any]:
    linears = target_linears(model)
    if settings.is_quantization:
        checks = quantization_report(linears, settings.bits, settings.group_size)
        measured_sparsity = pruning_report(linears, alg.SparsityPattern(0, 0, 0.0))["sparsity"]
        checks_ok = checks["distinct_ok"]
    else:
        checks = pruning_report(linears, settings.sparsity_pattern())
        measured_sparsity = checks.pop("sparsity")
        checks_ok = checks["pattern_ok"]
    if isinstance(calibration, CalibrationConfig):
        calib = {**calibration.describe(), "seed": settings.seed}
    elif windows is not None:
        calib = {"source": "token tensor", "n_samples": windows.shape[0], "seq_len": windows.shape[1]}
    else:
        calib = None
    return {
        "setting": settings.name(),
        "method": settings.method,
        "bits": settings.bits,
        "group_size": settings.group_size,
        "symmetric": settings.is_symmetric if settings.is_quantization else None,
        "sparsity": settings.sparsity_pattern().sparsity if not settings.is_quantization else None,
        "pattern": settings.sparsity_pattern().label() if not settings.is_quantization else None,
        "seed": settings.seed if settings.needs_calibration else None,
        "calibration": calib,
        "base_model": base_model or getattr(model.config, "_name_or_path", None) or None,
        "implementation": (LIBRARY_METHODS if path == "library" else REFERENCE_METHODS)[settings.method],
        "backend": path,
        "autoround_iters": iters if settings.method == "autoround" else None,
        "target_layers": len(linears),
        "measured_sparsity": measured_sparsity,
        "effective_bits_per_weight": effective_bits(settings),
        "checks": checks,
        "checks_ok": checks_ok,
        "compress_seconds": round(seconds, 3),
        "library_versions": library_versions(),
    }


STORAGES = ("dense", "packed")


def save_compressed(result: CompressionResult, tokenizer: Any, out_dir: str | Path, *, dtype: str = "bfloat16",
                    storage: str = "dense", extra: dict[str, Any] | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """``save_pretrained`` the model + tokenizer + ``compression.json`` into a temporary sibling folder renamed at the
    end (an interrupted save leaves no model folder).

    ``storage="dense"``: the fake-quantized / masked weights in ``dtype`` (as the paper stored its AWQ models).
    ``storage="packed"`` (quantized models only): integers + group scales in the compressed-tensors format
    (``packed.pack_model``; scales in ``dtype``); it packs ``result.model`` in place, so the result is consumed.
    Both reload with plain ``AutoModelForCausalLM.from_pretrained`` on CPU.
    """
    if storage not in STORAGES:
        raise ConfigError(f"storage={storage!r}", f"use one of {', '.join(STORAGES)}")
    target_dtype = getattr(torch, dtype)
    compressor = None
    if storage == "packed":
        from .packed import PACKED_FORMATS, pack_model

        compressor, deviation = pack_model(result.model, target_linears(result.model), result.settings)
        description = (f"compressed-tensors {PACKED_FORMATS[result.settings.is_symmetric]} "
                       f"({result.settings.bits}-bit integers, {dtype} group scales)")
        extra = {"packed_grid_deviation_steps": round(deviation, 4), **(extra or {})}
    else:
        description = f"dense save_pretrained ({dtype}), fake-quantized/masked weights"
    model = result.model.to(target_dtype)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        if compressor is not None:
            compressor.update_config(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        manifest = {**result.manifest, "storage": description, "storage_kind": storage, "dtype": dtype,
                    "size_bytes": folder_size(tmp), **(extra or {})}
        atomic_write_json(Path(tmp) / MANIFEST, manifest)
    return manifest
