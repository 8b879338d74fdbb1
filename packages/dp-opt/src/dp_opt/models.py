"""Language models by name: any causal LM through ``repro_shared.models``, or ``tiny-random[:seed]`` for smoke runs.

``tiny-random`` is a 2-layer Llama with random weights and a byte-level BPE tokenizer trained in-process on the
templates, so smoke tests exercise every code path offline in seconds. Its outputs mean nothing.
"""

from __future__ import annotations

from functools import lru_cache

import torch

TINY_PREFIX = "tiny-random"


@lru_cache(maxsize=1)
def tiny_tokenizer():
    """A byte-level BPE tokenizer (vocabulary 400) trained on the templates; pad/eos are special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .templates import BACKWARD_MESSAGES, BACKWARD_TEMPLATE, EVAL_TEMPLATE, TASKS

    corpus = [BACKWARD_TEMPLATE, EVAL_TEMPLATE, *BACKWARD_MESSAGES]
    corpus += [t.init_instruction + " " + " ".join(t.label_words) for t in TASKS.values()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>")


def tiny_random_lm(seed: int = 0):
    """A 2-layer random Llama (hidden 64) over ``tiny_tokenizer``, deterministic in ``seed``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    torch.random.set_rng_state(generator_state)
    return model, tokenizer


def load_lm(name: str, device: torch.device, dtype: torch.dtype):
    """(model, tokenizer) by name: ``tiny-random[:seed]``, an alias such as ``smollm2-135m-instruct``, a Hub id or a
    folder. The tokenizer gets a pad token (eos) when it has none."""
    if name.startswith(TINY_PREFIX):
        seed = int(name.split(":", 1)[1]) if ":" in name else 0
        model, tokenizer = tiny_random_lm(seed)
        return model.to(device=device, dtype=dtype), tokenizer
    from repro_shared.models import load_causal_lm

    model, tokenizer = load_causal_lm(name, device=device, dtype=dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_tokenizer(name: str):
    """Only the tokenizer (for cheap checks before any model is loaded)."""
    if name.startswith(TINY_PREFIX):
        return tiny_tokenizer()
    from repro_shared.models import resolve_model
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name).location)
