"""Packed storage: a fake-quantized model rewritten in the `compressed-tensors` format (integers + group scales).

The compressors keep their scales only while they run (llm-compressor attaches them to the modules, auto-round to its
own wrappers, RTN/GPTQ in-package never store them), so instead of one saver per library the integer grid is
recovered from the fake-quantized weights themselves: in every (row, group) the values are ``s·(q − z)`` with integer
``q``, so ``s`` is the largest step that makes every value an integer multiple within the range of ``bits``. The
recovered grid is verified (every weight reproduced to twice its dtype's rounding or 2% of a step; the largest move
is returned) before anything is written; `compressed-tensors` (the vLLM
project's format library) packs and writes it, and plain `transformers` decompresses it on load, on CPU.

Formats (measured with compressed-tensors 0.20.1 and transformers 5.24):

* symmetric grids (GPTQ, AutoRound): ``pack-quantized``, ``bits`` per weight packed into int32;
* asymmetric grids (AWQ, RTN): ``naive-quantized``, one int8 per weight — an asymmetric ``pack-quantized`` checkpoint
  is written but does not load back (transformers expects the unpacked zero-point shape: a size mismatch);
* pruning: no packed format (compressed-tensors 0.20 dropped its sparse bitmask formats), dense storage only.
"""

from __future__ import annotations

import torch
from repro_shared.errors import ConfigError
from torch import nn

from .settings import CompressSettings

PACKED_FORMATS = {True: "pack-quantized", False: "naive-quantized"}  # by `symmetric`


