"""Layer-sequential compression of a decoder-only model (the wanda / SparseGPT / GPTQ driver, paper §2).

Calibration windows run up to the first decoder block; then block by block: the inputs of every Linear in the block
are collected (Hessian ``H = 2/n Σ x xᵀ`` and input norms ``‖X_j‖₂``), each Linear is compressed, and the block is run
again so that the next block sees the compressed block's outputs. Only Linear layers inside decoder blocks are
touched (embeddings and lm_head stay dense), as in wanda, AutoGPTQ and llm-awq.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from repro_shared.errors import ConfigError
from repro_shared.logging import progress
from torch import nn


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks (``model.model.layers`` for Llama-family models, else the longest ModuleList)."""
    inner = getattr(model, "model", None)
    if isinstance(getattr(inner, "layers", None), nn.ModuleList):
        return inner.layers
    lists = [module for module in model.modules() if isinstance(module, nn.ModuleList)]
    if not lists:
        raise ConfigError(f"{type(model).__name__} has no decoder blocks (no nn.ModuleList of layers)",
                          "pass a decoder-only causal LM such as a Llama-architecture model")
    return max(lists, key=len)


def target_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear inside a decoder block, by its full module name; an error if there is none."""
    blocks = decoder_blocks(model)
    block_names = {id(block) for block in blocks}
    names = {id(module): name for name, module in model.named_modules()}
    found = {f"{names[id(block)]}.{name}": module for block in blocks for name, module in block.named_modules()
             if isinstance(module, nn.Linear)}
    if not found or not block_names:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear layers inside its decoder blocks",
                          "compression targets decoder Linear layers only (not embeddings or lm_head)")
    return found


@dataclass
class InputStats:
    """Running statistics of one Linear's inputs over the calibration tokens."""

    hessian: torch.Tensor | None = None  # 2/n Σ x xᵀ (GPTQ/SparseGPT)
    sq_norms: torch.Tensor | None = None  # Σ x_j² (Wanda: ‖X_j‖₂ = sqrt)
    tokens: int = 0
    want_hessian: bool = True

    def add(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).float()
        count = x.shape[0]
        if self.sq_norms is None:
            self.sq_norms = torch.zeros(x.shape[1])
        self.sq_norms += (x**2).sum(dim=0)
        if self.want_hessian:
            if self.hessian is None:
                self.hessian = torch.zeros(x.shape[1], x.shape[1])
            # running mean as in GPTQ's add_batch: H = 2/n Σ x xᵀ
            self.hessian *= self.tokens / (self.tokens + count)
            x = (2 / (self.tokens + count)) ** 0.5 * x
            self.hessian += x.T @ x
        self.tokens += count

    @property
    def input_norms(self) -> torch.Tensor:
        assert self.sq_norms is not None
        return self.sq_norms.sqrt()


class _Stop(Exception):
    pass


@dataclass
class BlockInputs:
    """The hidden states entering a block, one tensor per batch of windows, with each batch's other forward kwargs."""

    hidden: list[torch.Tensor] = field(default_factory=list)
    kwargs: list[dict[str, Any]] = field(default_factory=list)


BATCH = 16  # windows per forward pass (per-call overhead dominates on a CPU)


def _first_block_inputs(model: nn.Module, windows: torch.Tensor) -> BlockInputs:
    captured = BlockInputs()
    first = decoder_blocks(model)[0]

    def catch(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs.pop("hidden_states")
        captured.hidden.append(hidden.detach())
        captured.kwargs.append({k: v for k, v in kwargs.items() if k != "hidden_states"})
        raise _Stop

    handle = first.register_forward_pre_hook(catch, with_kwargs=True)
    try:
        for batch in windows.split(BATCH):
            with contextlib.suppress(_Stop):
                model(batch, use_cache=False)
    finally:
        handle.remove()
    return captured


def _run_block(block: nn.Module, inputs: BlockInputs) -> list[torch.Tensor]:
    outputs = []
    for hidden, kwargs in zip(inputs.hidden, inputs.kwargs, strict=True):
        out = block(hidden, **kwargs)
        outputs.append((out[0] if isinstance(out, tuple) else out).detach())
    return outputs


def _collector(stats: InputStats) -> Callable[..., None]:
    def hook(_module: nn.Module, args: tuple, _output: torch.Tensor) -> None:
        stats.add(args[0].detach())

    return hook


CompressLinear = Callable[[str, nn.Linear, InputStats], torch.Tensor]


@torch.no_grad()
def compress_sequentially(model: nn.Module, windows: torch.Tensor, compress_linear: CompressLinear, *,
                          want_hessian: bool = True, desc: str = "blocks") -> None:
    """Replace every decoder Linear's weight by ``compress_linear(name, linear, stats)``, block after block."""
    linears = target_linears(model)
    names = {id(module): name for name, module in linears.items()}
    inputs = _first_block_inputs(model, windows)
    for block in progress(decoder_blocks(model), desc=desc):
        members = [m for m in block.modules() if isinstance(m, nn.Linear) and id(m) in names]
        stats = {id(m): InputStats(want_hessian=want_hessian) for m in members}
        handles = [m.register_forward_hook(_collector(stats[id(m)])) for m in members]
        try:
            _run_block(block, inputs)
        finally:
            for handle in handles:
                handle.remove()
        for module in members:
            module.weight.data = compress_linear(names[id(module)], module, stats[id(module)]).to(module.weight.dtype)
        inputs.hidden = _run_block(block, inputs)
