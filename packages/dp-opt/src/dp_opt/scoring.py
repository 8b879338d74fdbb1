"""Label scoring of the forward template F(x, π) (released code ``utils/evaluate.py``).

The score of a label word is the mean log-probability of its tokens after ``F(x, π, '')`` (which ends in "Output:");
the prediction is the argmax over label words. Each candidate uses its own label-token count; the released code's
batch-wide count (padded candidate length minus padded context length) is available as ``batch_wide_label_length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .lm import continue_rows, forward_with_shared_prefix
from .templates import fill_eval_template


@dataclass(frozen=True)
class ScoringOptions:
    batch_size: int = 16
    item_names: bool = True  # False: DLN-1's template without "Instruction:"/"Input:"
    batch_wide_label_length: bool = False  # the released code's quirk (differs when label words differ in length)
    use_prefix_cache: bool = True


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of a whole prompt with the tokenizer's own start-of-sequence convention.

    The released code tokenises with the default ``add_special_tokens=True``: Llama/Vicuna tokenizers prepend
    ``<s>`` (``add_bos_token``), GPT-2-style ones such as SmolLM2's add nothing. A trailing end-of-sequence token
    (``add_eos_token``, off for causal LMs' prompts) is dropped: every prompt here is continued.
    """
    ids = tokenizer(text)["input_ids"]
    if getattr(tokenizer, "add_eos_token", False) and ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return ids


def label_log_probs(model, tokenizer, prompt: str, texts: Sequence[str], label_words: Sequence[str],
                    options: ScoringOptions = ScoringOptions()) -> np.ndarray:
    """(len(texts), len(label_words)) mean token log-probabilities of each label word after F(x, π).

    Each record's context F(x, π, '') runs once and its KV cache serves every label word (``_scores_reusing_context``);
    the released code's batch-wide label length, and any record whose candidates do not begin with its context's
    tokens (a BPE merge across the boundary), take the path that runs every candidate in full.
    """
    if not options.batch_wide_label_length:
        return _scores_reusing_context(model, tokenizer, prompt, texts, label_words, options)
    return _scores_of_full_candidates(model, tokenizer, prompt, texts, label_words, options)


def _scores_of_full_candidates(model, tokenizer, prompt: str, texts: Sequence[str], label_words: Sequence[str],
                               options: ScoringOptions) -> np.ndarray:
    """Label scores with every (record, label word) candidate run in full (the released code's way)."""
    rows, label_lengths, context_lengths = [], [], []
    for text in texts:
        context = encode(tokenizer, fill_eval_template(prompt, text, "", options.item_names).rstrip())
        for word in label_words:
            candidate = encode(tokenizer, fill_eval_template(prompt, text, word, options.item_names))
            rows.append(candidate)
            context_lengths.append(len(context))
            label_lengths.append(len(candidate) - len(context))
    if min(label_lengths) < 1:
        raise ValueError("a label word tokenises to nothing after the template")
    scores = np.zeros(len(rows))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(rows), options.batch_size):
        batch = slice(start, start + options.batch_size)
        scores[batch] = _score_batch(model, rows[batch], label_lengths[batch], context_lengths[batch], pad_id,
                                     options)
    return scores.reshape(len(texts), len(label_words))


def _scores_reusing_context(model, tokenizer, prompt: str, texts: Sequence[str], label_words: Sequence[str],
                            options: ScoringOptions) -> np.ndarray:
    """Label scores from one forward of each record's context, its KV cache continued by each label word."""
    contexts, labels = [], []  # per record: context ids; per record and word: the label's token ids
    for text in texts:
        context = encode(tokenizer, fill_eval_template(prompt, text, "", options.item_names).rstrip())
        candidates = [encode(tokenizer, fill_eval_template(prompt, text, word, options.item_names))
                      for word in label_words]
        contexts.append(context)
        labels.append([c[len(context):] if c[:len(context)] == context else None for c in candidates])
    if any(len(tokens) < 1 for row in labels for tokens in row if tokens is not None):
        raise ValueError("a label word tokenises to nothing after the template")
    scores = np.zeros((len(texts), len(label_words)))
    regular = [i for i, row in enumerate(labels) if all(tokens is not None for tokens in row)]
    irregular = [i for i in range(len(texts)) if i not in set(regular)]
    if irregular:
        scores[irregular] = _scores_of_full_candidates(model, tokenizer, prompt, [texts[i] for i in irregular],
                                                       label_words, options)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # batch_size records per context forward (one row each; the label words continue the same rows)
    for start in range(0, len(regular), options.batch_size):
        batch = regular[start:start + options.batch_size]
        logits, state = forward_with_shared_prefix(model, [contexts[i] for i in batch], pad_id, keep_state=True,
                                                   use_prefix_cache=options.use_prefix_cache)
        first = torch.log_softmax(logits[:, -1].float(), dim=-1)  # predicts every label's first token
        for j in range(len(label_words)):
            rest = None
            if any(len(labels[i][j]) > 1 for i in batch):  # tokens 2.. are predicted after tokens 1..
                rest = torch.log_softmax(continue_rows(model, state, [labels[i][j][:-1] for i in batch],
                                                       pad_id).float(), dim=-1)
            for row, i in enumerate(batch):
                tokens = labels[i][j]
                values = [first[row, tokens[0]]]
                values += [rest[row, k, token] for k, token in enumerate(tokens[1:])] if rest is not None else []
                scores[i, j] = float(torch.stack(values).mean())
    return scores


def _score_batch(model, rows, label_lengths, context_lengths, pad_id, options: ScoringOptions) -> np.ndarray:
    if options.batch_wide_label_length:
        wide = max(len(row) for row in rows) - max(context_lengths)
        label_lengths = [max(1, min(wide, len(row) - 1)) for row in rows]
    keep = max(label_lengths) + 1
    logits, _ = forward_with_shared_prefix(model, rows, pad_id, logits_to_keep=keep, min_suffix=keep,
                                        use_prefix_cache=options.use_prefix_cache)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    scores = []
    for index, (row, length) in enumerate(zip(rows, label_lengths, strict=True)):
        targets = torch.tensor(row[-length:], device=log_probs.device)
        # logits at column c predict the token at column c + 1; rows end at the last column (left padding)
        predicting = log_probs[index, keep - 1 - length: keep - 1]
        scores.append(predicting.gather(1, targets[:, None]).mean().item())
    return np.array(scores)


def predict(model, tokenizer, prompt: str, texts: Sequence[str], label_words: Sequence[str],
            options: ScoringOptions = ScoringOptions()) -> np.ndarray:
    """Predicted class index of each text under prompt π (argmax of the label scores)."""
    return label_log_probs(model, tokenizer, prompt, texts, label_words, options).argmax(axis=1)


def accuracy(model, tokenizer, prompt: str, examples, label_words: Sequence[str],
             options: ScoringOptions = ScoringOptions()) -> tuple[float, int]:
    """(accuracy, number correct) of prompt π on examples (objects with .text and .label)."""
    correct = int(correct_items(model, tokenizer, prompt, examples, label_words, options).sum())
    return correct / max(1, len(examples)), correct


def correct_items(model, tokenizer, prompt: str, examples, label_words: Sequence[str],
                  options: ScoringOptions = ScoringOptions()) -> np.ndarray:
    """Per example, whether prompt π classifies it correctly (bool array; the paired input of item bootstraps)."""
    predictions = predict(model, tokenizer, prompt, [e.text for e in examples], label_words, options)
    return np.array([int(p) == e.label for p, e in zip(predictions, examples, strict=True)], dtype=bool)
