"""Pre-training checkpoints and resumes: a run stopped at a checkpoint and resumed ends where an unbroken run ends."""

import sys
from pathlib import Path

import torch
from shake_to_leak.pretrain import PretrainConfig, train_denoiser, train_vae

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib does not put tests/ on sys.path
from s2l_helpers import tiny_images, tiny_pipeline

CONFIG = PretrainConfig(vae_steps=4, steps=4, batch_size=2, checkpoint_every=2, log_every=1)


def _train(tmp_path, name, config):
    pipe = tiny_pipeline(tmp_path / "tok")
    images = tiny_images(4)
    vae_losses = train_vae(pipe, images, config, tmp_path / f"{name}-vae.pt", seed=0, show_progress=False)
    unet_losses = train_denoiser(pipe, images, ["a photo of x"] * 4, config, tmp_path / f"{name}-unet.pt", seed=0,
                                 show_progress=False)
    return pipe, vae_losses, unet_losses


def test_resumed_pretraining_equals_an_unbroken_run(tmp_path):
    """Both stages restore weights, optimiser and random streams (VAE: resumed from step 4 = done; UNet: from 2)."""
    straight, vae_straight, unet_straight = _train(tmp_path, "straight", CONFIG)
    # killed after the denoiser's first checkpoint (the VAE stage, which comes first, was complete)
    _train(tmp_path, "resumed", PretrainConfig(vae_steps=4, steps=2, batch_size=2, checkpoint_every=2, log_every=1))
    resumed, vae_resumed, unet_resumed = _train(tmp_path, "resumed", CONFIG)
    assert vae_resumed == vae_straight and unet_resumed == unet_straight
    for a, b in zip(straight.unet.state_dict().values(), resumed.unet.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
