"""Batched causal-LM forward passes that share one prompt prefix through its KV cache.

Every row of a batch is the tokenisation of its own full text; the token prefix common to all rows is run once
(batch 1), its KV cache is repeated over the batch, and the rest of each row follows, left-padded, with an
attention mask and explicit position ids (so padding between prefix and suffix shifts no position).
``BatchState`` keeps the cache so that a token appended to every row costs one incremental step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from repro_shared.lm import cache_keyword, common_prefix_length, left_padded_suffixes


def _output_cache(output) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@dataclass
class BatchState:
    """A batch after a forward pass: its KV cache, attention mask and the next position of every row."""

    cache: Any
    attention_mask: torch.Tensor
    next_positions: torch.Tensor


def length_buckets(lengths: Sequence[int], max_padding: float) -> list[list[int]]:
    """Row indices grouped by length (sorted) so that each group's padding is at most ``max_padding`` of its tokens.

    Left padding to the longest row costs compute on a CPU (every padded position goes through every layer); meta-
    prompts of J voters differ in length by up to 2x, so one batch can waste a third of its work.
    """
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    buckets: list[list[int]] = []
    for index in reversed(order):  # longest first: a bucket's width is its first row's length
        bucket = buckets[-1] if buckets else None
        if bucket is not None:
            width, tokens = lengths[bucket[0]], sum(lengths[i] for i in bucket) + lengths[index]
            if width * (len(bucket) + 1) - tokens <= max_padding * tokens:
                bucket.append(index)
                continue
        buckets.append([index])
    return buckets


@torch.no_grad()
def forward_with_shared_prefix(model, rows: Sequence[Sequence[int]], pad_id: int, logits_to_keep: int = 1,
                               min_suffix: int = 1, use_prefix_cache: bool = True,
                               keep_state: bool = False, max_padding: float | None = None
                               ) -> tuple[torch.Tensor, BatchState | None]:
    """Logits (B, logits_to_keep, V) of the last positions of each (left-padded) row, and optionally the state.

    ``min_suffix`` leaves at least that many tokens of every row outside the shared prefix (the positions whose
    logits are kept must be in the suffix). ``use_prefix_cache=False`` runs the full rows (the reference path).
    ``max_padding`` (without ``keep_state``) splits the rows into length buckets (``length_buckets``) that reuse
    the one prefix cache; the logits are those of the single batch up to float rounding.
    """
    device = next(model.parameters()).device
    keyword = cache_keyword(model)
    prefix_length = 0
    if use_prefix_cache and len(rows) > 1:
        shortest = min(len(row) for row in rows)
        prefix_length = max(0, min(common_prefix_length(rows), shortest - max(min_suffix, logits_to_keep)))
    if max_padding is not None and not keep_state and len(rows) > 1:
        return _bucketed_forward(model, rows, pad_id, logits_to_keep, prefix_length, max_padding), None
    input_ids, suffix_mask, position_ids = (tensor.to(device) for tensor in left_padded_suffixes(
        [row[prefix_length:] for row in rows], pad_id, prefix_length))
    attention_mask = suffix_mask
    kwargs: dict[str, Any] = {}
    if prefix_length > 0:
        prefix = torch.tensor([list(rows[0][:prefix_length])], dtype=torch.long, device=device)
        cache = _output_cache(model(input_ids=prefix, use_cache=True, logits_to_keep=1))
        cache.batch_repeat_interleave(len(rows))
        kwargs[keyword] = cache
        attention_mask = torch.cat([torch.ones((len(rows), prefix_length), dtype=torch.long, device=device),
                                    suffix_mask], dim=1)
    use_cache = keep_state or prefix_length > 0
    output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   logits_to_keep=logits_to_keep, use_cache=use_cache, **kwargs)
    state = None
    if keep_state:
        state = BatchState(_output_cache(output), attention_mask, position_ids[:, -1] + 1)
    return output.logits, state


def _bucketed_forward(model, rows: Sequence[Sequence[int]], pad_id: int, logits_to_keep: int, prefix_length: int,
                      max_padding: float) -> torch.Tensor:
    """``forward_with_shared_prefix`` over length buckets: the prefix runs once, its cache is copied per bucket."""
    device = next(model.parameters()).device
    prefix_cache = None
    if prefix_length > 0:
        prefix = torch.tensor([list(rows[0][:prefix_length])], dtype=torch.long, device=device)
        prefix_cache = _output_cache(model(input_ids=prefix, use_cache=True, logits_to_keep=1))
    buckets = length_buckets([len(row) - prefix_length for row in rows], max_padding)
    logits: torch.Tensor | None = None
    for bucket in buckets:
        input_ids, mask, position_ids = left_padded_suffixes([rows[index][prefix_length:] for index in bucket],
                                                              pad_id, prefix_length)
        kwargs: dict[str, Any] = {}
        attention_mask = mask.to(device)
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(bucket))
            kwargs[cache_keyword(model)] = cache
            attention_mask = torch.cat([torch.ones((len(bucket), prefix_length), dtype=torch.long, device=device),
                                        attention_mask], dim=1)
        output = model(input_ids=input_ids.to(device), attention_mask=attention_mask,
                       position_ids=position_ids.to(device), logits_to_keep=logits_to_keep,
                       use_cache=prefix_cache is not None, **kwargs)
        if logits is None:
            logits = output.logits.new_empty((len(rows), *output.logits.shape[1:]))
        logits[torch.tensor(bucket, device=logits.device)] = output.logits
    assert logits is not None
    return logits


@torch.no_grad()
def append_token(model, state: BatchState, token_id: int) -> torch.Tensor:
    """Append the same token to every row of the batch (one incremental step); last-position logits (B, V)."""
    batch = state.attention_mask.shape[0]
    device = state.attention_mask.device
    input_ids = torch.full((batch, 1), token_id, dtype=torch.long, device=device)
    state.attention_mask = torch.cat([state.attention_mask, torch.ones((batch, 1), dtype=torch.long,
                                                                       device=device)], dim=1)
    output = model(input_ids=input_ids, attention_mask=state.attention_mask,
                   position_ids=state.next_positions[:, None], use_cache=True,
                   **{cache_keyword(model): state.cache})
    state.cache = _output_cache(output)
    state.next_positions = state.next_positions + 1
    return output.logits[:, -1]


@torch.no_grad()
def continue_rows(model, state: BatchState, continuations: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Logits (B, width, V) of each row's own continuation tokens run after a copy of ``state`` (left unchanged).

    Continuations of different lengths are right-padded: a padded position comes after every real one, so under
    the causal mask it changes no logit that is read (positions ``0 .. len(continuation) - 1`` of each row).
    """
    batch, width = state.attention_mask.shape[0], max(len(tokens) for tokens in continuations)
    device = state.attention_mask.device
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long, device=device)
    for index, tokens in enumerate(continuations):
        input_ids[index, :len(tokens)] = torch.tensor(list(tokens), dtype=torch.long, device=device)
    attention_mask = torch.cat([state.attention_mask, torch.ones((batch, width), dtype=torch.long, device=device)],
                               dim=1)
    position_ids = state.next_positions[:, None] + torch.arange(width, device=device)[None, :]
    output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True,
                   **{cache_keyword(model): copy.deepcopy(state.cache)})
    return output.logits
