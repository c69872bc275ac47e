"""Dataset base class, the bundle it yields, and the split helper."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hypergraph.base import Module
from hypergraph.data import ArrayStore, DataStore
from hypergraph.datasets._prep import check_float32
from hypergraph.exceptions import DataError

__all__ = ["Dataset", "DatasetBundle", "stratified_split"]


@dataclass
class DatasetBundle:
    """What a dataset yields: a store plus per-row labels and splits.

    Attributes:
        store: Features of every row.
        y: ``[rows]`` labels (``int64`` classes or ``float32`` targets).
        split: ``int8[rows]``: 0 train, 1 validation, 2 test.
        task: ``"classification"`` or ``"regression"``.
        num_classes: Classes for classification (0 for regression).
        name: Dataset name.
        attrs: Optional per-row categorical attributes (for attribute hyperedges).
    """

    store: DataStore
    y: np.ndarray
    split: np.ndarray
    task: str
    num_classes: int
    name: str = ""
    attrs: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.store)

    @property
    def num_outputs(self) -> int:
        """Width of a model's output layer for this task."""
        return self.num_classes if self.task == "classification" else 1

    def features(self) -> np.ndarray:
        """All features as an array (only for in-memory stores)."""
        arr = self.store.as_array()
        if arr is None:
            raise DataError(f"Dataset '{self.name}' is file-backed; its features are not held "
                            "in memory.")
        return arr

    def embedding_features(self) -> np.ndarray:
        """A ``[rows, d]`` in-memory float matrix for graph builders.

        The flattened features for in-memory stores; file-backed datasets (tag
        ``features:embedding``) override this with a cheap summary such as image thumbnails.
        """
        return self.features().reshape(len(self), -1)

    def check(self) -> None:
        """Raise :class:`DataError` on empty splits, NaN features or bad labels."""
        n = len(self.store)
        if self.y.shape[0] != n or self.split.shape[0] != n:
            raise DataError(f"Dataset '{self.name}': labels ({self.y.shape[0]}) and splits "
                            f"({self.split.shape[0]}) must match the rows ({n}).")
        for code, part in enumerate(("train", "validation", "test")):
            if not np.any(self.split == code):
                raise DataError(f"Dataset '{self.name}': the {part} split is empty. Use more "
                                "data or change the split fractions.")
        arr = self.store.as_array()
        if arr is not None and not np.all(np.isfinite(arr)):
            bad = np.unique(np.nonzero(~np.isfinite(arr.reshape(n, -1)))[0])
            raise DataError(f"Dataset '{self.name}': {bad.size} rows hold NaN or infinite "
                            f"features (first rows: {bad[:5].tolist()}). Clean or impute them.")
        if self.task == "classification":
            if self.y.size and (self.y.min() < 0 or self.y.max() >= self.num_classes):
                raise DataError(f"Dataset '{self.name}': labels must lie in "
                                f"[0, {self.num_classes}).")
            present = np.unique(self.y[self.split == 0])
            if present.size < 2:
                where = "every row" if np.unique(self.y).size < 2 else "every training row"
                raise DataError(
                    f"Dataset '{self.name}': {where} holds the same class (class id "
                    f"{int(present[0])}); classification needs at least two classes in the "
                    "training split (a model would learn nothing and score accuracy 1.0). Add "
                    "rows of other classes, or use a regression task for a numeric target.")
        elif not np.all(np.isfinite(self.y)):
            raise DataError(f"Dataset '{self.name}': regression targets hold NaN or inf.")


class Dataset(Module):
    """Base of datasets: ``load(rng)`` returns a :class:`DatasetBundle`.

    Contract: splits are disjoint and non-empty, features finite, labels in range; the same
    ``rng`` seed gives the same bundle. Loading must not download anything.
    """

    tags: ClassVar[frozenset[str]] = frozenset()

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        """Load the data and split it using ``rng``."""
        raise NotImplementedError


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float,
                     rng: np.random.Generator, stratify: bool = True) -> np.ndarray:
    """Split codes per row: each class split by the fractions (rounded, at least one each).

    Returns:
        ``int8[rows]`` with 0 train, 1 validation, 2 test.
    """
    split = np.zeros(y.shape[0], np.int8)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [
        np.arange(y.shape[0])]
    for idx in groups:
        idx = idx[rng.permutation(idx.size)]
        n_test = round(test_fraction * idx.size)
        n_val = round(val_fraction * idx.size)
        split[idx[:n_test]] = 2
        split[idx[n_test:n_test + n_val]] = 1
    return split


def in_memory(name: str, X: np.ndarray, y: np.ndarray, split: np.ndarray, task: str,
              num_classes: int) -> DatasetBundle:
    """Bundle in-memory arrays (features cast to ``float32``).

    Raises:
        DataError: a value lies beyond the ``float32`` range (it would silently become
            ``inf``); the message names its row and column.
    """
    check_float32(np.asarray(X), f"Dataset '{name}'")
    if task == "regression":
        check_float32(np.asarray(y), f"Dataset '{name}'", what="target")
    return DatasetBundle(ArrayStore(np.ascontiguousarray(X, dtype=np.float32)), y, split, task,
                         num_classes, name)
