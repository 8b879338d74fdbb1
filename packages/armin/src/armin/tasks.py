"""The paper's tasks: copy, repeat copy, associative recall, priority sort (NTM suite), pixel-by-pixel digit
classification (sequential and permuted) and character-level language modelling.

Algorithmic generators follow the released code's NTM datasets (``torch.randint`` upper bounds are exclusive), with
one sequence length per mini-batch. Inputs are (T, B, X) float tensors; during the answer phase the model is fed zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from repro_shared.errors import ConfigError
from torch import Tensor

ALGORITHMIC_TASKS = ("copy", "repeat", "recall", "sort")


@dataclass(frozen=True)
class AlgorithmicBatch:
    """Model inputs (T_in + T_out, B, X) and binary targets (T_out, B, Y) for the answer phase."""

    inputs: Tensor
    targets: Tensor

    @property
    def answer_steps(self) -> int:
        return self.targets.shape[0]


@dataclass(frozen=True)
class TaskConfig:
    """Sizes of an algorithmic task (the released code's JSON + CLI overrides by default)."""

    name: str = "copy"  # copy | repeat | recall | sort
    width: int = 8  # bits per vector (recall: 6)
    min_length: int = 1  # copy/repeat: sequence length range [min, max); recall: item length is min_length
    max_length: int = 50
    min_repeats: int = 1  # repeat copy: repeats in [min, max)
    max_repeats: int = 10
    min_items: int = 2  # associative recall: items in [min, max)
    max_items: int = 6
    sort_input: int = 40  # priority sort: 40 vectors in, the top 30 by priority out
    sort_output: int = 30
    sort_column_bug: bool = False  # reproduce the released code's column-wise sort (wrong targets)

    def __post_init__(self) -> None:
        if self.name not in ALGORITHMIC_TASKS:
            raise ConfigError(f"unknown task {self.name!r}", f"use one of {', '.join(ALGORITHMIC_TASKS)}")
        if self.width < 1:
            raise ConfigError(f"task width={self.width}: must be at least 1")
        for low, high in (("min_length", "max_length"), ("min_repeats", "max_repeats"), ("min_items", "max_items")):
            if not 1 <= getattr(self, low) < getattr(self, high):
                raise ConfigError(f"task {low}={getattr(self, low)}, {high}={getattr(self, high)}: need "
                                  f"1 <= {low} < {high} (the upper bound is exclusive, as torch.randint's)")
        if self.min_items < 2:
            raise ConfigError(f"task min_items={self.min_items}: recall needs at least 2 items (query is not last)")
        if not 1 <= self.sort_output <= self.sort_input:
            raise ConfigError(f"task sort_output={self.sort_output}: need 1 <= sort_output <= sort_input "
                              f"({self.sort_input})")

    @property
    def input_size(self) -> int:
        return self.width + 1 if self.name == "sort" else self.width + 2

    @property
    def output_size(self) -> int:
        return self.width + 1 if self.name == "repeat" else self.width


def _bits(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randint(0, 2, shape, generator=generator).float()


def _with_answer_phase(inputs: Tensor, targets: Tensor) -> AlgorithmicBatch:
    """Append zero inputs for the answer steps."""
    zeros = inputs.new_zeros(targets.shape[0], inputs.shape[1], inputs.shape[2])
    return AlgorithmicBatch(torch.cat([inputs, zeros]), targets)


def _delimited(sequence: Tensor, end_value: float) -> Tensor:
    """Start flag (channel W), the sequence, then the end channel (W + 1) set to ``end_value`` (1, or the repeats)."""
    length, batch, width = sequence.shape
    inputs = sequence.new_zeros(length + 2, batch, width + 2)
    inputs[0, :, width] = 1.0
    inputs[1:length + 1, :, :width] = sequence
    inputs[length + 1, :, width + 1] = end_value
    return inputs


def copy_batch(config: TaskConfig, batch: int, generator: torch.Generator) -> AlgorithmicBatch:
    """Copy: start delimiter, L random vectors, end delimiter; reproduce the L vectors."""
    length = int(torch.randint(config.min_length, config.max_length, (1,), generator=generator))
    sequence = _bits((length, batch, config.width), generator)
    return _with_answer_phase(_delimited(sequence, end_value=1.0), sequence)


def normalised_repeats(repeats: int, low: int, high: int) -> float:
    """The repeat count as fed to the model, with the released code's constants (``repeatcopy.py``'s ``normalise``):
    (r − (high − low)/2) / √(((high − low + 1)² − 1)/12), e.g. (r − 4.5)/2.87 for low 1, high 10 (exclusive).

    These are not the mean and std of the repeats actually drawn (uniform on [low, high): 5 and 2.58 there).
    """
    mean = (high - low) / 2
    std = (((high - low + 1) ** 2 - 1) / 12) ** 0.5
    return (repeats - mean) / std


def repeat_copy_batch(config: TaskConfig, batch: int, generator: torch.Generator) -> AlgorithmicBatch:
    """Repeat copy: sequence then a normalised repeat count; output the sequence repeated, then an end flag."""
    length = int(torch.randint(config.min_length, config.max_length, (1,), generator=generator))
    repeats = int(torch.randint(config.min_repeats, config.max_repeats, (1,), generator=generator))
    width = config.width
    sequence = _bits((length, batch, width), generator)
    inputs = _delimited(sequence, end_value=normalised_repeats(repeats, config.min_repeats, config.max_repeats))
    targets = torch.zeros(length * repeats + 1, batch, width + 1)
    targets[:-1, :, :width] = sequence.repeat(repeats, 1, 1)
    targets[-1, :, width] = 1.0
    return _with_answer_phase(inputs, targets)


def associative_recall_batch(config: TaskConfig, batch: int, generator: torch.Generator) -> AlgorithmicBatch:
    """Associative recall: items (delimiter + item_len vectors), a query item; output the item after the query."""
    items = int(torch.randint(config.min_items, config.max_items, (1,), generator=generator))
    item_length, width = config.min_length, config.width
    contents = _bits((items, item_length, batch, width), generator)
    query = int(torch.randint(0, items - 1, (1,), generator=generator))  # never the last item: it has no successor
    block = item_length + 1
    inputs = torch.zeros(block * (items + 1) + 1, batch, width + 2)
    for item in range(items):
        inputs[item * block, :, width] = 1.0
        inputs[item * block + 1:(item + 1) * block, :, :width] = contents[item]
    inputs[items * block, :, width + 1] = 1.0
    inputs[items * block + 1:(items + 1) * block, :, :width] = contents[query]
    inputs[-1, :, width + 1] = 1.0
    return _with_answer_phase(inputs, contents[query + 1])


def priority_sort_batch(config: TaskConfig, batch: int, generator: torch.Generator) -> AlgorithmicBatch:
    """Priority sort: vectors with a priority in U[-1, 1); output the ``sort_output`` highest-priority vectors in
    descending priority order. ``sort_column_bug`` reproduces the released code (every column sorted on its own)."""
    width = config.width
    inputs = torch.zeros(config.sort_input, batch, width + 1)
    inputs[:, :, :width] = _bits((config.sort_input, batch, width), generator)
    inputs[:, :, width] = torch.rand(config.sort_input, batch, generator=generator) * 2 - 1
    targets = sort_by_priority(inputs, config.sort_output, config.sort_column_bug)
    return _with_answer_phase(inputs, targets)


def sort_by_priority(inputs: Tensor, keep: int, column_bug: bool = False) -> Tensor:
    """Rows of (T, B, width+1) sorted by their last column (priority), descending; the first ``keep`` rows' bits."""
    if column_bug:
        return torch.sort(inputs, dim=0, descending=True).values[:keep, :, :-1]
    order = torch.argsort(inputs[:, :, -1], dim=0, descending=True)[:keep]
    return torch.gather(inputs, 0, order.unsqueeze(-1).expand(-1, -1, inputs.shape[2]))[:, :, :-1]


GENERATORS = {"copy": copy_batch, "repeat": repeat_copy_batch, "recall": associative_recall_batch,
              "sort": priority_sort_batch}


def algorithmic_batch(config: TaskConfig, batch: int, generator: torch.Generator) -> AlgorithmicBatch:
    return GENERATORS[config.name](config, batch, generator)


# --- pixel-by-pixel classification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PixelSplits:
    """Pixel sequences (N, T, 1) in [0, 1] with labels, split train/validation/test."""

    train: tuple[Tensor, Tensor]
    validation: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    source: str


def pixel_permutation(length: int, seed: int = 1) -> np.ndarray:
    """The one fixed pixel permutation of permuted MNIST (numpy seed 1, as the released code)."""
    return np.random.RandomState(seed).permutation(length)


MNIST_HUB_ID = "ylecun/mnist"


def mnist_test_images():
    """MNIST's official 10k test split from the Hub (``repro_shared``'s ``mnist`` set is the 60k train split)."""
    from repro_shared.data import ImageDataset, load_hub_dataset

    table = load_hub_dataset(MNIST_HUB_ID, split="test")
    images = np.stack([np.asarray(image, dtype=np.uint8) for image in table["image"]]) / np.float32(255.0)
    return ImageDataset(images.astype(np.float32), np.asarray(table["label"], dtype=np.int64), "mnist-test",
                        f"Hugging Face {MNIST_HUB_ID}, test split")


def pixel_sequences(dataset: str, permuted: bool, split_seed: int = 0) -> PixelSplits:
    """Images of a bundled set (``digits`` 8×8, ``mnist5k`` 28×28, ``mnist``) as pixel sequences.

    ``mnist``: the official test split, and the train split cut 90/10 into train / validation (54k / 6k, as the
    released code); the bundled sets have no test split and are cut 80/10/10.
    """
    from repro_shared.data import load_image_dataset

    images = load_image_dataset(dataset)
    return split_pixel_sequences(images, permuted, split_seed, mnist_test_images() if dataset == "mnist" else None)


def split_pixel_sequences(images, permuted: bool, split_seed: int = 0, test_images=None) -> PixelSplits:
    """Flatten images to (N, T, 1) pixel sequences (one fixed permutation if ``permuted``) and split them at random:
    train / validation 90/10 with a separate ``test_images`` set, else train / validation / test 80/10/10."""
    flatten = lambda dataset: dataset.images.reshape(len(dataset), -1)  # noqa: E731
    pixels = flatten(images)
    permutation = pixel_permutation(pixels.shape[1]) if permuted else slice(None)
    order = np.random.RandomState(split_seed).permutation(len(images))
    fractions = (0.9, 0.1) if test_images is not None else (0.8, 0.1)
    n_train, n_val = int(fractions[0] * len(order)), int(fractions[1] * len(order))
    parts = np.split(order, [n_train, n_train + n_val])
    as_pair = lambda data, index: (torch.from_numpy(flatten(data)[index][:, permutation]).float().unsqueeze(-1),  # noqa: E731
                                   torch.from_numpy(data.labels[index]))
    test = as_pair(test_images, slice(None)) if test_images is not None else as_pair(images, parts[2])
    source = images.source + (f" + {test_images.source}" if test_images is not None else "")
    return PixelSplits(as_pair(images, parts[0]), as_pair(images, parts[1]), test, source=source)


# --- character-level language modelling ------------------------------------------------------------------------


@dataclass(frozen=True)
class CharCorpus:
    """A character corpus encoded as int64 ids, split contiguously into train/validation/test."""

    train: Tensor
    validation: Tensor
    test: Tensor
    vocabulary: str
    source: str


def stdlib_text() -> tuple[str, str]:
    """English help text that ships with CPython (``pydoc_data.topics``), in a fixed order."""
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics)), "CPython pydoc_data.topics"


def char_corpus(max_chars: int | None = None, fractions: tuple[float, float] = (0.9, 0.05)) -> CharCorpus:
    """The stdlib corpus (first ``max_chars`` characters), vocabulary from the whole text, split 90/5/5."""
    text, source = stdlib_text()
    vocabulary = "".join(sorted(set(text)))
    if max_chars is not None:
        text = text[:max_chars]
    index = {char: i for i, char in enumerate(vocabulary)}
    ids = torch.tensor([index[char] for char in text], dtype=torch.long)
    n_train, n_val = int(fractions[0] * len(ids)), int(fractions[1] * len(ids))
    return CharCorpus(ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:], vocabulary, source)


def batchify(ids: Tensor, streams: int) -> Tensor:
    """Cut a 1-D id sequence into ``streams`` contiguous streams, shape (T, streams) (trailing remainder dropped)."""
    length = len(ids) // streams
    return ids[:length * streams].view(streams, length).t().contiguous()
