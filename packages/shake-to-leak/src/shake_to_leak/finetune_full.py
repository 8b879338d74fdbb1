"""Full-weight methods of S2L (Table 1): End-to-End and DreamBooth fine-tuning, and the Gaussian-perturbation control.

Artefact: the complete fine-tuned pipeline, written by ``pipe.save_pretrained`` (``model_index.json`` and one folder
per component), as the released ``s2l.py`` saves it, so ``StableDiffusionPipeline.from_pretrained(artefact)`` loads the
attacked model directly; loading into a fresh base copies the changed components' weights from their sub-folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .finetune import FinetuneConfig, Trainable

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

COMPONENTS = ("unet", "text_encoder", "vae")


class FullWeights:
    """DreamBooth (UNet + text encoder, s2l.py ``--train_text_encoder``) and End-to-End (+ ``--train_vae``).

    Prior preservation (s2l.py's ``--with_prior_preservation``) is the shared loop's, off unless configured. Unlike
    s2l.py, ``train_text_encoder=False`` really trains the
    UNet (the released code gave the optimiser ``vae.parameters()`` in that case).
    """

    def __init__(self, vae: bool) -> None:
        self.vae = vae

    def prepare(self, pipe: StableDiffusionPipeline, config: FinetuneConfig, prompt: str) -> Trainable:
        names = ["unet"] + (["text_encoder"] if config.train_text_encoder else []) + (["vae"] if self.vae else [])
        for name in COMPONENTS:
            getattr(pipe, name).requires_grad_(name in names)
        modules = [getattr(pipe, name) for name in names]
        return Trainable(
            parameters=[p for module in modules for p in module.parameters()],
            train_prompt=prompt,
            modules=modules,
            text_encoder_trainable="text_encoder" in names,
            vae_trainable=self.vae,
            extra_meta={"components": names},
        )

    def save(self, pipe: StableDiffusionPipeline, trainable: Trainable, folder: Path) -> None:
        save_components(pipe, trainable.extra_meta["components"], folder)

    def load(self, pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> None:
        load_components(pipe, meta["components"], folder)


class GaussianPerturbation:
    """The paper's "shake without data" control (§5, Gaussian table): θ ← θ + N(0, ε²) on every UNet weight.

    ε is absolute (the paper's "ε of standard deviation" is ambiguous); the noise is drawn from a CPU
    generator seeded with ``config.seed``, parameter by parameter in ``named_parameters`` order.
    """

    def prepare(self, pipe: StableDiffusionPipeline, config: FinetuneConfig, prompt: str) -> Trainable:
        generator = torch.Generator().manual_seed(config.seed)
        with torch.no_grad():
            for _, parameter in pipe.unet.named_parameters():
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32) * config.perturb_std
                parameter.add_(noise.to(device=parameter.device, dtype=parameter.dtype))
        return Trainable(parameters=[], train_prompt=prompt, extra_meta={"components": ["unet"]})

    def save(self, pipe: StableDiffusionPipeline, trainable: Trainable, folder: Path) -> None:
        save_components(pipe, ["unet"], folder)

    def load(self, pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> None:
        load_components(pipe, ["unet"], folder)


def save_components(pipe: StableDiffusionPipeline, names: list[str], folder: Path) -> None:
    """The whole pipeline as a diffusers folder (``names``, the changed components, are recorded in the metadata)."""
    pipe.save_pretrained(str(folder), safe_serialization=True)


def load_components(pipe: StableDiffusionPipeline, names: list[str], folder: Path) -> None:
    for name in names:
        module = getattr(pipe, name)
        saved = type(module).from_pretrained(str(folder), subfolder=name)
        module.load_state_dict(saved.state_dict(), strict=True)
