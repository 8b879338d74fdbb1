"""Pre-training of the tiny text-to-image model (the stand-in for SD v1.1's LAION pre-training).

Two stages as in latent diffusion: (1) the near-identity ``AutoencoderKL`` (reconstruction + a tiny KL term), after
which ``scaling_factor`` is set to 1/std of the latents (SD's 0.18215 was chosen the same way); (2) the UNet and the
text encoder jointly with SD's ε-prediction loss, t ~ U{0..999}, and caption dropout (so that classifier-free
guidance and negative prompts work when the synthetic private set is generated). Both stages checkpoint and resume.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from repro_shared import io
from repro_shared.errors import ConfigError
from repro_shared.logging import get_logger, progress

from .data import DataConfig, load_domains, pretraining_corpus
from .models import ModelConfig, build_tiny_pipeline, save_pipeline, sd_scheduler, tokenize

log = get_logger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """Pre-training schedule of the tiny model."""

    vae_steps: int = 400
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6
    steps: int = 3000
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-2
    caption_dropout: float = 0.1  # SD's unconditional-training rate
    checkpoint_every: int = 200
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("pretrain.steps and pretrain.batch_size must be positive")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ConfigError(f"pretrain.caption_dropout={self.caption_dropout} must be in [0, 1)")


def _bar(steps: range, desc: str, show: bool) -> Any:
    return progress(steps, desc=desc, total=len(steps)) if show else steps


def _save(path: Path, **state: Any) -> None:
    io.atomic_torch_save(state, path)


def _load(path: Path) -> dict[str, Any] | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def _resume(ckpt: Path, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer, gen: torch.Generator,
            rng: random.Random | None = None) -> tuple[int, list[float]]:
    """Restore modules, optimiser and random streams from a stage's checkpoint: (next step, losses so far)."""
    state = _load(ckpt)
    if state is None:
        return 0, []
    for key, module in modules.items():
        module.load_state_dict(state[key])
    opt.load_state_dict(state["opt"])
    gen.set_state(state["gen"])
    if rng is not None:
        rng.setstate(state["rng"])
    return state["step"], state["losses"]


def train_vae(pipe: Any, images: torch.Tensor, config: PretrainConfig, ckpt: Path, seed: int,
              show_progress: bool = True) -> list[float]:
    """Stage 1: fit the near-identity AutoencoderKL, then set scaling_factor = 1 / std(latents)."""
    vae = pipe.vae
    opt = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    start, losses = _resume(ckpt, {"vae": vae}, opt, gen)
    vae.train()
    for step in _bar(range(start, config.vae_steps), "pretrain VAE", show_progress):
        batch = images[torch.randint(len(images), (config.batch_size,), generator=gen)]
        posterior = vae.encode(batch).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        recon = vae.decode(z).sample
        loss = F.mse_loss(recon, batch) + config.vae_kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.vae_steps:
            _save(ckpt, vae=vae.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1,
                  losses=losses)
    vae.eval()
    with torch.no_grad():
        std = float(vae.encode(images).latent_dist.mean.std())
    vae.register_to_config(scaling_factor=1.0 / std)
    return losses


