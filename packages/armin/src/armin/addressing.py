"""Memory addressing: the straight-through Gumbel-softmax read (Fig. 1a), the ARMIN write (Fig. 1c), gumbel-sigmoid.

All functions are batched over the leading dimension and do no Python-level work per memory slot.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_gumbel(shape: torch.Size, like: Tensor, eps: float = 1e-10) -> Tensor:
    """Standard Gumbel noise g = -log(-log U), U ~ U(0, 1)."""
    uniform = torch.rand(shape, device=like.device, dtype=like.dtype)
    return -torch.log(-torch.log(uniform + eps) + eps)


class _StraightThroughOneHot(torch.autograd.Function):
    """one-hot(argmax z) forward; the gradient of softmax(z·τ) backward (one autograd node instead of five)."""

    @staticmethod
    def forward(ctx, perturbed: Tensor, inverse_temperature: float) -> Tensor:
        soft = torch.softmax(perturbed * inverse_temperature, dim=-1)
        ctx.save_for_backward(soft)
        ctx.inverse_temperature = inverse_temperature
        index = perturbed.argmax(dim=-1, keepdim=True)  # argmax is invariant to τ > 0
        return torch.zeros_like(soft).scatter_(-1, index, 1.0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (soft,) = ctx.saved_tensors
        # softmax Jacobian-vector product: τ·s∘(g − ⟨g, s⟩)
        return ctx.inverse_temperature * soft * (grad - (grad * soft).sum(-1, keepdim=True)), None


def gumbel_softmax_sample(logits: Tensor, inverse_temperature: float, gumbel: Tensor | None) -> Tensor:
    """The soft relaxed sample softmax((logits + g)·τ) whose gradient the straight-through read uses."""
    perturbed = logits if gumbel is None else logits + gumbel
    return torch.softmax(perturbed * inverse_temperature, dim=-1)


def st_gumbel_softmax(logits: Tensor, inverse_temperature: float, noise: bool = True,
                      gumbel: Tensor | None = None) -> Tensor:
    """Fig. 1a: hard one-hot sample in the forward pass, gradient of softmax((logits + g)·τ) backward.

    The result equals one-hot(argmax(logits + g)) in value and has ``gumbel_softmax_sample``'s gradient (as the
    released code's ``onehot − stopgrad(y) + y``). ``inverse_temperature`` τ multiplies the perturbed logits (the
    paper anneals it upward). ``gumbel`` passes noise drawn in advance (a whole sequence's at once); otherwise
    ``noise`` draws it here.
    """
    if gumbel is None and noise:
        gumbel = sample_gumbel(logits.shape, logits)
    perturbed = logits if gumbel is None else logits + gumbel
    return _StraightThroughOneHot.apply(perturbed, inverse_temperature)


def gumbel_sigmoid(logits: Tensor, inverse_temperature: float = 10.0 / 3.0, noise: bool = True,
                   samples: int = 2) -> Tensor:
    """TARDIS gates (Gulcehre et al. 2017): σ((z + g₁ − g₂)·τ), a relaxed Bernoulli sample (soft).

    ``samples=1`` is the released code's σ((z + g)·τ) with one Gumbel sample (a biased relaxation).
    """
    if noise:
        logits = logits + sample_gumbel(logits.shape, logits)
        if samples == 2:
            logits = logits - sample_gumbel(logits.shape, logits)
    return torch.sigmoid(logits * inverse_temperature)


def read_memory(weights: Tensor, memory: Tensor) -> Tensor:
    """r_t = Σ_i w_t,i M_i for weights (B, N) and memory (B, N, d)."""
    return torch.bmm(weights.unsqueeze(1), memory).squeeze(1)


def write_weights(read_weights: Tensor, writes_so_far: int, slots: int, fill_order: Tensor) -> Tensor:
    """Fig. 1c: while memory has empty slots write to the next one in order, then overwrite the slot just read.

    ``fill_order`` is the (N, N) identity; the overwrite index is detached from the graph as in the released code.
    """
    if writes_so_far < slots:
        return fill_order[writes_so_far].expand_as(read_weights)
    return read_weights.detach()


def write_memory(memory: Tensor, weights: Tensor, word: Tensor) -> Tensor:
    """M ← w ⊗ v + M ⊙ (1 − w): replace the addressed slot(s) by the word v (B, d); one lerp instead of four ops."""
    return torch.lerp(memory, word.unsqueeze(1).expand_as(memory), weights.unsqueeze(-1))


def tau_schedule(step: int, start: float, increment: float, every: int, maximum: float) -> float:
    """Inverse temperature τ, raised by ``increment`` every ``every`` iterations up to ``maximum``."""
    return float(min(maximum, start + increment * (step // every)))
