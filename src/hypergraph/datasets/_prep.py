"""Shared preparation steps of the datasets: split parameters, standardisation, label coding."""

from __future__ import annotations

import numpy as np

from hypergraph.spaces import Categorical, Float

__all__ = ["FRACTIONS", "STANDARDIZE", "encode_labels", "standardize", "standardize_targets"]

#: The split-fraction hyperparameters every dataset that splits rows itself shares.
FRACTIONS = {
    "val_fraction": Float(low=0.01, high=0.5,
                          help="share of rows held out for validation"),
    "test_fraction": Float(low=0.01, high=0.5,
                           help="share of rows held out for testing"),
}

#: Whether features are scaled to zero mean and unit variance (statistics of train rows only).
STANDARDIZE = Categorical(choices=(True, False),
                          help="scale features to zero mean, unit variance (train statistics)")


def standardize(X: np.ndarray, split: np.ndarray) -> np.ndarray:
    """``X`` scaled per column by the mean and std of the training rows (``split == 0``).

    Columns that are constant on the training rows are only centred. Validation and test rows
    never influence the statistics.
    """
    X = np.asarray(X, dtype=np.float64)
    train = X[split == 0]
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return ((X - mean) / std).astype(np.float32)


def standardize_targets(y: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Regression targets scaled by the training rows' mean and std (``float32``)."""
    y = np.asarray(y, dtype=np.float64)
    train = y[split == 0]
    std = float(train.std()) if train.size else 1.0
    return ((y - (float(train.mean()) if train.size else 0.0)) / (std if std > 1e-12 else 1.0)
            ).astype(np.float32)


def encode_labels(values: np.ndarray) -> tuple[np.ndarray, list[object]]:
    """Map class labels of any type to ids ``0..k-1`` in sorted order.

    Returns:
        ``(ids, classes)``: ``int64`` ids per row and the original label of each id.
    """
    values = np.asarray(values)
    if values.dtype.kind == "O":  # mixed Python objects: compare them as text
        values = values.astype(str)
    classes, ids = np.unique(values, return_inverse=True)
    return ids.astype(np.int64).reshape(-1), classes.tolist()