def train_denoiser(pipe: Any, images: torch.Tensor, captions: list[str], config: PretrainConfig, ckpt: Path,
                   seed: int, show_progress: bool = True, on_log: Any = None) -> list[float]:
    """Stage 2: text-conditional ε-prediction training of UNet + text encoder with caption dropout (SD's loss)."""
    unet, text_encoder = pipe.unet, pipe.text_encoder
    scheduler = sd_scheduler("ddpm")
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed + 1)
    rng = random.Random(seed)
    with torch.no_grad():  # the VAE is frozen now: its posterior is computed once, sampled every step
        posterior = pipe.vae.encode(images).latent_dist
        mean, std = posterior.mean, posterior.std
    scale = float(pipe.vae.config.scaling_factor)
    start, losses = _resume(ckpt, {"unet": unet, "text_encoder": text_encoder}, opt, gen, rng)
    unet.train()
    text_encoder.train()
    for step in _bar(range(start, config.steps), "pretrain UNet+text", show_progress):
        idx = torch.randint(len(images), (config.batch_size,), generator=gen)
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * scale
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        prompts = ["" if rng.random() < config.caption_dropout else captions[i] for i in idx.tolist()]
        cond = text_encoder(tokenize(pipe, prompts))[0]
        pred = unet(scheduler.add_noise(z0, noise, t), t, cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % config.log_every == 0 and on_log is not None:
            on_log(step + 1, sum(losses[-config.log_every:]) / config.log_every)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            _save(ckpt, unet=unet.state_dict(), text_encoder=text_encoder.state_dict(), opt=opt.state_dict(),
                  gen=gen.get_state(), rng=rng.getstate(), step=step + 1, losses=losses)
    unet.eval()
    text_encoder.eval()
    return losses


def pretrain(pipe: Any, images: torch.Tensor, captions: list[str], config: PretrainConfig, work_dir: Path,
             seed: int = 0, show_progress: bool = True, on_log: Any = None) -> dict[str, list[float]]:
    """Both stages in ``pipe`` in place, resumable from ``work_dir``; returns the loss curves."""
    work_dir.mkdir(parents=True, exist_ok=True)
    vae_losses = train_vae(pipe, images, config, work_dir / "vae.pt", seed, show_progress)
    pipe.vae.requires_grad_(False)
    rmse = vae_rmse(pipe, images)
    log.info("VAE reconstruction RMSE on [0, 1] pixels: %.4f", rmse)
    losses = train_denoiser(pipe, images, captions, config, work_dir / "denoiser.pt", seed, show_progress, on_log)
    return {"vae": vae_losses, "denoiser": losses, "vae_rmse": [rmse]}


@torch.no_grad()
def vae_rmse(pipe: Any, images: torch.Tensor) -> float:
    """Root-mean-square reconstruction error of the VAE (posterior mode) in [0, 1] pixel units."""
    recon = pipe.vae.decode(pipe.vae.encode(images).latent_dist.mode()).sample.clamp(-1, 1)
    return float(((recon - images) / 2).pow(2).mean().sqrt())


def pretrained_dir(root: Path, model: ModelConfig, data: DataConfig, config: PretrainConfig, seed: int) -> Path:
    """Where the pre-trained pipeline for these settings lives (shared by every experiment that uses them)."""
    key = json.dumps({"model": asdict(model), "data": asdict(data), "pretrain": asdict(config), "seed": seed},
                     sort_keys=True, default=str)
    return Path(root) / "shake-to-leak" / "pretrained" / hashlib.sha256(key.encode()).hexdigest()[:12]


def ensure_pretrained(root: Path, model: ModelConfig, data: DataConfig, config: PretrainConfig, seed: int,
                      show_progress: bool = True, on_log: Any = None) -> Path:
    """The saved pre-trained pipeline folder: loaded if it exists, else built, pre-trained (resumably) and saved."""
    target = pretrained_dir(root, model, data, config, seed)
    if (target / "pipeline" / "model_index.json").exists():
        return target / "pipeline"
    if model.source != "tiny":
        raise ConfigError(f"model.source={model.source!r} is a pre-trained pipeline; nothing to pre-train")
    domains = load_domains(data)
    images, captions = pretraining_corpus(domains)
    log.info("pre-training the tiny model on %d members of %d domains -> %s", len(images), len(domains), target)
    pipe = build_tiny_pipeline(model, seed=seed)
    pipe.set_progress_bar_config(disable=True)
    curves = pretrain(pipe, images, captions, config, target / "work", seed, show_progress, on_log)
    save_pipeline(pipe, target / "pipeline")
    io.atomic_write_json(target / "losses.json", curves)
    io.atomic_write_json(target / "settings.json", {"model": asdict(model), "data": asdict(data),
                                                     "pretrain": asdict(config), "seed": seed})
    return target / "pipeline"
