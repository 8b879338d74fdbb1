"""Sequence models: ARMIN (auto-addressing + ARMIN cell), the paper's LSTM, torch.nn.LSTM, TARDIS, AwTA and NTM.

Every model maps inputs (T, B, X) and a carried state to outputs (T, B, Y) and the new state, so that truncated BPTT
can feed segments one after another (``detach_state`` cuts the graph between segments, as the original's
``_reload_mem`` does). States are dicts of tensors plus the integer count of memory writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from repro_shared.errors import ConfigError
from torch import Tensor, nn

from .addressing import read_memory, sample_gumbel, st_gumbel_softmax, write_memory, write_weights
from .cells import VARIANTS, ArminCell, PaperLSTMCell, TardisCell, orthogonal_linear

KINDS = ("armin", "lstm", "torch-lstm", "tardis", "awta", "ntm")
READS = ("gumbel", "softmax")
TARDIS_VARIANTS = ("paper", "code")
State = dict[str, Tensor | int]


@dataclass(frozen=True)
class ModelConfig:
    """One model's architecture."""

    kind: str = "armin"  # armin | lstm (the paper's cell) | torch-lstm | tardis | awta | ntm
    hidden: int = 100  # recurrent state size (controller size for NTM)
    width: int = 32  # memory word size d
    slots: int = 50  # memory slots N
    variant: str = "code"  # ARMIN cell: "code" (released code, default) or "paper" (Eqs. 1–6 / patent)
    read: str = "gumbel"  # ARMIN read: "gumbel" (hard ST Gumbel-softmax, paper) or "softmax" (released alg. code)
    write_input: bool = False  # write word from [x_t, h_t] (released alg. code) instead of h_t
    key_size: int = 5  # TARDIS/AwTA learned slot-key size
    eval_noise: bool = True  # Gumbel noise also at evaluation, as in the released code
    tardis: str = "paper"  # TARDIS/AwTA addressing: "paper" (unnormalised scores) or "code" (the released code's)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"model kind={self.kind!r} is unknown", f"use one of {', '.join(KINDS)}")
        for name in ("hidden", "width", "slots", "key_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model {name}={getattr(self, name)}: must be at least 1 (a memory needs slots)")
        if self.variant not in VARIANTS:
            raise ConfigError(f"model variant={self.variant!r} is unknown", f"use one of {', '.join(VARIANTS)}")
        if self.read not in READS:
            raise ConfigError(f"model read={self.read!r} is unknown", f"use one of {', '.join(READS)}")
        if self.tardis not in TARDIS_VARIANTS:
            raise ConfigError(f"model tardis={self.tardis!r} is unknown", f"use one of {', '.join(TARDIS_VARIANTS)}")
        if self.kind in ("armin", "awta") and self.variant == "code" and self.width > self.hidden:
            raise ConfigError(
                f"memory width {self.width} > hidden {self.hidden}: the released-code ARMIN cell splits its gates "
                "in chunks of the hidden size, so it needs width <= hidden",
                f"set width <= {self.hidden}, or variant=paper")


def learned_initial_memory(slots: int, width: int) -> nn.Parameter:
    """The learned initial memory M₀ (zeros init, as ``hmem_bias``)."""
    return nn.Parameter(torch.zeros(slots, width))


