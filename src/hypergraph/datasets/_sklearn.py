"""Datasets bundled with scikit-learn (no download)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.registry import register
from hypergraph.spaces import Float

__all__ = ["DigitsDataset"]

_FRACTION = {"val_fraction": Float(default=0.15, low=0.01, high=0.5,
                                   help="share of rows held out for validation"),
             "test_fraction": Float(default=0.2, low=0.01, high=0.5,
                                    help="share of rows held out for testing")}


@register("dataset", "digits")
class DigitsDataset(Dataset):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1]."""

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "features:image", "size:small"})
    space = dict(_FRACTION)

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.2) -> None:
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        split = stratified_split(y, self.val_fraction, self.test_fraction, rng)
        return in_memory("digits", X / 16.0, y.astype(np.int64), split, "classification", 10)
