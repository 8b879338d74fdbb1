"""A tiny random Llama with a locally trained byte-level BPE tokenizer (smoke scale and tests; built in seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .calibration import load_texts


def tiny_tokenizer(vocab_size: int = 256) -> Any:
    """Byte-level BPE trained on the seeded synthetic text; with a chat-free fallback template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(load_texts("synthetic", seed=0)[:500], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>")


def tiny_llama(seed: int = 0, *, hidden: int = 64, intermediate: int = 128, layers: int = 2,
               vocab_size: int = 512) -> Any:
    """A random LlamaForCausalLM (fp32, eval mode) from config; same seed → same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=False)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def save_tiny_model(folder: str | Path, seed: int = 0) -> Path:
    """Write the tiny model and tokenizer to ``folder`` (what the smoke config compresses)."""
    folder = Path(folder)
    tokenizer = tiny_tokenizer()
    model = tiny_llama(seed, vocab_size=len(tokenizer))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
