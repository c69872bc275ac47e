"""Python entry points for data and networks that live in Python rather than in files."""

from __future__ import annotations

from typing import Any

import numpy as np

from hypergraph.datasets import ArrayDataset

__all__ = ["from_arrays"]


def from_arrays(X: Any, y: Any, *, task: str = "auto", split: Any = None,
                val_fraction: float = 0.15, test_fraction: float = 0.2,
                standardize: bool = False, seed: int | None = None) -> ArrayDataset:
    """A dataset over in-memory arrays, for ``hypergraph.train(config, dataset=...)``.

    Args:
        X: ``[rows, features]`` (or image-shaped ``[rows, C, H, W]``) numeric features; any
            array-like (NumPy, lists, a torch tensor on CPU).
        y: ``[rows]`` labels: class labels of any type, or numeric regression targets.
        task: ``"auto"`` (integer or text labels with few values are classes),
            ``"classification"`` or ``"regression"``.
        split: Optional split per row: ``train``/``val``/``test`` text or codes ``0/1/2``.
            Without it rows are split at random (stratified for classification) by the
            fractions, seeded by the run seed.
        val_fraction: Validation share of a random split.
        test_fraction: Test share of a random split.
        standardize: Scale features (and regression targets) by training-row statistics.
        seed: Seed of the random split; ``None`` draws it from the run seed (so each run seed
            gives its own split), an int fixes the split across runs.

    Returns:
        A dataset instance; problems with the arrays raise
        :class:`~hypergraph.exceptions.DataError` when the run loads it.

    Example:
        >>> import hypergraph
        >>> ds = hypergraph.from_arrays(X, y)                       # doctest: +SKIP
        >>> hypergraph.train(hypergraph.RunConfig(), dataset=ds)   # doctest: +SKIP
    """
    return ArrayDataset(np.asarray(X), np.asarray(y), None if split is None else np.asarray(split),
                        task=task, val_fraction=val_fraction, test_fraction=test_fraction,
                        standardize=standardize, seed=seed)
