"""Batching helpers for causal LMs whose prompts share a token prefix (no paper-specific logic).

A batch of tokenised prompts is run as one shared prefix (computed once, its KV cache repeated over the batch) plus
each row's own suffix, left-padded; the attention mask marks the padding and the position ids skip it, so the padding
between prefix and suffix shifts no position.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Number of leading token ids shared by every row."""
    length = min(len(row) for row in rows)
    first = rows[0]
    for index in range(length):
        token = first[index]
        if any(row[index] != token for row in rows):
            return index
    return length


def cache_keyword(model: Any) -> str:
    """The forward/generate argument that takes a KV cache: transformers 5 renamed ``past_key_values`` to ``cache``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def left_padded_suffixes(suffixes: Sequence[Sequence[int]], pad_id: int, prefix_length: int) -> tuple[Any, Any, Any]:
    """Input ids, attention mask and position ids (LongTensors) of rows that follow a ``prefix_length``-token prefix."""
    import torch

    width = max(len(suffix) for suffix in suffixes)
    input_ids = torch.full((len(suffixes), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(suffixes), width), dtype=torch.long)
    for index, suffix in enumerate(suffixes):
        input_ids[index, width - len(suffix):] = torch.tensor(list(suffix), dtype=torch.long)
        mask[index, width - len(suffix):] = 1
    # positions continue the prefix and skip the padding: prefix_length + 0, 1, ... over the real tokens
    position_ids = (prefix_length + mask.cumsum(dim=1) - 1).clamp(min=0)
    return input_ids, mask, position_ids
