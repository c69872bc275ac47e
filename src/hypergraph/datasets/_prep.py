"""Shared preparation steps of the datasets: split parameters, standardisation, label coding."""

from __future__ import annotations

import numpy as np

from hypergraph.exceptions import DataError
from hypergraph.spaces import Categorical, Float

__all__ = ["FLOAT32_MAX", "FRACTIONS", "STANDARDIZE", "check_float32", "encode_labels",
           "standardize", "standardize_targets"]

#: Largest magnitude a feature can have: features are stored as ``float32``.
FLOAT32_MAX = float(np.finfo(np.float32).max)

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


def _table(a: np.ndarray) -> np.ndarray:
    """``a`` as ``[rows, columns]`` (a 1-D array is one column; works for zero rows)."""
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


def _column_name(col: int, columns: list[str] | None) -> str:
    return f"'{columns[col]}'" if columns is not None and col < len(columns) else str(col)


def check_float32(X: np.ndarray, where: str, columns: list[str] | None = None,
                  what: str = "feature") -> None:
    """Refuse values that ``float32`` cannot hold (they would become ``inf`` when stored).

    Args:
        X: ``[rows, columns]`` (or ``[rows]``) finite numbers.
        where: How the message names the source.
        columns: Column names (default: column numbers).
        what: What the values are (``feature``, ``target``).

    Raises:
        DataError: naming the first column and row at fault and the value.
    """
    flat = np.asarray(X)
    if flat.dtype.kind != "f" or flat.dtype.itemsize <= 4:
        return  # integers up to 2**63 and float32 values fit (rounded) into float32
    flat = _table(flat)
    with np.errstate(all="ignore"):
        big = np.abs(flat) > FLOAT32_MAX
    if not big.any():
        return
    rows, cols = np.nonzero(big)
    col, row = int(cols[0]), int(rows[0])
    more = np.unique(rows).size - 1
    others = f"(and {more} more rows) " if more else ""
    colname = f" column {_column_name(col, columns)}," if what == "feature" or \
        flat.shape[1] > 1 else ""
    raise DataError(
        f"{where}: the {what} value {float(flat[row, col]):.6g} in{colname} row {row} "
        f"{others}lies beyond the float32 range (+-{FLOAT32_MAX:.4g}) that values are stored "
        f"in; rescale that {what} (e.g. to other units, or take a log) before loading.")


def _scale(X: np.ndarray, split: np.ndarray, where: str, columns: list[str] | None,
           what: str) -> np.ndarray:
    """``(X - mean) / std`` per column with training-row statistics, checked to be finite
    (statistics computed in float64) and to fit into float32."""
    X = np.asarray(X, dtype=np.float64)
    flat = _table(X) if X.ndim > 1 else X
    train = flat[split == 0]
    with np.errstate(all="ignore"):  # overflow is detected below, never printed
        mean = train.mean(axis=0) if train.shape[0] else np.zeros(flat.shape[1:])
        std = train.std(axis=0) if train.shape[0] else np.ones(flat.shape[1:])
        bad = np.atleast_1d(~(np.isfinite(mean) & np.isfinite(std)))
        std = np.where(std > 1e-12, std, 1.0)
        out = (flat - mean) / std
        over = ~np.isfinite(out) | (np.abs(out) > FLOAT32_MAX)
    table = _table(flat)  # [rows, columns] for the messages
    named = what == "feature" or table.shape[1] > 1
    if bad.any():
        col = int(np.flatnonzero(bad)[0])
        rows = np.flatnonzero(split == 0)
        row = int(rows[np.argmax(np.abs(table[rows, col]))])
        name = f" column {_column_name(col, columns)}" if named else ""
        raise DataError(
            f"{where}: the mean or standard deviation of the {what}{name} overflows (its "
            f"largest training value is {float(table[row, col]):.6g}, in row {row}); rescale "
            f"that {what} (e.g. to other units, or take a log) before loading.")
    if over.any():
        rows, cols = np.nonzero(_table(over))
        row, col = int(rows[0]), int(cols[0])
        name = f" column {_column_name(col, columns)}," if named else ""
        ratio = float(np.abs(_table(out)[row, col]))
        raise DataError(
            f"{where}: the {what} value {float(table[row, col]):.6g} in{name} row {row} lies "
            f"{ratio:.3g} standard deviations of the training rows from their mean, beyond "
            f"the float32 range values are stored in; drop that row or rescale the {what} "
            "before loading.")
    return out.reshape(X.shape).astype(np.float32)


def standardize(X: np.ndarray, split: np.ndarray, where: str = "the data",
                columns: list[str] | None = None) -> np.ndarray:
    """``X`` scaled per column by the mean and std of the training rows (``split == 0``).

    Columns that are constant on the training rows are only centred. Validation and test rows
    never influence the statistics.

    Raises:
        DataError: a column's statistics overflow (values near the float64 limit) or a scaled
            value does not fit into ``float32``; the message names the column and row.
    """
    return _scale(X, split, where, columns, "feature")


def standardize_targets(y: np.ndarray, split: np.ndarray, where: str = "the data"
                        ) -> np.ndarray:
    """Regression targets scaled by the training rows' mean and std (``float32``).

    Raises:
        DataError: the statistics overflow or a scaled target does not fit into ``float32``.
    """
    return _scale(np.asarray(y, dtype=np.float64), split, where, None, "target")


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
