"""Recurrent cells: the ARMIN cell (paper Eqs. 1–6 and the released code's variant), the paper's LSTM, TARDIS's cell.

Every cell maps one time step: inputs (B, ·) → new recurrent state and the features passed to the output layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VARIANTS = ("code", "paper")


def orthogonal_(weight: Tensor) -> Tensor:
    """The released code's initialiser: orthogonal (SVD of a Gaussian), for rectangular matrices too."""
    with torch.no_grad():
        return nn.init.orthogonal_(weight)


def orthogonal_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    """A Linear layer with orthogonal weight and zero bias ("Initialisation")."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    orthogonal_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class PaperLSTMCell(nn.Module):
    """The paper's LSTM baseline: one orthogonal W over [x, h], gates i, j, f, o, forget bias +1.

    W is stored as its input part (with the bias) and its recurrent part, so that a sequence's input projections
    can be computed in one matrix product outside the time loop (``project_input``); the maths is W[x, h] + b.
    """

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        full = orthogonal_(torch.empty(4 * hidden, input_size + hidden))
        self.input_gates = nn.Linear(input_size, 4 * hidden)
        self.recurrent_gates = nn.Linear(hidden, 4 * hidden, bias=False)
        with torch.no_grad():
            self.input_gates.weight.copy_(full[:, :input_size])
            self.recurrent_gates.weight.copy_(full[:, input_size:])
            self.input_gates.bias.zero_()

    def project_input(self, x: Tensor) -> Tensor:
        """W_x x + b for any leading shape (hoisted out of the time loop)."""
        return self.input_gates(x)

    def forward(self, x_projected: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        i, j, f, o = (x_projected + self.recurrent_gates(h)).chunk(4, dim=-1)
        c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, c


class ArminCell(nn.Module):
    """The ARMIN recurrent memory-integrating cell (Eqs. 1–6); ``variant`` selects paper/patent or released code.

    ``paper``: Eqs. 1–6 — the recurrent state is the un-squashed h_t; the output is [o^h∘tanh(h_t), o^r∘tanh(r_t)].
    ``code``: h_t = tanh(h_{t-1}∘σ(f+1) + σ(i)∘tanh(j)) is both state and cell output; output [h_t∘σ(o), r_t∘σ(o_r)].
    The code variant splits its gate pre-activations in chunks of size h, so it needs memory width d ≤ h.
    """

    def __init__(self, input_size: int, hidden: int, width: int, variant: str = "code") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r}: use one of {VARIANTS}")
        self.hidden, self.width, self.variant = hidden, width, variant
        # W_ig (Eq. 1) and W_go (Eq. 4) act on [x, h, r]; their x columns (and biases) live in one input projection
        # so that a whole sequence is projected in one matrix product outside the time loop.
        w_ig = orthogonal_(torch.empty(hidden + width, input_size + hidden + width))
        w_go = orthogonal_(torch.empty(4 * hidden + width, input_size + hidden + width))
        self.input_projection = nn.Linear(input_size, hidden + width + 4 * hidden + width)
        self.integration_gates = nn.Linear(hidden + width, hidden + width, bias=False)  # Eq. 1, [h, r] columns
        self.gates = nn.Linear(hidden + width, 4 * hidden + width, bias=False)  # Eq. 4, [h^g, r^g] columns
        with torch.no_grad():
            self.input_projection.weight.copy_(torch.cat([w_ig[:, :input_size], w_go[:, :input_size]]))
            self.input_projection.bias.zero_()
            self.integration_gates.weight.copy_(w_ig[:, input_size:])
            self.gates.weight.copy_(w_go[:, input_size:])
        self.output_size = hidden + width

    def project_input(self, x: Tensor) -> Tensor:
        """The x parts of W_ig[x, h, r] + b_ig and W_go[x, h^g, r^g] + b_go, for any leading shape."""
        return self.input_projection(x)

    def hidden_integration_weight(self) -> Tensor:
        """The h_{t-1} columns of W_ig (Eq. 1), which a caller may fuse with other products of h_{t-1}."""
        return self.integration_gates.weight[:, :self.hidden]

    def integration(self, x_projected: Tensor, h: Tensor, r: Tensor, h_integration: Tensor | None = None) -> Tensor:
        """Eqs. 1–4: gate h_{t-1} and r_t by σ(W_ig[x, h, r]), then the pre-activations W_go[x, h^g, r^g] + b_go.

        ``h_integration`` is W_ig's h-part times h_{t-1} when the caller has computed it already.
        """
        split = self.hidden + self.width
        if h_integration is None:
            h_integration = F.linear(h, self.hidden_integration_weight())
        from_read = F.linear(r, self.integration_gates.weight[:, self.hidden:])
        x_integration, x_gates = x_projected.split([split, x_projected.shape[-1] - split], dim=-1)
        gates = torch.sigmoid(x_integration + h_integration + from_read)  # Eq. 1
        return x_gates + self.gates(gates * torch.cat([h, r], dim=-1))  # Eqs. 2–4

    def forward(self, x_projected: Tensor, h: Tensor, r: Tensor,
                h_integration: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step: (projected x_t, h_{t-1}, r_t) → (h_t, o_t) (Eqs. 5–6)."""
        hid = self.hidden
        pre = self.integration(x_projected, h, r, h_integration)
        # input gate, candidate, forget gate, output gates (the released code's order)
        i, j, f, o, o_r = pre.split([hid, hid, hid, hid, self.width], dim=-1)
        new_h = h * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j)  # Eq. 5, forget bias +1
        if self.variant == "code":
            new_h = torch.tanh(new_h)
            out = torch.cat([new_h * torch.sigmoid(o), r * torch.sigmoid(o_r)], dim=-1)
        else:
            out = torch.cat([torch.sigmoid(o) * torch.tanh(new_h), torch.sigmoid(o_r) * torch.tanh(r)], dim=-1)  # Eq. 6
        return new_h, out


class TardisCell(nn.Module):
    """TARDIS cell (Gulcehre et al. 2017): candidate tanh(W_x x + α·U_h h + β·U_r r) with gumbel-sigmoid gates α, β."""

    def __init__(self, input_size: int, hidden: int, width: int, gate_noise_samples: int = 2) -> None:
        super().__init__()
        self.hidden, self.gate_noise_samples = hidden, gate_noise_samples
        joint = input_size + hidden + width
        self.gates = orthogonal_linear(joint, 3 * hidden + 2)  # i, f, o and the two gate logits for α, β
        self.from_input = orthogonal_linear(input_size, hidden)
        self.from_hidden = orthogonal_linear(hidden, hidden, bias=False)
        self.from_read = orthogonal_linear(width, hidden, bias=False)
        self.output_size = hidden + width

    def forward(self, x: Tensor, h: Tensor, c: Tensor, r: Tensor, noise: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        from .addressing import gumbel_sigmoid

        pre = self.gates(torch.cat([x, h, r], dim=-1))
        i, f, o = pre[:, :-2].chunk(3, dim=-1)
        alpha, beta = gumbel_sigmoid(pre[:, -2:], noise=noise, samples=self.gate_noise_samples).chunk(2, dim=-1)
        candidate = torch.tanh(self.from_input(x) + alpha * self.from_hidden(h) + beta * self.from_read(r))
        c = c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * candidate
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, c, torch.cat([h, r], dim=-1)
