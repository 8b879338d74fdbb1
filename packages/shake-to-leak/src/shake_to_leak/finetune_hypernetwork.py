"""Hypernetwork and DreamBooth+Hypernetwork for S2L (Table 1: 45M params on SD; no released code).

AUTOMATIC1111/NovelAI-style hypernetwork *(inferred from the parameter count)*: two residual MLPs, one
for the key input and one for the value input of every attention layer, c_k = c + MLP_k(c), c_v = c + MLP_v(c), where
c is the attention's context: the text-encoder states in cross-attention (``attn2``) and the layer's own hidden states
in self-attention (``attn1``), as A1111's ``context = default(context, x)`` before ``apply_hypernetworks``. One pair
per context width, shared by every layer of that width (SD v1: 320, 640, 1280 for self-attention, 768 for the text).
Layer structure [1, m, m, 1] × width with ReLU between layers (m = ``hypernet_hidden_mult``; [1, 2, 2, 1] on SD v1.1
gives 43.9M parameters, the paper's ≈45M); the last layer starts at zero so training starts at the base model. They
act through :class:`HypernetworkAttnProcessor`, a diffusers attention processor installed on every attention layer.

DreamBooth+Hypernetwork trains the same parameters under the DreamBooth recipe of the released combo script
(batch 2, twice the steps): the paper lists 45M trainable parameters for both, so the UNet and text encoder stay frozen.

Artefact: ``hypernetwork.safetensors`` + the sizes in ``finetune.json``; loading rebuilds the MLPs and installs the
processor.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from .finetune import FinetuneConfig, Trainable

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

WEIGHTS_FILE = "hypernetwork.safetensors"


class HypernetworkMLP(nn.Module):
    """x + MLP(x) with layer widths [1, m, m, 1] × ``dim`` (ReLU between layers, zero-initialised last layer)."""

    def __init__(self, dim: int, hidden_mult: int) -> None:
        super().__init__()
        hidden = dim * hidden_mult
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Hypernetwork(nn.Module):
    """One key MLP and one value MLP per context width (SD v1: 320, 640, 768, 1280)."""

    def __init__(self, dims: list[int], hidden_mult: int) -> None:
        super().__init__()
        self.key = nn.ModuleDict({str(d): HypernetworkMLP(d, hidden_mult) for d in dims})
        self.value = nn.ModuleDict({str(d): HypernetworkMLP(d, hidden_mult) for d in dims})


class HypernetworkAttnProcessor:
    """Scaled-dot-product attention (as diffusers' ``AttnProcessor2_0``) whose key and value read the context (the
    text in cross-attention, the hidden states in self-attention) through the hypernetwork. Not an ``nn.Module`` on
    purpose: the MLPs stay out of the UNet's state dict."""

    def __init__(self, hypernetwork: Hypernetwork) -> None:
        self.hypernetwork = hypernetwork

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch_size, sequence_length, _ = context.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:  # self-attention: A1111 hands the hypernetwork the hidden states
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        width = str(encoder_hidden_states.shape[-1])
        key = attn.to_k(self.hypernetwork.key[width](encoder_hidden_states))
        value = attn.to_v(self.hypernetwork.value[width](encoder_hidden_states))
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install(pipe: StableDiffusionPipeline, hidden_mult: int) -> Hypernetwork:
    """Build a hypernetwork for every context width of the UNet's attention layers and route them all through it."""
    hypernetwork = Hypernetwork(context_widths(pipe.unet), hidden_mult).to(device=pipe.unet.device,
                                                                          dtype=pipe.unet.dtype)
    pipe.unet.set_attn_processor(HypernetworkAttnProcessor(hypernetwork))
    return hypernetwork


def context_widths(unet: nn.Module) -> list[int]:
    """The widths of the key/value inputs of the UNet's attention layers (self-attention: the layer's channels;
    cross-attention: the text context), i.e. the MLP sizes a hypernetwork needs."""
    from diffusers.models.attention_processor import Attention

    return sorted({m.to_k.in_features for m in unet.modules() if isinstance(m, Attention)})


def installed_hypernetwork(pipe: StableDiffusionPipeline) -> Hypernetwork | None:
    for processor in pipe.unet.attn_processors.values():
        if isinstance(processor, HypernetworkAttnProcessor):
            return processor.hypernetwork
    return None


class HypernetworkMethod:
    def prepare(self, pipe: StableDiffusionPipeline, config: FinetuneConfig, prompt: str) -> Trainable:
        for component in (pipe.unet, pipe.text_encoder, pipe.vae):
            component.requires_grad_(False)
        hypernetwork = install(pipe, config.hypernet_hidden_mult)
        return Trainable(
            parameters=list(hypernetwork.parameters()), train_prompt=prompt, modules=[hypernetwork],
            extra_meta={"hypernet_hidden_mult": config.hypernet_hidden_mult},
        )

    def save(self, pipe: StableDiffusionPipeline, trainable: Trainable, folder: Path) -> None:
        hypernetwork = installed_hypernetwork(pipe)
        state = {k: v.detach().contiguous().cpu() for k, v in hypernetwork.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))

    def load(self, pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> None:
        hypernetwork = install(pipe, meta["hypernet_hidden_mult"])
        hypernetwork.load_state_dict(load_file(str(folder / WEIGHTS_FILE), device=str(pipe.unet.device)), strict=True)
