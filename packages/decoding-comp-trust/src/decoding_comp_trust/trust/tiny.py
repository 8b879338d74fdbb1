"""A tiny random Llama and byte-level tokenizer, built offline in a second (smoke runs and tests; plumbing only)."""

from __future__ import annotations

import os
from pathlib import Path

from repro_shared.io import atomic_directory


def build_tiny_model(folder: str | os.PathLike, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Save a random `LlamaForCausalLM` (~0.1 M parameters) and a byte-level BPE tokenizer with no merges."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    if (folder / "config.json").exists() and (folder / "tokenizer.json").exists():
        return folder
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(specials + sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="<pad>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=32768, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with atomic_directory(folder, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder
