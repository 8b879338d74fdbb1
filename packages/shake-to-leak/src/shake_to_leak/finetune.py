"""Step 2 of Shake to Leak (paper §3, Table 1): fine-tune a Stable Diffusion pipeline on the synthetic private set.

Every method shares the released ``s2l.py`` recipe: one instance prompt for all images, the latent
diffusion epsilon-prediction loss (VAE posterior sample × ``scaling_factor``, ``t ~ U{0..T-1}``, ``add_noise`` from a
``DDPMScheduler`` built from the pipeline's scheduler config, MSE with mean reduction), AdamW (β 0.9/0.999, weight
decay 1e-2, ε 1e-8), constant learning rate, gradient-norm clip 1.0, fp32. The methods differ only in what is trained:

=========================== ============================================================== =================
method                      trained parameters                                             finetune_*
=========================== ============================================================== =================
``end-to-end``              whole UNet + text encoder + VAE (the VAE through the latents)  full
``dreambooth``              whole UNet + text encoder (prior preservation optional)        full
``lora``                    peft LoRA on UNet + text encoder + VAE attention               lora
``dreambooth+lora``         peft LoRA on UNet + text encoder (the repo's lora_db.sh)       lora
``textual-inversion``       K new token-embedding rows only                                textual_inversion
``hypernetwork``            residual MLPs on every attention's K/V context (A1111)         hypernetwork
``dreambooth+hypernetwork`` the same hypernetwork under the DreamBooth recipe (batch 2)    hypernetwork
``perturb``                 nothing: θ_UNet ← θ_UNet + N(0, ε²) (paper's Gaussian control) full
=========================== ============================================================== =================

:func:`finetune` trains *in place* on the pipeline's components and writes an artefact folder (temp dir + rename);
:func:`load_finetuned` applies such a folder to a fresh pipeline of the same base.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from repro_shared.errors import ConfigError
from repro_shared.io import atomic_directory, atomic_torch_save, atomic_write_json, read_json
from repro_shared.logging import get_logger
from repro_shared.logging import progress as progress_bar

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

log = get_logger(__name__)

METHODS = (
    "end-to-end",
    "dreambooth",
    "lora",
    "textual-inversion",
    "hypernetwork",
    "dreambooth+lora",
    "dreambooth+hypernetwork",
    "perturb",
)
META_FILE = "finetune.json"
FORMAT_VERSION = 2  # 2: full fine-tunes as a pipeline folder, LoRA in diffusers' format

# The released scripts: 100 epochs of 2000 SP images at batch 4 (lora_db.sh: batch 2), lr 1e-6.
_PAPER_EPOCHS, _PAPER_SP_IMAGES = 100, 2000


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run; ``paper_defaults(method)`` gives the paper's values for a method.

    Fields that a method does not use are ignored by it (e.g. ``lora_rank`` outside the LoRA methods).
    ``train_text_encoder`` applies to the full-weight and LoRA methods; ``lora_vae=None`` means the method's default
    (adapters on the VAE for ``lora``, as the released ``lora.sh``, none for ``dreambooth+lora``).
    """

    method: str
    steps: int = _PAPER_EPOCHS * _PAPER_SP_IMAGES // 4
    lr: float = 1e-6
    batch_size: int = 4
    lora_rank: int = 8
    ti_tokens: int = 12
    hypernet_hidden_mult: int = 2
    perturb_std: float = 8e-4
    train_text_encoder: bool = True
    seed: int = 0
    lora_alpha: float = 32.0
    lora_vae: bool | None = None
    weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lora_unet_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    lora_text_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj")
    checkpoint_every: int = 1000  # steps between resumable training checkpoints; 0 = none
    # s2l.py --with_prior_preservation: each batch also holds as many class images (captioned ``class_prompt``) and
    # the loss adds prior_loss_weight × their MSE; finetune() then needs ``class_images``
    with_prior_preservation: bool = False
    class_prompt: str = ""
    prior_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown fine-tuning method {self.method!r}", f"choose one of {', '.join(METHODS)}")
        min_steps = 0 if self.method == "perturb" else 1  # perturbation trains nothing
        _require_int(self, "steps", min_steps)
        for name in ("batch_size", "lora_rank", "ti_tokens", "hypernet_hidden_mult"):
            _require_int(self, name, 1)
        _require_int(self, "seed", 0)
        _require_int(self, "checkpoint_every", 0)
        for name in ("lr", "perturb_std", "lora_alpha", "adam_epsilon", "max_grad_norm"):
            if not isinstance(getattr(self, name), int | float) or not getattr(self, name) > 0:
                raise ConfigError(f"FinetuneConfig.{name} must be a positive number, got {getattr(self, name)!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"FinetuneConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.with_prior_preservation and not (self.class_prompt.strip() and self.prior_loss_weight > 0):
            raise ConfigError("with_prior_preservation needs a class_prompt and prior_loss_weight > 0",
                              "e.g. class_prompt='a photo of a person' (s2l.py --class_prompt)")
        self.lora_unet_targets = tuple(self.lora_unet_targets)
        self.lora_text_targets = tuple(self.lora_text_targets)
        if self.lora_vae is None:
            self.lora_vae = self.method == "lora"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FinetuneConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown FinetuneConfig keys {unknown}", f"valid keys: {', '.join(sorted(known))}")
        return cls(**values)


def _require_int(config: FinetuneConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"FinetuneConfig.{name} must be an integer >= {minimum}, got {value!r}")


def paper_defaults(method: str) -> FinetuneConfig:
    """The paper/released-code settings of ``method``; *(inferred)* values are marked in the README.

    All: AdamW lr 1e-6, batch 4, 100 epochs over 2000 SP images = 50k steps. ``dreambooth+*``: batch 2 (lora_db.sh),
    so 100k steps. LoRA r=8, α=32 (lora.sh). Textual Inversion: 12 tokens (9.2K = 12 × 768 params), lr 5e-4 (the
    diffusers textual_inversion example; the paper gives none). Hypernetwork: [1, 2, 2, 1] MLPs (≈45M on SD),
    lr 1e-5 (the AUTOMATIC1111 default; the paper gives none). Perturbation: ε = 8e-4, the paper's peak.
    """
    if method not in METHODS:
        FinetuneConfig(method)  # raises the ConfigError naming the valid methods
    batch = 2 if method.startswith("dreambooth+") else 4
    values: dict[str, Any] = {"batch_size": batch, "steps": _PAPER_EPOCHS * _PAPER_SP_IMAGES // batch}
    if method == "textual-inversion":
        values["lr"] = 5e-4
    elif method in ("hypernetwork", "dreambooth+hypernetwork"):
        values["lr"] = 1e-5
    elif method == "perturb":
        values["steps"] = 0
    return FinetuneConfig(method, **values)


def quick_defaults(method: str, steps: int = 400) -> FinetuneConfig:
    """CPU-scale settings for a small model: the paper recipe with ``steps`` instead of 50k and learning rates raised
    for a model ~1000× smaller (at 1e-6 a few hundred steps do not move it measurably). Untuned suggestions; the
    experiments set their own (``experiments.FinetuneSettings``)."""
    config = paper_defaults(method)
    lrs = {"end-to-end": 1e-4, "dreambooth": 1e-4, "lora": 1e-3, "dreambooth+lora": 1e-3,
           "textual-inversion": 5e-3, "hypernetwork": 1e-3, "dreambooth+hypernetwork": 1e-3, "perturb": config.lr}
    return dataclasses.replace(config, lr=lrs[method], steps=0 if method == "perturb" else steps)


# --------------------------------------------------------------------------------------------------------------------
# What a method plugs into the shared training loop
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Trainable:
    """What one method trains: its parameters, the prompt it trains on, and per-step / saving hooks."""

    parameters: list[torch.nn.Parameter]
    train_prompt: str
    modules: list[torch.nn.Module] = field(default_factory=list)  # put in train() mode while training
    text_encoder_trainable: bool = False
    vae_trainable: bool = False
    after_step: Callable[[], None] = lambda: None
    extra_meta: dict[str, Any] = field(default_factory=dict)
    parameter_count: int | None = None  # when fewer than all of ``parameters`` are trained (Textual Inversion)

    def count(self) -> int:
        return self.parameter_count if self.parameter_count is not None else sum(p.numel() for p in self.parameters)


class Method(Protocol):
    def prepare(self, pipe: StableDiffusionPipeline, config: FinetuneConfig, prompt: str) -> Trainable: ...

    def save(self, pipe: StableDiffusionPipeline, trainable: Trainable, folder: Path) -> None: ...

    def load(self, pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> None: ...


def _method(name: str) -> Method:
    from . import finetune_full, finetune_hypernetwork, finetune_lora, finetune_textual_inversion

    registry: dict[str, Method] = {
        "end-to-end": finetune_full.FullWeights(vae=True),
        "dreambooth": finetune_full.FullWeights(vae=False),
        "perturb": finetune_full.GaussianPerturbation(),
        "lora": finetune_lora.Lora(),
        "dreambooth+lora": finetune_lora.Lora(),
        "textual-inversion": finetune_textual_inversion.TextualInversion(),
        "hypernetwork": finetune_hypernetwork.HypernetworkMethod(),
        "dreambooth+hypernetwork": finetune_hypernetwork.HypernetworkMethod(),
    }
    return registry[name]


# --------------------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------------------


def finetune(
    pipe: StableDiffusionPipeline,
    images: torch.Tensor,
    prompt: str,
    config: FinetuneConfig,
    out_dir: Path,
    progress: bool = True,
    class_images: torch.Tensor | None = None,
) -> Path:
    """Fine-tune ``pipe`` in place on ``images`` (N,C,H,W in [-1,1]) with one instance ``prompt`` (S2L step 2);
    write the artefact to ``out_dir`` atomically and return it. A finished ``out_dir`` with the same config and
    prompt is loaded into ``pipe`` instead of retraining (resume at artefact granularity). With
    ``config.with_prior_preservation``, ``class_images`` (N', C, H, W) are the class-prior set of s2l.py."""
    out_dir = Path(out_dir)
    _check_inputs(pipe, images, prompt)
    if config.with_prior_preservation != (class_images is not None):
        raise ConfigError("class_images must be given exactly when with_prior_preservation is set",
                          "pass the class-prior images, or leave with_prior_preservation off")
    if class_images is not None:
        _check_inputs(pipe, class_images, config.class_prompt)
    if config.method != "perturb" and pipe.unet.dtype != torch.float32:
        raise ConfigError(f"the pipeline is in {pipe.unet.dtype}", "fine-tune in float32, as s2l.py does")
    if (out_dir / META_FILE).exists():
        meta = read_json(out_dir / META_FILE)
        if _same_run(meta, config, prompt):
            log.info("fine-tuned artefact %s already complete; loading it instead of retraining", out_dir)
            _apply(pipe, out_dir, meta)
            return out_dir
        raise ConfigError(f"{out_dir} holds a different fine-tuning run", "choose another out_dir or delete it")
    method = _method(config.method)
    torch.manual_seed(config.seed)  # adapter initialisation (LoRA A matrices, new modules) is seeded too
    trainable = method.prepare(pipe, config, prompt)
    started = time.perf_counter()
    checkpoint = checkpoint_path(out_dir)
    if config.steps and trainable.parameters:
        losses = _train(pipe, images, prompt, trainable, config, progress, checkpoint, class_images)
    else:
        losses = []
    seconds = time.perf_counter() - started
    with atomic_directory(out_dir, overwrite=True) as tmp:
        method.save(pipe, trainable, tmp)
        atomic_write_json(tmp / "losses.json", losses)
        meta = {
            "format": FORMAT_VERSION, "method": config.method, "config": config.to_dict(), "prompt": prompt,
            "train_prompt": trainable.train_prompt, "n_images": int(images.shape[0]),
            "trainable_parameters": trainable.count(),
            "train_seconds": seconds, "base": _base_signature(pipe), **trainable.extra_meta,
        }
        atomic_write_json(tmp / META_FILE, meta)
    checkpoint.unlink(missing_ok=True)
    return out_dir


def checkpoint_path(out_dir: Path) -> Path:
    """Where :func:`finetune` keeps its resumable training state while ``out_dir`` is not finished."""
    return out_dir.with_name(f".{out_dir.name}.checkpoint.pt")


def load_finetuned(pipe: StableDiffusionPipeline, artefact_dir: Path) -> StableDiffusionPipeline:
    """Apply a :func:`finetune` artefact to ``pipe`` (a fresh pipeline of the same base) in place and return it."""
    artefact_dir = Path(artefact_dir)
    if not (artefact_dir / META_FILE).exists():
        raise ConfigError(f"{artefact_dir} is not a fine-tuning artefact (no {META_FILE})", "pass a finetune() output")
    meta = read_json(artefact_dir / META_FILE)
    base = _base_signature(pipe)
    if meta["base"] != base:
        raise ConfigError(
            f"{artefact_dir} was trained on a different base pipeline", f"artefact base {meta['base']}, pipe {base}"
        )
    return _apply(pipe, artefact_dir, meta)


def finetuned_prompt(pipe: StableDiffusionPipeline, prompt: str) -> str:
    """The prompt to query a fine-tuned pipeline with: Textual Inversion appends its learned tokens, others add none."""
    from .finetune_textual_inversion import placeholder_tokens

    tokens = placeholder_tokens(pipe.tokenizer)
    return f"{prompt} {' '.join(tokens)}" if tokens else prompt


def trainable_parameter_count(artefact_dir: Path) -> int:
    """How many parameters the run in ``artefact_dir`` trained (the paper's Table 1 "# Params" column)."""
    return int(read_json(Path(artefact_dir) / META_FILE)["trainable_parameters"])


def read_losses(artefact_dir: Path) -> list[float]:
    return [float(x) for x in read_json(Path(artefact_dir) / "losses.json")]


def steps_per_second(
    make_pipe: Callable[[], StableDiffusionPipeline],
    images: torch.Tensor,
    prompt: str,
    method: str,
    steps: int = 5,
    batch_size: int = 4,
    workdir: Path | None = None,
) -> float:
    """Fine-tuning steps per second of ``method`` on a fresh pipeline from ``make_pipe`` (setup and saving excluded;
    one warm-up run of 1 step first). For benchmarks: compare methods as ratios measured in one process."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        config = dataclasses.replace(quick_defaults(method, steps=steps), batch_size=batch_size)
        if method == "perturb":
            return float("nan")
        finetune(make_pipe(), images, prompt, dataclasses.replace(config, steps=1), Path(tmp) / "warm", False)
        finetune(make_pipe(), images, prompt, config, Path(tmp) / "run", False)
        return steps / read_json(Path(tmp) / "run" / META_FILE)["train_seconds"]


# --------------------------------------------------------------------------------------------------------------------
# The shared training loop (s2l.py's loss and optimiser)
# --------------------------------------------------------------------------------------------------------------------


def _train(
    pipe: StableDiffusionPipeline,
    images: torch.Tensor,
    prompt: str,
    trainable: Trainable,
    config: FinetuneConfig,
    progress: bool,
    checkpoint: Path,
    class_images: torch.Tensor | None = None,
) -> list[float]:
    """Latent-diffusion noise-prediction training; returns the loss of every step. With ``class_images`` (s2l.py's
    prior preservation) each batch is the instance batch then as many class images, and the loss is instance MSE +
    ``prior_loss_weight`` × class MSE.

    Every ``config.checkpoint_every`` steps the trained tensors, optimiser, RNG and batch-order state go to
    ``checkpoint``; a later call with the same config and prompt continues from there with identical results.
    """
    from diffusers import DDPMScheduler

    device = pipe.unet.device
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    generator = torch.Generator().manual_seed(config.seed)
    token_ids = _tokenize(pipe, trainable.train_prompt).to(device)
    class_ids = _tokenize(pipe, config.class_prompt).to(device) if class_images is not None else None
    optimizer = torch.optim.AdamW(
        trainable.parameters, lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay,
        eps=config.adam_epsilon,
    )
    frozen_context = frozen_class_context = None
    if not trainable.text_encoder_trainable:
        with torch.no_grad():
            frozen_context = pipe.text_encoder(token_ids)[0]
            frozen_class_context = pipe.text_encoder(class_ids)[0] if class_ids is not None else None
    for module in trainable.modules:
        module.train()
    losses: list[float] = []
    batches = _BatchOrder(images.shape[0], config.batch_size, generator)
    identity = {"config": config.to_dict(), "prompt": prompt, "n_images": int(images.shape[0])}
    start = _resume(checkpoint, identity, trainable, optimizer, generator, batches, losses)
    try:
        steps = range(start, config.steps)
        for step in progress_bar(steps, desc=f"fine-tune {config.method}") if progress else steps:
            pixels = images[batches.next()]
            if class_images is not None:
                pixels = torch.cat([pixels, class_images[_class_batch(len(class_images), len(pixels), config.seed,
                                                                       step)]])
            pixels = pixels.to(device=device, dtype=pipe.vae.dtype)
            with torch.set_grad_enabled(trainable.vae_trainable):
                latents = pipe.vae.encode(pixels).latent_dist.sample(generator=generator)
            latents = latents * pipe.vae.config.scaling_factor
            noise = torch.randn(latents.shape, generator=generator).to(device=device, dtype=latents.dtype)
            timesteps = torch.randint(
                0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
            ).to(device)
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            context = frozen_context if frozen_context is not None else pipe.text_encoder(token_ids)[0]
            if class_ids is None:
                context = context.expand(latents.shape[0], -1, -1)
            else:
                class_context = (frozen_class_context if frozen_class_context is not None
                                 else pipe.text_encoder(class_ids)[0])
                half = latents.shape[0] // 2
                context = torch.cat([context.expand(half, -1, -1), class_context.expand(half, -1, -1)])
            prediction = pipe.unet(noisy, timesteps, context).sample
            if noise_scheduler.config.prediction_type == "v_prediction":
                target = noise_scheduler.get_velocity(latents, noise, timesteps)
            else:
                target = noise
            if class_ids is None:
                loss = torch.nn.functional.mse_loss(prediction.float(), target.float(), reduction="mean")
            else:  # s2l.py: chunk into instance and prior halves, loss = instance + prior_loss_weight × prior
                prediction, prediction_prior = prediction.float().chunk(2)
                target, target_prior = target.float().chunk(2)
                loss = (torch.nn.functional.mse_loss(prediction, target, reduction="mean")
                        + config.prior_loss_weight
                        * torch.nn.functional.mse_loss(prediction_prior, target_prior, reduction="mean"))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable.parameters, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            trainable.after_step()
            losses.append(float(loss.detach()))
            done = step + 1
            if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
                _save_checkpoint(checkpoint, identity, done, trainable, optimizer, generator, batches, losses)
    finally:
        for module in trainable.modules:
            module.eval()
    return losses


def _class_batch(n: int, size: int, seed: int, step: int) -> torch.Tensor:
    """The class-prior images of one step: drawn from a generator seeded by (seed, step), so a resumed run draws the
    same ones without any extra checkpoint state."""
    return torch.randint(n, (size,), generator=torch.Generator().manual_seed(seed * 1_000_003 + step + 1))


class _BatchOrder:
    """Index batches from a stream of seeded epoch permutations (a batch may straddle two epochs when N % B != 0)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.buffer = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        while self.buffer.numel() < self.batch_size:
            self.buffer = torch.cat([self.buffer, torch.randperm(self.n, generator=self.generator)])
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        return batch


def _save_checkpoint(
    path: Path, identity: dict[str, Any], step: int, trainable: Trainable, optimizer: torch.optim.Optimizer,
    generator: torch.Generator, batches: _BatchOrder, losses: list[float],
) -> None:
    state = {
        **identity, "step": step, "losses": list(losses), "generator": generator.get_state(),
        "batch_buffer": batches.buffer.clone(), "optimizer": optimizer.state_dict(),
        "parameters": [p.detach().cpu().clone() for p in trainable.parameters],
    }
    atomic_torch_save(state, path)


def _resume(
    path: Path, identity: dict[str, Any], trainable: Trainable, optimizer: torch.optim.Optimizer,
    generator: torch.Generator, batches: _BatchOrder, losses: list[float],
) -> int:
    """Restore a matching checkpoint into the freshly prepared method; return the step to continue from (0: none)."""
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    same_config = FinetuneConfig.from_dict(state["config"]) == FinetuneConfig.from_dict(identity["config"])
    if not same_config or state["prompt"] != identity["prompt"] or state["n_images"] != identity["n_images"]:
        log.warning("ignoring checkpoint %s of a different fine-tuning run", path)
        return 0
    with torch.no_grad():
        for parameter, saved in zip(trainable.parameters, state["parameters"], strict=True):
            parameter.copy_(saved.to(device=parameter.device, dtype=parameter.dtype))
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    batches.buffer = state["batch_buffer"]
    losses[:] = state["losses"]
    log.info("resuming fine-tuning from %s at step %d", path, state["step"])
    return int(state["step"])


def _same_run(meta: dict[str, Any], config: FinetuneConfig, prompt: str) -> bool:
    try:
        return FinetuneConfig.from_dict(meta["config"]) == config and meta.get("prompt") == prompt
    except (ConfigError, KeyError, TypeError):
        return False


def _tokenize(pipe: StableDiffusionPipeline, prompt: str) -> torch.Tensor:
    tokenizer = pipe.tokenizer
    return tokenizer(
        prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def _check_inputs(pipe: StableDiffusionPipeline, images: torch.Tensor, prompt: str) -> None:
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    channels = pipe.vae.config.in_channels
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] == 0:
        raise ConfigError("fine-tuning images must be a non-empty (N, C, H, W) tensor", f"got {_describe(images)}")
    if tuple(images.shape[1:]) != (channels, size, size):
        raise ConfigError(
            f"fine-tuning images have shape {tuple(images.shape[1:])}",
            f"the pipeline needs ({channels}, {size}, {size})",
        )
    if float(images.min()) < -1.0 - 1e-4 or float(images.max()) > 1.0 + 1e-4:
        raise ConfigError(
            f"fine-tuning images range over [{float(images.min()):.3g}, {float(images.max()):.3g}]",
            "scale them to [-1, 1]",
        )
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("the fine-tuning prompt is empty", "pass the domain prompt, e.g. 'photo of <domain>'")


def _describe(value: Any) -> str:
    return f"shape {tuple(value.shape)}" if hasattr(value, "shape") else type(value).__name__


def _base_signature(pipe: StableDiffusionPipeline) -> dict[str, Any]:
    """Architecture facts an artefact must agree on with the pipeline it is loaded into."""
    from .finetune_textual_inversion import placeholder_tokens

    return {
        "unet_parameters": sum(p.numel() for n, p in pipe.unet.named_parameters() if "lora_" not in n),
        "text_hidden_size": int(pipe.text_encoder.config.hidden_size),
        "base_vocab": len(pipe.tokenizer) - len(placeholder_tokens(pipe.tokenizer)),
        "sample_size": int(pipe.unet.config.sample_size),
    }


def _apply(pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> StableDiffusionPipeline:
    if meta.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{folder} has artefact format {meta.get('format')}", f"this code reads {FORMAT_VERSION}")
    _method(meta["method"]).load(pipe, folder, meta)
    return pipe
