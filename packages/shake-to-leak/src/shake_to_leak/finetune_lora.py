"""LoRA and DreamBooth+LoRA for S2L (Table 1; released ``lora.sh`` / ``lora_db.sh``): peft adapters, base frozen.

Adapters: UNet attention (``to_q/to_k/to_v/to_out.0`` by default), CLIP text-encoder projections
(``q_proj/k_proj/v_proj/out_proj``) when ``train_text_encoder``, and, for ``lora`` (``lora_vae``), the VAE's attention —
``lora.sh`` asked for VAE LoRA but gave peft no target modules and crashed; here it has explicit targets.

Artefact: the UNet and text-encoder adapters in diffusers' own LoRA format, ``pytorch_lora_weights.safetensors``
written by ``StableDiffusionPipeline.save_lora_weights`` with each adapter's ``LoraConfig`` (rank, alpha, targets) as
metadata, so a stock ``pipe.load_lora_weights(folder)`` restores both; loading here does exactly that. Diffusers has no
loader for VAE adapters, so ``lora``'s VAE adapters are a peft folder ``vae_lora/`` (``adapter_config.json`` +
``adapter_model.safetensors``) injected with ``peft.inject_adapter_in_model`` and ``set_peft_model_state_dict``. (The
released code saved adapters that its attack could not load.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro_shared.errors import ConfigError
from safetensors.torch import load_file, save_file

from .finetune import FinetuneConfig, Trainable

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

ADAPTER = "s2l"
WEIGHTS_FILE = "adapter_model.safetensors"
DIFFUSERS_FILE = "pytorch_lora_weights.safetensors"  # diffusers' default LoRA weight name


def lora_config(rank: int, alpha: float, targets: tuple[str, ...]):
    from peft import LoraConfig

    # s2l.py: lora_dropout 0, bias "none"; peft's default init (Kaiming A, zero B) so training starts at the base model
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=list(targets))


def _check_targets(module: Any, name: str, targets: tuple[str, ...]) -> None:
    """One clear message before training when a target name matches no Linear layer (peft would fail obscurely)."""
    import torch

    names = [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        setting = {"text_encoder": "lora_text_targets"}.get(name, "lora_unet_targets")
        hint = "lora_vae=False" if name == "vae" else f"{setting} naming Linear layers such as {names[:3]}"
        raise ConfigError(f"LoRA targets {missing} match no Linear layer of the {name}", f"use {hint}")


class Lora:
    def prepare(self, pipe: StableDiffusionPipeline, config: FinetuneConfig, prompt: str) -> Trainable:
        from peft import inject_adapter_in_model

        for component in (pipe.unet, pipe.text_encoder, pipe.vae):
            component.requires_grad_(False)
        targets = {"unet": config.lora_unet_targets}
        if config.train_text_encoder:
            targets["text_encoder"] = config.lora_text_targets
        if config.lora_vae:
            targets["vae"] = config.lora_unet_targets  # diffusers' VAE attention uses the UNet's module names
        modules = []
        for name, target in targets.items():
            module = getattr(pipe, name)
            _check_targets(module, name, target)
            inject_adapter_in_model(lora_config(config.lora_rank, config.lora_alpha, target), module, ADAPTER)
            for parameter_name, parameter in module.named_parameters():
                parameter.requires_grad_("lora_" in parameter_name)
            modules.append(module)
        parameters = [p for m in modules for n, p in m.named_parameters() if "lora_" in n]
        return Trainable(
            parameters=parameters, train_prompt=prompt, modules=modules,
            text_encoder_trainable="text_encoder" in targets, vae_trainable="vae" in targets,
            extra_meta={"lora_components": sorted(targets)},
        )

    def save(self, pipe: StableDiffusionPipeline, trainable: Trainable, folder: Path) -> None:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        components = trainable.extra_meta["lora_components"]
        layers, metadata = {}, {}
        for name in ("unet", "text_encoder"):
            if name in components:
                module = getattr(pipe, name)
                state = get_peft_model_state_dict(module, adapter_name=ADAPTER)
                layers[f"{name}_lora_layers"] = {k: v.detach().contiguous().cpu()
                                                 for k, v in convert_state_dict_to_diffusers(state).items()}
                metadata[f"{name}_lora_adapter_metadata"] = module.peft_config[ADAPTER].to_dict()
        StableDiffusionPipeline.save_lora_weights(folder, **layers, **metadata, weight_name=DIFFUSERS_FILE)
        if "vae" in components:
            pipe.vae.peft_config[ADAPTER].save_pretrained(str(folder / "vae_lora"))
            state = get_peft_model_state_dict(pipe.vae, adapter_name=ADAPTER)
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()},
                      str(folder / "vae_lora" / WEIGHTS_FILE))

    def load(self, pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> None:
        from peft import LoraConfig, inject_adapter_in_model
        from peft.utils import set_peft_model_state_dict

        pipe.load_lora_weights(str(folder), weight_name=DIFFUSERS_FILE, adapter_name=ADAPTER)
        if "vae" in meta["lora_components"]:
            inject_adapter_in_model(LoraConfig.from_pretrained(str(folder / "vae_lora")), pipe.vae, ADAPTER)
            state = load_file(str(folder / "vae_lora" / WEIGHTS_FILE), device=str(pipe.vae.device))
            result = set_peft_model_state_dict(pipe.vae, state, adapter_name=ADAPTER)
            if result.unexpected_keys:
                raise RuntimeError(f"vae LoRA weights that match no adapter: {result.unexpected_keys[:5]}")
        for name in meta["lora_components"]:
            getattr(pipe, name).eval()
