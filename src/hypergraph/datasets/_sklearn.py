"""Datasets bundled with scikit-learn (no download)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.datasets._prep import FRACTIONS, STANDARDIZE, standardize, standardize_targets
from hypergraph.registry import register

__all__ = [
    "BreastCancerDataset",
    "DiabetesDataset",
    "DigitsDataset",
    "IrisDataset",
    "WineDataset",
]

@register("dataset", "digits")
class DigitsDataset(Dataset):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1]."""

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "features:image", "size:small"})
    space = dict(FRACTIONS)

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.2) -> None:
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        split = stratified_split(y, self.val_fraction, self.test_fraction, rng)
        return in_memory("digits", X / 16.0, y.astype(np.int64), split, "classification", 10)


class _TabularSklearnDataset(Dataset):
    """A scikit-learn tabular dataset, split by the fractions and standardised on train rows.

    Subclasses set ``loader`` (a ``sklearn.datasets.load_*`` function name) and ``task``.
    """

    loader: ClassVar[str] = ""
    task: ClassVar[str] = "classification"
    space = {**FRACTIONS, "standardize": STANDARDIZE}

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.2,
                 standardize: bool = True) -> None:
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.standardize = standardize

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        import sklearn.datasets

        load: Callable[..., Any] = getattr(sklearn.datasets, self.loader)
        X, y = load(return_X_y=True)
        classification = self.task == "classification"
        split = stratified_split(y, self.val_fraction, self.test_fraction, rng,
                                 stratify=classification)
        if self.standardize:
            X = standardize(X, split)
        if classification:
            y = y.astype(np.int64)
            return in_memory(self.name, X, y, split, "classification", int(y.max()) + 1)
        y = standardize_targets(y, split) if self.standardize else y.astype(np.float32)
        return in_memory(self.name, X, y, split, "regression", 0)


@register("dataset", "iris")
class IrisDataset(_TabularSklearnDataset):
    """Fisher's iris flowers: 150 rows, 4 features, 3 classes."""

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "size:tiny"})
    loader = "load_iris"


@register("dataset", "wine")
class WineDataset(_TabularSklearnDataset):
    """Wine recognition: 178 rows, 13 chemical features, 3 cultivars."""

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "size:tiny"})
    loader = "load_wine"


@register("dataset", "breast_cancer")
class BreastCancerDataset(_TabularSklearnDataset):
    """Wisconsin breast cancer: 569 rows, 30 features, 2 classes (malignant, benign)."""

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "size:small"})
    loader = "load_breast_cancer"


@register("dataset", "diabetes")
class DiabetesDataset(_TabularSklearnDataset):
    """Diabetes progression (regression): 442 rows, 10 features, one target.

    With ``standardize`` both features and target are scaled by training-row statistics, so
    losses and metrics are in target standard deviations.
    """

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:regression", "features:vector", "size:tiny"})
    loader = "load_diabetes"
    task = "regression"