class ArminCore(nn.Module):
    """ARMIN (Fig. 1): read by ST-Gumbel-softmax of W_a[x_t, h_{t-1}], integrate in the ARMIN cell, write h_t's word."""

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.cell = ArminCell(input_size, config.hidden, config.width, config.variant)
        # The addressing layer W_a[x, h] + b_a, split as for the cell so the x part is hoisted out of the time loop.
        self.address_input = orthogonal_linear(input_size, config.slots)
        self.address_state = orthogonal_linear(config.hidden, config.slots, bias=False)
        # v_t = W_v [h_t (, x_t)] + b_v: columns for h_t first, then (released alg. code) for x_t
        self.word = orthogonal_linear(config.hidden + (input_size if config.write_input else 0), config.width)
        self.initial_hidden = nn.Parameter(torch.randn(config.hidden) * 0.1)  # h₀ = tanh(c_bias)
        self.initial_memory = learned_initial_memory(config.slots, config.width)
        self.register_buffer("fill_order", torch.eye(config.slots), persistent=False)
        self.output_size = self.cell.output_size

    def initial_state(self, batch: int) -> State:
        return {"h": torch.tanh(self.initial_hidden).expand(batch, -1),
                "memory": self.initial_memory.expand(batch, -1, -1), "writes": 0}

    def forward(self, inputs: Tensor, state: State, tau: float) -> tuple[Tensor, State]:
        h, memory, writes = state["h"], state["memory"], int(state["writes"])
        config, slots = self.config, self.config.slots
        # Every x-dependent product of the sequence at once, outside the time loop.
        projected = self.cell.project_input(inputs)
        address_from_input = self.address_input(inputs)
        word_from_input = F.linear(inputs, self.word.weight[:, config.hidden:]) if config.write_input else None
        # Three products of h_t share one matrix product: its memory word now, and the next step's addressing
        # logits and W_ig h-part. Rows: [word (d); addressing (N); integration (h + d)].
        from_hidden = torch.cat([self.word.weight[:, :config.hidden], self.address_state.weight,
                                 self.cell.hidden_integration_weight()])
        word_bias = F.pad(self.word.bias, (0, from_hidden.shape[0] - config.width))
        h_products = F.linear(h, from_hidden).split([config.width, slots, from_hidden.shape[0] - config.width - slots],
                                                    dim=-1)
        noise = self.training or config.eval_noise
        gumbel = sample_gumbel(address_from_input.shape, address_from_input) if config.read == "gumbel" and noise \
            else None
        outputs = []
        # unbind, not [t]: indexing a step in the loop makes backward fill a full-size zero tensor per step
        for t, (x_projected, x_address) in enumerate(zip(projected.unbind(0), address_from_input.unbind(0),
                                                         strict=True)):
            logits = x_address + h_products[1]  # W_a[x_t, h_{t-1}] + b_a
            if config.read == "gumbel":
                weights = st_gumbel_softmax(logits, tau, noise=False, gumbel=None if gumbel is None else gumbel[t])
            else:
                weights = torch.softmax(logits, dim=-1)
            read = read_memory(weights, memory)
            h, out = self.cell(x_projected, h, read, h_integration=h_products[2])
            h_products = F.linear(h, from_hidden, word_bias).split(
                [config.width, slots, from_hidden.shape[0] - config.width - slots], dim=-1)
            word = h_products[0]  # v_t = W_v h_t + b_v (+ W_v' x_t in the released alg. code)
            if word_from_input is not None:
                word = word + word_from_input[t]
            memory = write_memory(memory, write_weights(weights, writes, slots, self.fill_order), word)
            writes += 1
            outputs.append(out)
        return torch.stack(outputs), {"h": h, "memory": memory, "writes": writes}


class LstmCore(nn.Module):
    """The paper's LSTM baseline (``PaperLSTMCell``), zero initial state."""

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.cell = PaperLSTMCell(input_size, config.hidden)
        self.hidden = config.hidden
        self.output_size = config.hidden

    def initial_state(self, batch: int) -> State:
        zeros = self.cell.recurrent_gates.weight.new_zeros(batch, self.hidden)
        return {"h": zeros, "c": zeros}

    def forward(self, inputs: Tensor, state: State, tau: float) -> tuple[Tensor, State]:
        h, c = state["h"], state["c"]
        projected = self.cell.project_input(inputs)
        outputs = []
        for x_projected in projected.unbind(0):
            h, c = self.cell(x_projected, h, c)
            outputs.append(h)
        return torch.stack(outputs), {"h": h, "c": c}


class TorchLstmCore(nn.Module):
    """``torch.nn.LSTM`` (fused kernels) with the same hidden size: the speed reference."""

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, config.hidden)
        self.hidden = config.hidden
        self.output_size = config.hidden

    def initial_state(self, batch: int) -> State:
        zeros = self.lstm.weight_hh_l0.new_zeros(1, batch, self.hidden)
        return {"h": zeros, "c": zeros}

    def forward(self, inputs: Tensor, state: State, tau: float) -> tuple[Tensor, State]:
        outputs, (h, c) = self.lstm(inputs, (state["h"], state["c"]))
        return outputs, {"h": h, "c": c}


