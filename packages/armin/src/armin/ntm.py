"""Neural Turing Machine baseline (Graves et al. 2014): LSTM controller, one read and one write head,
content addressing → interpolation → 3-way circular shift → sharpening."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cells import orthogonal_linear

if TYPE_CHECKING:
    from .models import ModelConfig, State


def ntm_address(key: Tensor, strength: Tensor, gate: Tensor, shift: Tensor, sharpen: Tensor,
                memory: Tensor, previous: Tensor) -> Tensor:
    """NTM addressing (Graves et al. 2014, Eqs. 5–9) for keys (B, d), memory (B, N, d), previous weights (B, N)."""
    similarity = torch.bmm(memory, key.unsqueeze(-1)).squeeze(-1)
    similarity = similarity / (memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True) + 1e-8)  # cosine, Eq. 6
    content = torch.softmax(strength * similarity, dim=-1)  # Eq. 5
    gated = gate * content + (1.0 - gate) * previous  # Eq. 7
    shifted = (shift[:, :1] * gated.roll(-1, dims=-1) + shift[:, 1:2] * gated
               + shift[:, 2:] * gated.roll(1, dims=-1))  # Eq. 8, shifts −1, 0, +1 (circular)
    sharpened = (shifted + 1e-12) ** sharpen  # Eq. 9
    return sharpened / sharpened.sum(dim=-1, keepdim=True)


class NtmHead(nn.Module):
    """Emits one head's addressing parameters (and erase/add vectors for the write head) from the controller."""

    def __init__(self, hidden: int, width: int, writes: bool) -> None:
        super().__init__()
        self.width, self.writes = width, writes
        self.parameters_layer = orthogonal_linear(hidden, width + 6 + (2 * width if writes else 0))

    def forward(self, controller: Tensor, memory: Tensor, previous: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        d = self.width
        raw = self.parameters_layer(controller)
        key, strength, gate = raw[:, :d], F.softplus(raw[:, d:d + 1]), torch.sigmoid(raw[:, d + 1:d + 2])
        shift, sharpen = torch.softmax(raw[:, d + 2:d + 5], dim=-1), 1.0 + F.softplus(raw[:, d + 5:d + 6])
        weights = ntm_address(key, strength, gate, shift, sharpen, memory, previous)
        erase = torch.sigmoid(raw[:, d + 6:2 * d + 6]) if self.writes else raw[:, :0]
        add = raw[:, 2 * d + 6:] if self.writes else raw[:, :0]
        return weights, erase, add


class NtmCore(nn.Module):
    """NTM with a ``torch.nn.LSTMCell`` controller fed [x_t, r_{t-1}]; output features [h_t, r_t]."""

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.controller = nn.LSTMCell(input_size + config.width, config.hidden)
        self.read_head = NtmHead(config.hidden, config.width, writes=False)
        self.write_head = NtmHead(config.hidden, config.width, writes=True)
        self.initial_memory = nn.Parameter(torch.rand(config.slots, config.width) * 1e-2)
        self.initial_read = nn.Parameter(torch.zeros(config.width))
        self.register_buffer("first_slot", F.one_hot(torch.tensor(0), config.slots).float(), persistent=False)
        self.output_size = config.hidden + config.width

    def initial_state(self, batch: int) -> State:
        zeros = self.initial_read.new_zeros(batch, self.config.hidden)
        focus = self.first_slot.expand(batch, -1)
        return {"h": zeros, "c": zeros, "memory": self.initial_memory.expand(batch, -1, -1),
                "read": self.initial_read.expand(batch, -1), "read_weights": focus, "write_weights": focus}

    def forward(self, inputs: Tensor, state: State, tau: float) -> tuple[Tensor, State]:
        h, c, memory, read = state["h"], state["c"], state["memory"], state["read"]
        read_weights, write_weights = state["read_weights"], state["write_weights"]
        outputs = []
        for x in inputs.unbind(0):  # unbind, not [t]: see ArminCore.forward
            h, c = self.controller(torch.cat([x, read], dim=-1), (h, c))
            read_weights, _, _ = self.read_head(h, memory, read_weights)
            read = torch.bmm(read_weights.unsqueeze(1), memory).squeeze(1)
            write_weights, erase, add = self.write_head(h, memory, write_weights)
            weights = write_weights.unsqueeze(-1)
            memory = memory * (1.0 - weights * erase.unsqueeze(1)) + weights * add.unsqueeze(1)
            outputs.append(torch.cat([h, read], dim=-1))
        return torch.stack(outputs), {"h": h, "c": c, "memory": memory, "read": read,
                                      "read_weights": read_weights, "write_weights": write_weights}
