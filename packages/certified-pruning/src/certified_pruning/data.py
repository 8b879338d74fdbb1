"""Datasets: the bundled 8×8 scikit-learn digits (quick/smoke scale), split with a fixed seed, as (N, 1, H, W) tensors.

The paper's CIFAR-10 / SVHN / FashionMNIST are not loaded by this package yet (see README, "Not yet implemented").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from repro_shared.data import load_image_dataset


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


def load_split(name: str = "digits", test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A stratified train/test split of a bundled image set (digits: 1,437 train / 360 test)."""
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