def _int_range(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1  # compressed-tensors' signed range, symmetric or not


@torch.no_grad()
def group_grid(weight: torch.Tensor, bits: int, group_size: int,
               symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (row, group) scale ``s`` and integer zero point ``z`` with ``weight == s·(q − z)``, ``q`` in range.

    Raises ``ValueError`` if some group is not on any grid of ``bits`` (the weights were not fake-quantized so).
    """
    rows, cols = weight.shape
    groups = weight.reshape(rows, cols // group_size, group_size).double()
    low, high = _int_range(bits)
    # the smallest step between values is s times a whole number k, 1 <= k < 2^bits: try s = step / k
    spread = groups.abs() if symmetric else groups - groups.amin(-1, keepdim=True)
    step = spread.masked_fill(spread == 0, float("inf")).amin(-1)
    step = torch.where(torch.isinf(step), torch.ones_like(step), step)  # an all-equal group: any scale works
    # the values carry the rounding of their dtype (auto-round returns bf16), so a candidate is refitted to all values
    # of its group (least squares, w = s·n) and accepted when every value lies within twice that rounding, or 2% of a
    # step, of its grid point (a wrong grid is off by up to half a step; bf16 cannot resolve 8-bit grids exactly)
    rounding = torch.finfo(weight.dtype).eps * (8 if weight.dtype == torch.float32 else 1) * groups.abs() + 1e-12
    scale = torch.full_like(step, float("nan"))
    ints = torch.zeros_like(groups)
    for k in range(1, 2 ** bits):
        open_ = torch.isnan(scale)
        if not open_.any():
            break
        values = groups[open_]
        candidate_ints = (values / (step[open_] / k).unsqueeze(-1)).round()
        norm = (candidate_ints * candidate_ints).sum(-1)
        refit = (values * candidate_ints).sum(-1) / norm.clamp_min(1)
        refit = torch.where(norm > 0, refit, step[open_])
        residual = (values - refit.unsqueeze(-1) * candidate_ints).abs()
        tolerance = torch.maximum(rounding[open_], 0.02 * refit.abs().unsqueeze(-1))
        fits = (residual <= tolerance).all(-1) & (candidate_ints.amax(-1) - candidate_ints.amin(-1) <= high - low)
        flip = torch.zeros_like(fits)
        if symmetric:  # [-2^(b-1), 2^(b-1) - 1]; a grid reaching +2^(b-1) fits with a negative scale (auto-round)
            upright = (candidate_ints.amax(-1) <= high) & (candidate_ints.amin(-1) >= low)
            flip = ~upright & (-candidate_ints.amin(-1) <= high) & (-candidate_ints.amax(-1) >= low)
            fits &= upright | flip
        refit = torch.where(flip, -refit, refit)
        scale[open_] = torch.where(fits, refit, scale[open_])
        ints[open_] = torch.where(fits.unsqueeze(-1), torch.where(flip.unsqueeze(-1), -candidate_ints, candidate_ints),
                                  ints[open_])
    unresolved = torch.isnan(scale)
    if unresolved.any() and torch.finfo(weight.dtype).bits > 16:
        raise ValueError(f"{int(unresolved.sum())} groups are not on a {bits}-bit grid")
    if unresolved.any():  # 16-bit values cannot resolve every level of a fine grid: snap these groups to min-max
        values = groups[unresolved]
        low_v, high_v = values.amin(-1), values.amax(-1)
        fallback = (torch.maximum(low_v.abs(), high_v.abs()) / high if symmetric
                    else (high_v - low_v) / (high - low)).clamp_min(1e-12)
        scale[unresolved] = fallback
        ints[unresolved] = (values / fallback.unsqueeze(-1)).round()  # within range by construction of the scale
    zero = torch.zeros_like(scale) if symmetric else (low - ints.amin(-1)).clamp(low, high)
    return scale, zero


def grid_deviation(weight: torch.Tensor, scale: torch.Tensor, group_size: int) -> float:
    """Largest |w − s·n| over all weights, in units of their group's step (0 for exactly fake-quantized weights)."""
    groups = weight.reshape(weight.shape[0], -1, group_size).double()
    ints = (groups / scale.unsqueeze(-1)).round()
    return float(((groups - scale.unsqueeze(-1) * ints).abs() / scale.abs().unsqueeze(-1)).max())


def pack_model(model: nn.Module, linears: dict[str, nn.Linear], settings: CompressSettings) -> tuple[object, float]:
    """Attach the recovered grids as a compressed-tensors scheme and pack ``model`` in place; the ModelCompressor and
    the largest distance of a weight from its grid point (in steps: what packing snapped away)."""
    from compressed_tensors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        QuantizationStatus,
        apply_quantization_config,
    )

    if not settings.is_quantization:
        raise ConfigError(f"{settings.name()}: packed storage is offered for quantized models only",
                          "save pruned models with storage='dense' (compressed-tensors 0.20 has no sparse format)")
    symmetric = settings.is_symmetric
    args = QuantizationArgs(num_bits=settings.bits, type="int", symmetric=symmetric, strategy="group",
                            group_size=settings.group_size)
    targets = ["re:^" + name.replace(".", r"\.") + "$" for name in linears]
    config = QuantizationConfig(config_groups={"group_0": QuantizationScheme(targets=targets, weights=args)},
                                quantization_status=QuantizationStatus.FROZEN)
    grids = {}
    for name, module in linears.items():  # every grid first: a failure leaves the model untouched
        try:
            grids[name] = group_grid(module.weight.data, settings.bits, settings.group_size, symmetric)
        except ValueError as error:
            raise ConfigError(f"{settings.name()}: layer {name} cannot be packed ({error})",
                              "pack the model as returned by compress(), before any dtype conversion") from error
    deviation = max(grid_deviation(module.weight.data, grids[name][0], settings.group_size)
                    for name, module in linears.items())
    apply_quantization_config(model, config, show_progress=False)
    for name, module in linears.items():
        scale, zero = grids[name]
        module.weight_scale.data = scale.to(module.weight_scale.dtype)
        module.weight_zero_point.data = zero.to(module.weight_zero_point.dtype)
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=PACKED_FORMATS[symmetric])
    compressor.compress_model(model)
    return compressor, deviation
