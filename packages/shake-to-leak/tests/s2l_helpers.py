"""Tiny diffusers components for tests: a latent text-to-image StableDiffusionPipeline built in a fraction of a second.

Everything is random-initialised from config (no downloads). The CLIP tokenizer is built from a hand-written
character-level vocab.json + merges.txt (GPT-2 byte-to-unicode characters, with and without the ``</w>`` word-end
marker, plus a few word merges), so ordinary English prompts tokenize without an unknown token.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from shake_to_leak.models import byte_chars
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

IMAGE_SIZE = 16  # pixels; the tiny VAE downsamples by 2, so UNet latents are 8x8
CONTEXT_DIM = 16
MAX_TOKENS = 32  # the character-level tokenizer spends one token per letter


def write_tiny_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """Write a character-level CLIP vocab.json and merges.txt (two real merges) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = byte_chars()  # the real CLIP byte table, so the tiny vocab covers every byte
    merges = [("p", "h"), ("o", "t</w>"), ("o", "f</w>")]
    words = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
    vocab_path.write_text(json.dumps({w: i for i, w in enumerate(words)}), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return vocab_path, merges_path


def tiny_tokenizer(folder: Path) -> CLIPTokenizer:
    vocab_path, merges_path = write_tiny_tokenizer_files(folder)
    return CLIPTokenizer(vocab=str(vocab_path), merges=str(merges_path), model_max_length=MAX_TOKENS)


def tiny_pipeline(folder: Path, seed: int = 0) -> StableDiffusionPipeline:
    """A random tiny latent diffusion pipeline (16x16 RGB images, 4x8x8 latents, 16-dim text context)."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(folder)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=CONTEXT_DIM, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=MAX_TOKENS, projection_dim=CONTEXT_DIM,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 2, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CONTEXT_DIM, attention_head_dim=2, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4,
        sample_size=IMAGE_SIZE,
    )
    # SD v1's schedule, as a DDIM sampler like real pipelines carry; finetune() builds its DDPM from this config
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, steps_offset=1,
        clip_sample=False, set_alpha_to_one=False,
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_images(n: int = 4, seed: int = 0) -> torch.Tensor:
    """``n`` smooth random RGB images in [-1, 1] at the tiny pipeline's resolution."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=gen) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
