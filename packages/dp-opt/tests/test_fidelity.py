"""The released code's conventions: the tokenizer's own start-of-sequence token, generated prompts' newlines,
the in-context examples' class order."""

import string

import numpy as np
import pytest
import torch
from dp_opt.data import Example
from dp_opt.generate import EnsembleVoters
from dp_opt.models import tiny_tokenizer
from dp_opt.pipeline import icl_demos, released_prompt_text
from dp_opt.scoring import ScoringOptions, encode, label_log_probs
from dp_opt.templates import fill_eval_template


@pytest.fixture(scope="module")
def llama_style():
    """A character-level Llama tokenizer (add_bos_token=True, as Llama/Vicuna's) and a tiny Llama over it."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for character in ["▁", *string.ascii_letters, *string.digits, *string.punctuation, "\n"]:
        vocab.setdefault(character, len(vocab))
    tokenizer = LlamaTokenizerFast(vocab=vocab, merges=[], add_bos_token=True)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer


def test_prompts_start_with_bos_where_the_tokenizer_adds_it(llama_style):
    _, tokenizer = llama_style
    text = "Instruction: Classify.\n\nInput: fine\n\nOutput:"
    plain = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert encode(tokenizer, text) == [tokenizer.bos_token_id, *plain]
    # a GPT-2-style byte-level tokenizer (SmolLM2's kind; here the tiny one) adds nothing
    assert encode(tiny_tokenizer(), text) == tiny_tokenizer()(text, add_special_tokens=False)["input_ids"]


def test_label_scores_with_a_llama_tokenizer_condition_on_bos(llama_style):
    model, tokenizer = llama_style
    prompt, text, words = "Classify.", "a fine film", ("negative", "positive")
    scores = label_log_probs(model, tokenizer, prompt, [text], words, ScoringOptions(batch_size=2))

    def by_hand(word, bos):
        context = tokenizer(fill_eval_template(prompt, text, "").rstrip(), add_special_tokens=False)["input_ids"]
        row = tokenizer(fill_eval_template(prompt, text, word), add_special_tokens=False)["input_ids"]
        start = [tokenizer.bos_token_id] if bos else []
        row, offset = start + row, len(start) + len(context)
        with torch.no_grad():
            log_probs = torch.log_softmax(model(torch.tensor([row])).logits[0], dim=-1)
        return float(np.mean([log_probs[p - 1, row[p]].item() for p in range(offset, len(row))]))

    for j, word in enumerate(words):
        assert scores[0, j] == pytest.approx(by_hand(word, bos=True), abs=1e-5)
        assert scores[0, j] != pytest.approx(by_hand(word, bos=False), abs=1e-5)  # <s> changes the scores


def test_meta_prompts_start_with_bos(llama_style):
    model, tokenizer = llama_style
    voters = EnsembleVoters(model, tokenizer, "Classify.", ["good", "bad"], [1, 0], ("negative", "positive"),
                            lambda idx: np.zeros(len(idx), dtype=int), 1.1, torch.Generator().manual_seed(0))
    rows = voters.meta_prompts([np.array([0]), np.array([1])], np.random.default_rng(0))
    assert all(row[0] == tokenizer.bos_token_id and tokenizer.bos_token_id not in row[1:] for row in rows)


def test_generated_prompts_replace_newlines_by_two_spaces():
    tokenizer = tiny_tokenizer()
    tokens = tokenizer(" Classify the\ninput\n\ntext ", add_special_tokens=False)["input_ids"]
    assert released_prompt_text(tokenizer, tokens) == "Classify the  input    text"


def test_icl_demos_keep_the_released_class_order():
    # class 1 appears first in the training set: its two demos come first, then class 0's (no shuffle)
    train = [Example(f"text {i}", 1 - i % 2) for i in range(40)]
    for seed in range(5):
        demos = icl_demos(train, ("negative", "positive"), 5, np.random.default_rng(seed))
        assert [label for _, label in demos] == ["positive", "positive", "negative", "negative"]
        assert len({text for text, _ in demos}) == 4


def test_icl_demos_with_fewer_demos_than_classes_take_distinct_random_classes():
    words = ("description", "entity", "expression", "human", "location", "number")
    train = [Example(f"question {i}", i % 6) for i in range(60)]
    orders = set()
    for seed in range(6):
        labels = [label for _, label in icl_demos(train, words, 5, np.random.default_rng(seed))]
        assert len(labels) == len(set(labels)) == 5
        orders.add(tuple(labels))
    assert len(orders) > 1  # the classes are drawn, not fixed
