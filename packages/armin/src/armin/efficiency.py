"""Efficiency measurements as the paper argues them: parameters, analytic multiply-adds per step, time per training
and inference step, and activation memory as a function of sequence length."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .models import ModelConfig, SequenceModel, tardis_inner_size


def matmul_macs_per_step(config: ModelConfig, input_size: int, output_size: int) -> int:
    """Analytic multiply-adds of the matrix products of one time step for one sequence.

    Counts every Linear layer, the memory read Σ w_i M_i (N·d) and NTM's content similarity (N·d per head);
    element-wise work (gates, the one-hot write, shifts) is O(h + N·d) and left out, as torch's FLOP counter does.
    """
    x, y, h, d, n = input_size, output_size, config.hidden, config.width, config.slots
    word = (x + h) * d if config.write_input else h * d
    if config.kind in ("lstm", "torch-lstm"):
        return (x + h) * 4 * h + h * y
    if config.kind == "armin":
        cell = (x + h + d) * (h + d) + (x + h + d) * (4 * h + d)  # Eqs. 1 and 4
        return (x + h) * n + n * d + cell + word + (h + d) * y  # addressing, read, cell, write word, output
    if config.kind in ("tardis", "awta"):
        inner, keys = tardis_inner_size(config), config.key_size
        addressing = (x + h) * inner + n * (keys + d + 1) * inner + n * inner  # W[x,c], W[k_i], W[M_i], W[û_i], a
        if config.kind == "tardis":
            cell = (x + h + d) * (3 * h + 2) + x * h + h * h + d * h
        else:
            cell = (x + h + d) * (h + d) + (x + h + d) * (4 * h + d)
        out = (h + d) * y
        return addressing + n * d + cell + word + out
    if config.kind == "ntm":
        controller = (x + d + h) * 4 * h
        heads = h * (d + 6) + h * (3 * d + 6)
        return controller + heads + 2 * n * d + n * d + (h + d) * y  # 2 similarities, 1 read, output
    raise ValueError(config.kind)


def measured_matmul_macs_per_step(model: nn.Module, input_size: int, steps: int = 4) -> float:
    """Multiply-adds per step and sequence counted by ``torch.utils.flop_counter`` (one sequence, forward only).

    The difference between a 2·steps and a steps long sequence, so per-sequence work (initial products) cancels.
    """
    from torch.utils.flop_counter import FlopCounterMode

    def total(length: int) -> float:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(length, 1, input_size))
        return counter.get_total_flops() / 2

    return (total(2 * steps) - total(steps)) / steps


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_step(model: SequenceModel, inputs: Tensor, targets: Tensor, train: bool, repeats: int = 3) -> float:
    """Median wall-clock seconds of one BCE training step (forward + backward) or one inference forward pass."""
    times = []
    for _ in range(repeats + 1):  # the first call warms up and is dropped
        model.zero_grad(set_to_none=True)
        _synchronize(inputs.device)
        start = time.perf_counter()
        if train:
            logits, _ = model(inputs)
            F.binary_cross_entropy_with_logits(logits[-targets.shape[0]:], targets).backward()
        else:
            with torch.no_grad():
                model(inputs)
        _synchronize(inputs.device)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def training_memory_bytes(model: SequenceModel, inputs: Tensor) -> int:
    """Bytes held for the backward pass of one forward over ``inputs`` (distinct storages saved by autograd).

    This is the part of training memory that grows with the (truncated) sequence length; on CUDA
    ``peak_cuda_bytes`` measures the allocator's peak as well.
    """
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits, _ = model(inputs)
    del logits
    return sum(storages.values())


def peak_cuda_bytes(model: SequenceModel, inputs: Tensor, targets: Tensor) -> int:
    """Peak allocated CUDA memory of one training step."""
    torch.cuda.reset_peak_memory_stats(inputs.device)
    logits, _ = model(inputs)
    F.binary_cross_entropy_with_logits(logits[-targets.shape[0]:], targets).backward()
    _synchronize(inputs.device)
    return torch.cuda.max_memory_allocated(inputs.device)
