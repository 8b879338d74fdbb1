"""Textual Inversion for S2L (Table 1: 9.2K params = 12 CLIP token embeddings; Fig. "extra tokens" sweep).

K placeholder tokens ``<s2l-0> … <s2l-{K-1}>`` are added to the tokenizer and appended to the instance prompt; only
their embedding rows are trained (the whole embedding matrix gets gradients, every other row is restored after each
optimiser step, as in diffusers' textual_inversion example, so weight decay cannot move them either). New rows start
at the mean embedding of the prompt's own tokens. The paper has no TI code; this follows Gal et al. with K vectors.

Artefact: one file per placeholder token in diffusers' Textual-Inversion format, ``learned_embeds/<i>.safetensors``
holding ``{token: embedding row}`` (what diffusers' textual_inversion example writes for one vector); loading is the
stock ``pipe.load_textual_inversion([...files])``, which adds the tokens, resizes the embedding matrix and writes the
rows. Query the result with :func:`shake_to_leak.finetune.finetuned_prompt`, which appends the tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from repro_shared.errors import ConfigError
from safetensors.torch import save_file

from .finetune import FinetuneConfig, Trainable

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

TOKEN_PREFIX = "<s2l-"
EMBEDS_DIR = "learned_embeds"


def embedding_files(folder: Path, count: int) -> list[str]:
    """The artefact's per-token embedding files in token order (for ``pipe.load_textual_inversion``)."""
    return [str(folder / EMBEDS_DIR / f"{i}.safetensors") for i in range(count)]


def placeholder_tokens(tokenizer: Any) -> list[str]:
    """The S2L placeholder tokens a tokenizer already holds, in index order."""
    vocab = tokenizer.get_vocab()
    return sorted((t for t in vocab if t.startswith(TOKEN_PREFIX)), key=lambda t: vocab[t])


def _add_tokens(pipe: StableDiffusionPipeline, tokens: list[str]) -> list[int]:
    if placeholder_tokens(pipe.tokenizer):
        raise ConfigError(
            "the pipeline already holds Textual-Inversion tokens", "fine-tune or load into a fresh base pipeline"
        )
    added = pipe.tokenizer.add_tokens(tokens)
    if added != len(tokens):
        raise ConfigError(f"the tokenizer took {added} of {len(tokens)} placeholder tokens", "use a fresh tokenizer")
    ids = pipe.tokenizer.convert_tokens_to_ids(tokens)
    # the new rows are overwritten at once, so skip transformers' (random) mean-and-covariance initialisation
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer), mean_resizing=False)
    return ids


class TextualInversion:
    def prepare(self, pipe: StableDiffusionPipeline, config: FinetuneConfig, prompt: str) -> Trainable:
        tokens = [f"{TOKEN_PREFIX}{i}>" for i in range(config.ti_tokens)]
        prompt_ids = pipe.tokenizer(prompt, add_special_tokens=False).input_ids
        room = pipe.tokenizer.model_max_length - 2 - len(prompt_ids)  # minus start and end tokens
        if config.ti_tokens > room:
            # truncation would silently drop the last tokens from every prompt, and they would never be trained
            raise ConfigError(
                f"ti_tokens={config.ti_tokens} do not fit after the prompt {prompt!r}",
                f"the tokenizer's {pipe.tokenizer.model_max_length}-token context leaves room for {max(room, 0)}",
            )
        ids = _add_tokens(pipe, tokens)
        for component in (pipe.unet, pipe.text_encoder, pipe.vae):
            component.requires_grad_(False)
        embedding = pipe.text_encoder.get_input_embeddings()
        with torch.no_grad():
            embedding.weight[ids] = embedding.weight[prompt_ids].mean(dim=0)
        embedding.weight.requires_grad_(True)
        original = embedding.weight.detach().clone()
        frozen_rows = torch.ones(original.shape[0], dtype=torch.bool, device=original.device)
        frozen_rows[ids] = False

        def restore_other_rows() -> None:
            with torch.no_grad():
                embedding.weight[frozen_rows] = original[frozen_rows]

        return Trainable(
            parameters=[embedding.weight], train_prompt=f"{prompt} {' '.join(tokens)}", modules=[pipe.text_encoder],
            text_encoder_trainable=True, after_step=restore_other_rows, extra_meta={"tokens": tokens},
            parameter_count=len(tokens) * embedding.weight.shape[1],
        )

    def save(self, pipe: StableDiffusionPipeline, trainable: Trainable, folder: Path) -> None:
        tokens = trainable.extra_meta["tokens"]
        weight = pipe.text_encoder.get_input_embeddings().weight.detach()
        ids = pipe.tokenizer.convert_tokens_to_ids(tokens)
        (folder / EMBEDS_DIR).mkdir()
        for i, (token, index) in enumerate(zip(tokens, ids, strict=True)):
            save_file({token: weight[index].contiguous().cpu()}, str(folder / EMBEDS_DIR / f"{i}.safetensors"))

    def load(self, pipe: StableDiffusionPipeline, folder: Path, meta: dict[str, Any]) -> None:
        if placeholder_tokens(pipe.tokenizer):
            raise ConfigError(
                "the pipeline already holds Textual-Inversion tokens", "load into a fresh base pipeline"
            )
        pipe.load_textual_inversion(embedding_files(folder, len(meta["tokens"])))
