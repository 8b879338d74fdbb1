"""In-package reference implementations of the paper's compressors, one function per algorithm (paper §2, Table 1).

They work on one weight matrix ``W`` (out_features × in_features) and calibration statistics of its inputs:
``H = 2/n Σ x xᵀ`` (the layer-wise Hessian of GPTQ and SparseGPT) or the per-input-channel norms ``‖X_j‖₂`` (Wanda).
Layer-sequential application over a whole model is in ``sequential.py``. These are the oracles for the library paths
(llm-compressor, auto-round) and the fallback where a library does not run (magnitude N:M, RTN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SUPPORTED_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class GroupQuantizer:
    """Uniform integer grid of AutoGPTQ's ``Quantizer``: 2^bits levels per group, symmetric or with a zero point."""

    bits: int
    group_size: int
    symmetric: bool = True

    @property
    def max_level(self) -> int:
        return 2**self.bits - 1

    def params(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row (scale, zero) for the columns of ``w`` (rows × cols), min-max over the row, grid including 0."""
        w_min = torch.clamp(w.min(dim=1).values, max=0)
        w_max = torch.clamp(w.max(dim=1).values, min=0)
        if self.symmetric:
            w_max = torch.maximum(w_min.abs(), w_max)
            w_min = -w_max
        flat = (w_min == 0) & (w_max == 0)  # an all-zero row: any scale works; avoid 0/0
        w_min, w_max = torch.where(flat, -1.0, w_min), torch.where(flat, 1.0, w_max)
        scale = (w_max - w_min) / self.max_level
        zero = (torch.full_like(scale, (self.max_level + 1) / 2) if self.symmetric
                else torch.round(-w_min / scale))
        return scale.unsqueeze(1), zero.unsqueeze(1)

    def qdq(self, w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
        """Quantize then dequantize ("fake" quantization): the dense values the stored model carries."""
        q = torch.clamp(torch.round(w / scale) + zero, 0, self.max_level)
        return scale * (q - zero)


def rtn_quantize(weight: torch.Tensor, quantizer: GroupQuantizer) -> torch.Tensor:
    """Round-to-nearest group quantization (the data-free baseline): each group of columns on its own min-max grid."""
    w = weight.float()
    out = torch.empty_like(w)
    for start in range(0, w.shape[1], quantizer.group_size):
        block = w[:, start:start + quantizer.group_size]
        scale, zero = quantizer.params(block)
        out[:, start:start + quantizer.group_size] = quantizer.qdq(block, scale, zero)
    return out.to(weight.dtype)


def _inverse_hessian_factor(weight: torch.Tensor, hessian: torch.Tensor, damp: float) -> tuple[torch.Tensor, ...]:
    """Dead inputs zeroed, damping ``damp·mean(diag H)`` added, upper Cholesky factor of H⁻¹ (GPTQ Alg. 1, l. 1-3)."""
    w = weight.clone().float()
    h = hessian.clone().float()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += damp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    h_inv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return w, torch.linalg.cholesky(h_inv, upper=True)


def gptq_quantize(weight: torch.Tensor, hessian: torch.Tensor, quantizer: GroupQuantizer, *, damp: float = 0.01,
                  block_size: int = 128, act_order: bool = False) -> torch.Tensor:
    """GPTQ (Frantar et al. 2023, Alg. 1): column-wise quantization with OBS error feedback through H⁻¹.

    ``act_order`` sweeps columns by decreasing diag(H) (AutoGPTQ's ``desc_act``) with group grids fixed beforehand
    on the original column order (llm-compressor's ``actorder="weight"``), so groups stay contiguous.
    """
    w, h_inv = _inverse_hessian_factor(weight, hessian, damp)
    cols = w.shape[1]
    perm = torch.argsort(torch.diag(hessian), descending=True) if act_order else torch.arange(cols)
    if act_order:
        group_params = [quantizer.params(w[:, s:s + quantizer.group_size])
                        for s in range(0, cols, quantizer.group_size)]
        w_h, h = w[:, perm], hessian.clone().float()[perm][:, perm]
        w_h, h_inv = _inverse_hessian_factor(w_h, h, damp)
        w = w_h
    q_out = torch.zeros_like(w)
    scale = zero = None
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1, h1 = w[:, i1:i2].clone(), h_inv[i1:i2, i1:i2]
        err1 = torch.zeros_like(w1)
        for i in range(i2 - i1):
            column = int(perm[i1 + i])
            if act_order:
                scale, zero = group_params[column // quantizer.group_size]
            elif column % quantizer.group_size == 0:
                # a new group's grid, as AutoGPTQ: from W updated by earlier blocks (not yet by this block's sweep)
                scale, zero = quantizer.params(w[:, column:column + quantizer.group_size])
            q = quantizer.qdq(w1[:, i:i + 1], scale, zero).squeeze(1)
            q_out[:, i1 + i] = q
            err = (w1[:, i] - q) / h1[i, i]
            w1[:, i:] -= err.unsqueeze(1) @ h1[i, i:].unsqueeze(0)
            err1[:, i] = err
        w[:, i2:] -= err1 @ h_inv[i1:i2, i2:]
    if act_order:
        q_out = q_out[:, torch.argsort(perm)]
    return q_out.to(weight.dtype)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep mask with exactly ``n`` kept (largest-score) entries in every group of ``m`` consecutive input columns."""
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, torch.topk(groups, n, dim=2, largest=True).indices, True)
    return keep.reshape(rows, cols)


def per_row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep mask dropping the ``sparsity`` fraction of smallest scores in every output row (Wanda, unstructured)."""
    pruned = int(scores.shape[1] * sparsity)
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep.scatter_(1, torch.sort(scores, dim=1, stable=True).indices[:, :pruned], False)
    return keep


def per_layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep mask dropping the ``sparsity`` fraction of smallest scores of the whole matrix (magnitude, unstructured)."""
    pruned = int(scores.numel() * sparsity)
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    keep[torch.sort(scores.flatten(), stable=True).indices[:pruned]] = False
    return keep.reshape(scores.shape)


@dataclass(frozen=True)
class SparsityPattern:
    """50% N:M (``n`` kept of every ``m`` inputs) or unstructured (``n = m = 0``) at ``sparsity``."""

    n: int = 0
    m: int = 0
    sparsity: float = 0.5

    @property
    def structured(self) -> bool:
        return self.m > 0

    def label(self) -> str:
        return f"{self.n}:{self.m}" if self.structured else "unstructured"


def _mask_from_scores(scores: torch.Tensor, pattern: SparsityPattern, *, per_row: bool) -> torch.Tensor:
    if pattern.structured:
        return nm_mask(scores, pattern.n, pattern.m)
    return per_row_mask(scores, pattern.sparsity) if per_row else per_layer_mask(scores, pattern.sparsity)


def magnitude_prune(weight: torch.Tensor, pattern: SparsityPattern) -> torch.Tensor:
    """Magnitude pruning (wanda's ``prune_magnitude``): drop the smallest |W| per N:M group or per layer."""
    return weight * _mask_from_scores(weight.abs().float(), pattern, per_row=False)


def wanda_scores(weight: torch.Tensor, input_norms: torch.Tensor) -> torch.Tensor:
    """Wanda's importance (Sun et al. 2024, Eq. 1): S_ij = |W_ij| · ‖X_j‖₂ over the calibration tokens."""
    return weight.abs().float() * input_norms.float().reshape(1, -1)


def wanda_prune(weight: torch.Tensor, input_norms: torch.Tensor, pattern: SparsityPattern) -> torch.Tensor:
    """Wanda: prune the lowest |W|·‖X‖ per output row (unstructured) or per N:M group; no weight update."""
    return weight * _mask_from_scores(wanda_scores(weight, input_norms), pattern, per_row=True)


def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, pattern: SparsityPattern, *, damp: float = 0.01,
                    block_size: int = 128) -> torch.Tensor:
    """SparseGPT (Frantar & Alistarh 2023, Alg. 1, as in wanda's ``sparsegpt.py``): OBS mask + error feedback.

    Saliency w²/[H⁻¹]²_jj chooses the mask (per block of ``block_size`` columns when unstructured, per N:M group
    when structured); the remaining weights absorb each pruned weight's error through the Cholesky factor of H⁻¹.
    """
    w, h_inv = _inverse_hessian_factor(weight, hessian, damp)
    cols = w.shape[1]
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1, h1 = w[:, i1:i2].clone(), h_inv[i1:i2, i1:i2]
        q1, err1 = torch.zeros_like(w1), torch.zeros_like(w1)
        diag = torch.diag(h1).reshape(1, -1)
        if pattern.structured:
            prune = torch.zeros_like(w1, dtype=torch.bool)
        else:
            saliency = w1**2 / diag**2
            threshold = torch.sort(saliency.flatten())[0][int(saliency.numel() * pattern.sparsity)]
            prune = saliency <= threshold
        for i in range(i2 - i1):
            if pattern.structured and i % pattern.m == 0:
                saliency = w1[:, i:i + pattern.m] ** 2 / diag[:, i:i + pattern.m] ** 2
                drop = torch.topk(saliency, pattern.m - pattern.n, dim=1, largest=False).indices
                prune.scatter_(1, i + drop, True)
            q = w1[:, i].clone()
            q[prune[:, i]] = 0
            q1[:, i] = q
            err = (w1[:, i] - q) / h1[i, i]
            w1[:, i:] -= err.unsqueeze(1) @ h1[i, i:].unsqueeze(0)
            err1[:, i] = err
        w[:, i1:i2] = q1
        w[:, i2:] -= err1 @ h_inv[i1:i2, i2:]
    return w.to(weight.dtype)