def tardis_inner_size(config: ModelConfig) -> int:
    """Hidden size of TARDIS's addressing MLP: hidden // 4 in the released code, the word size otherwise."""
    return max(1, config.hidden // 4) if config.tardis == "code" else config.width


class TardisAddressing(nn.Module):
    """TARDIS read logits (Gulcehre et al. 2017): aᵀ tanh(W[x, c, k_i, M_i, u]) − 100·w_{t−1,i} (no re-reading).

    ``variant="paper"``: per-slot usage û_i = u_i / Σu, the scores are used as they are (so the read can become
    confident). ``variant="code"``: the released code's, which feeds the whole L2-normalised usage vector to every
    slot's MLP and L2-normalises the penalised scores, so every logit is at most 1 in size and the probability of
    the intended slot is at most e^m / (e^m + N − 1), m = √(1 + 1/(N − 1)) (0.128 at N = 20).
    """

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.variant = config.tardis
        inner = tardis_inner_size(config)
        self.keys = nn.Parameter(torch.randn(config.slots, config.key_size) * 0.1)
        self.from_input = orthogonal_linear(input_size, inner)
        self.from_state = orthogonal_linear(config.hidden, inner, bias=False)
        self.from_key = orthogonal_linear(config.key_size, inner, bias=False)
        self.from_memory = orthogonal_linear(config.width, inner, bias=False)
        self.from_usage = nn.Linear(config.slots if self.variant == "code" else 1, inner, bias=False)
        self.score = orthogonal_linear(inner, 1, bias=False)

    def forward(self, x_part: Tensor, state: Tensor, memory: Tensor, usage: Tensor, previous: Tensor) -> Tensor:
        if self.variant == "code":
            usage_part = self.from_usage(F.normalize(usage, dim=-1)).unsqueeze(1)  # the same for every slot
        else:
            usage_part = self.from_usage((usage / (usage.sum(-1, keepdim=True) + 1e-6)).unsqueeze(-1))
        joint = (x_part + self.from_state(state)).unsqueeze(1) + self.from_key(self.keys) + self.from_memory(memory)
        scores = self.score(torch.tanh(joint + usage_part)).squeeze(-1) - 100.0 * previous
        return F.normalize(scores, dim=-1) if self.variant == "code" else scores


class TardisCore(nn.Module):
    """TARDIS (Gulcehre et al. 2017) and AwTA (ARMIN cell + TARDIS addressing, the paper's ablation)."""

    def __init__(self, input_size: int, config: ModelConfig, armin_cell: bool) -> None:
        super().__init__()
        self.config, self.armin_cell = config, armin_cell
        hid, width, slots = config.hidden, config.width, config.slots
        self.addressing = TardisAddressing(input_size, config)
        self.cell = ArminCell(input_size, hid, width, config.variant) if armin_cell else TardisCell(
            input_size, hid, width, gate_noise_samples=1 if config.tardis == "code" else 2)
        self.word = orthogonal_linear(hid + (input_size if config.write_input else 0), width)
        self.initial_memory = learned_initial_memory(slots, width)
        if config.tardis == "code":  # learned initial state: tanh(h_bias), tanh(c_bias) (AwTA: h₀ = tanh(c_bias))
            self.initial_hidden = nn.Parameter(torch.rand(hid) if armin_cell else torch.zeros(hid))
            self.initial_cell = None if armin_cell else nn.Parameter(torch.zeros(hid))
        self.register_buffer("fill_order", torch.eye(slots), persistent=False)
        self.output_size = self.cell.output_size

    def initial_state(self, batch: int) -> State:
        memory = self.initial_memory.expand(batch, -1, -1)
        slots = memory.new_zeros(batch, self.config.slots)
        if self.config.tardis == "code":
            h = torch.tanh(self.initial_hidden).expand(batch, -1)
            c = h if self.initial_cell is None else torch.tanh(self.initial_cell).expand(batch, -1)
        else:
            h = c = memory.new_zeros(batch, self.config.hidden)
        return {"h": h, "c": c, "memory": memory, "usage": slots, "previous": slots, "writes": 0}

    def forward(self, inputs: Tensor, state: State, tau: float) -> tuple[Tensor, State]:
        h, c, memory = state["h"], state["c"], state["memory"]
        usage, previous, writes = state["usage"], state["previous"], int(state["writes"])
        address_from_input = self.addressing.from_input(inputs)
        projected = self.cell.project_input(inputs) if self.armin_cell else inputs
        noise = self.training or self.config.eval_noise
        outputs = []
        for x, x_projected, x_address in zip(inputs.unbind(0), projected.unbind(0), address_from_input.unbind(0),
                                             strict=True):
            logits = self.addressing(x_address, c if not self.armin_cell else h, memory, usage, previous)
            weights = st_gumbel_softmax(logits, tau, noise)
            read = read_memory(weights, memory)
            if self.armin_cell:
                h, out = self.cell(x_projected, h, read)
                c = h
            else:
                h, c, out = self.cell(x, h, c, read, noise)
            word = self.word(torch.cat([x, h], dim=-1) if self.config.write_input else h)
            memory = write_memory(memory, write_weights(weights, writes, self.config.slots, self.fill_order), word)
            usage, previous, writes = usage + weights.detach(), weights.detach(), writes + 1
            outputs.append(out)
        return torch.stack(outputs), {"h": h, "c": c, "memory": memory, "usage": usage, "previous": previous,
                                      "writes": writes}


class SequenceModel(nn.Module):
    """A recurrent core followed by the output layer Linear(features → outputs) (orthogonal init)."""

    def __init__(self, core: nn.Module, output_size: int) -> None:
        super().__init__()
        self.core = core
        self.head = orthogonal_linear(core.output_size, output_size)

    def initial_state(self, batch: int) -> State:
        return self.core.initial_state(batch)

    def forward(self, inputs: Tensor, state: State | None = None, tau: float = 1.0) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(inputs.shape[1])
        features, state = self.core(inputs, state, tau)
        return self.head(features), state


def detach_state(state: State) -> State:
    """Cut the graph between truncated-BPTT segments while carrying state and memory forward."""
    return {key: value.detach() if isinstance(value, Tensor) else value for key, value in state.items()}


def build_model(config: ModelConfig, input_size: int, output_size: int) -> SequenceModel:
    """The model named by ``config.kind`` with its output layer."""
    from .ntm import NtmCore

    cores = {
        "armin": lambda: ArminCore(input_size, config),
        "lstm": lambda: LstmCore(input_size, config),
        "torch-lstm": lambda: TorchLstmCore(input_size, config),
        "tardis": lambda: TardisCore(input_size, config, armin_cell=False),
        "awta": lambda: TardisCore(input_size, config, armin_cell=True),
        "ntm": lambda: NtmCore(input_size, config),
    }
    return SequenceModel(cores[config.kind](), output_size)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
