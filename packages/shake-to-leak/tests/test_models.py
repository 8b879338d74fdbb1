"""The tiny pipeline: exact CLIP tokenizer ids, diffusers save/load round trip, config checks."""

from __future__ import annotations

import pytest
import torch
from repro_shared.errors import ConfigError
from shake_to_leak.models import ModelConfig, build_tiny_pipeline, build_tokenizer, load_pipeline, save_pipeline
from shake_to_leak.scales import SMOKE_MODEL


def test_clip_tokenizer_matches_openai_ids():
    # reference ids of openai/clip-vit-* for this prompt
    assert build_tokenizer(77)("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_tiny_pipeline_round_trips_as_a_diffusers_pipeline(tmp_path):
    pipe = build_tiny_pipeline(SMOKE_MODEL, seed=0)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    save_pipeline(pipe, tmp_path / "p")
    loaded = load_pipeline(tmp_path / "p")
    x = torch.randn(1, 4, SMOKE_MODEL.latent_size, SMOKE_MODEL.latent_size)
    cond = torch.randn(1, SMOKE_MODEL.max_tokens, SMOKE_MODEL.text_hidden)
    with torch.no_grad():
        assert torch.allclose(pipe.unet(x, 10, cond).sample, loaded.unet(x, 10, cond).sample)
    assert loaded.scheduler.config.beta_schedule == "scaled_linear"


def test_missing_pipeline_folder_is_reported(tmp_path):
    with pytest.raises(Exception, match="no diffusion pipeline"):
        load_pipeline(tmp_path / "nothing")


def test_bad_model_configs():
    with pytest.raises(ConfigError, match="not divisible"):
        ModelConfig(resolution=12, unet_channels=(8, 16, 32)).validate()
    with pytest.raises(ConfigError, match="multiples of 8"):
        ModelConfig(unet_channels=(12, 16)).validate()
