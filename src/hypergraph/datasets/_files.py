"""The user's own data: CSV, Parquet and NumPy ``.npz`` files, and in-memory arrays.

Every bad input raises :class:`~hypergraph.exceptions.DataError` with one sentence naming the
file, column and rows at fault and how to fix it: a missing file, a malformed file, a missing
label column (with the closest match), non-numeric feature columns, NaN or infinite values, an
unknown split value, an empty split, a class present only outside the training split.
"""

from __future__ import annotations

import difflib
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hypergraph._io import require_file
from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.datasets._prep import (
    FRACTIONS,
    STANDARDIZE,
    check_float32,
    encode_labels,
    standardize,
    standardize_targets,
)
from hypergraph.exceptions import DataError
from hypergraph.logging import get_logger
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Fixed

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ArrayDataset", "CSVDataset", "NpzDataset", "ParquetDataset", "bundle_from_arrays"]

logger = get_logger(__name__)

TASK = Categorical(choices=("auto", "classification", "regression"),
                   help="auto: integer or text labels with <= 50 classes are classes")
SPLIT_NAMES = {"train": 0, "val": 1, "validation": 1, "valid": 1, "test": 2, "0": 0, "1": 1,
               "2": 2}
_MAX_AUTO_CLASSES = 50


def _rows(idx: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f" and {idx.size - limit} more" if idx.size > limit else "")


def infer_task(y: np.ndarray) -> str:
    """``classification`` for text/bool labels or few integer values, else ``regression``."""
    if y.dtype.kind in "OUSb":
        return "classification"
    finite = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    if finite.size and np.all(np.mod(finite, 1) == 0) and \
            np.unique(finite).size <= _MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def _split_codes(values: np.ndarray, where: str) -> np.ndarray:
    text = np.char.lower(np.asarray(values).astype(str))
    codes = np.full(text.shape[0], -1, np.int8)
    for name, code in SPLIT_NAMES.items():
        codes[text == name] = code
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        raise DataError(f"{where}: split values must be train, val or test, but rows "
                        f"{_rows(bad)} hold {sorted(set(text[bad].tolist()))[:5]}; fix those "
                        "values or drop the split column to split at random.")
    return codes


def bundle_from_arrays(name: str, X: np.ndarray, y: np.ndarray, *, task: str, where: str,
                       columns: list[str] | None = None, split: np.ndarray | None = None,
                       val_fraction: float, test_fraction: float, standardize_x: bool,
                       rng: np.random.Generator,
                       attrs: dict[str, np.ndarray] | None = None) -> DatasetBundle:
    """Validate, split, encode and standardise arrays into a bundle.

    Args:
        name: Dataset name for the bundle.
        X: ``[rows, ...]`` numeric features.
        y: ``[rows]`` labels (any type for classification) or numeric targets.
        task: ``auto``, ``classification`` or ``regression``.
        where: How messages name the source (e.g. ``"csv file 'a.csv'"``).
        columns: Feature names (for messages about 2-D features).
        split: Optional split per row (``0/1/2`` or ``train/val/test`` text).
        val_fraction: Validation share when ``split`` is ``None``.
        test_fraction: Test share when ``split`` is ``None``.
        standardize_x: Scale features (and regression targets) by training-row statistics.
        rng: Draws the random split.
        attrs: Categorical attribute codes per row.

    Raises:
        DataError: on any problem with the data, in one sentence.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n = X.shape[0] if X.ndim else 0
    if n == 0:
        raise DataError(f"{where} holds no rows; give it at least one row per split.")
    if X.ndim < 2:
        raise DataError(f"{where}: features must have shape [rows, features], got {X.shape}.")
    if y.shape[:1] != (n,) or y.ndim != 1:
        raise DataError(f"{where}: labels must have shape [{n}] (one per feature row), got "
                        f"{y.shape}.")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numeric, got dtype {X.dtype}; convert "
                        "them to numbers first.")
    flat = X.reshape(n, -1).astype(np.float64)
    bad = ~np.isfinite(flat)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = np.flatnonzero(bad.any(axis=0))
        names = [columns[c] for c in cols] if columns is not None and X.ndim == 2 else \
            cols.tolist()
        raise DataError(f"{where}: NaN or infinite feature values in {rows.size} rows "
                        f"(rows {_rows(rows)}) and columns {names[:10]}; drop those rows or "
                        "fill the gaps (for example with the column mean) before loading.")
    if task == "auto":
        task = infer_task(y)
    if task == "classification":
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            rows = np.flatnonzero(~np.isfinite(y))
            raise DataError(f"{where}: the label is missing in rows {_rows(rows)}; drop those "
                            "rows or fill in their labels.")
        if y.dtype.kind == "O":
            missing = np.flatnonzero(np.array([v is None or v != v for v in y.tolist()]))
            if missing.size:
                raise DataError(f"{where}: the label is missing in rows {_rows(missing)}; "
                                "drop those rows or fill in their labels.")
        labels, classes = encode_labels(y)
        num_classes = len(classes)
        if num_classes < 2:
            raise DataError(f"{where}: every row holds the same class ({classes[0]!r}); "
                            "classification needs at least two classes (a model would learn "
                            "nothing and score accuracy 1.0). Add rows of other classes, or "
                            "set the task to regression for a numeric target.")
        if len(classes) <= 20:
            logger.info("%s: classes %s", where, classes)
    else:
        if y.dtype.kind not in "biuf":
            raise DataError(f"{where}: regression targets must be numeric, got dtype "
                            f"{y.dtype}; use task classification for text labels.")
        yf = y.astype(np.float64)
        if not np.all(np.isfinite(yf)):
            rows = np.flatnonzero(~np.isfinite(yf))
            raise DataError(f"{where}: NaN or infinite targets in rows {_rows(rows)}; drop or "
                            "fill them before loading.")
        labels, num_classes = yf, 0
    if split is None:
        codes = stratified_split(labels, val_fraction, test_fraction, rng,
                                 stratify=task == "classification")
    else:
        codes = _split_codes(split, where) if np.asarray(split).dtype.kind in "OUS" else \
            np.asarray(split).astype(np.int8)
        if codes.shape != (n,) or codes.min() < 0 or codes.max() > 2:
            raise DataError(f"{where}: the split must hold one code 0/1/2 (train/val/test) "
                            "per row.")
    for code, part in enumerate(("train", "validation", "test")):
        if not np.any(codes == code):
            hint = ("add rows marked '" + ("val" if code == 1 else part) + "' to the split "
                    "column" if split is not None else "use more rows or larger fractions")
            raise DataError(f"{where}: the {part} split is empty; {hint}.")
    if task == "classification":
        seen = np.unique(labels[codes == 0])
        unseen = np.setdiff1d(np.unique(labels), seen)
        if unseen.size:
            names = [classes[i] for i in unseen.tolist()]
            rows = np.flatnonzero(np.isin(labels, unseen))
            raise DataError(f"{where}: classes {names[:10]} appear only outside the training "
                            f"split (rows {_rows(rows)}); add training rows of them or drop "
                            "those rows.")
    if standardize_x:
        features = standardize(flat, codes, where=where,
                               columns=columns if X.ndim == 2 else None).reshape(X.shape)
    else:
        check_float32(flat, where, columns if X.ndim == 2 else None)
        features = X
    if task == "regression":
        if standardize_x:
            labels = standardize_targets(labels, codes, where=where)
        else:
            check_float32(labels, where, what="target")
            labels = labels.astype(np.float32)
    bundle = in_memory(name, features, labels, codes, task, num_classes)
    bundle.attrs = dict(attrs or {})
    return bundle


def _contract_table(n: int = 48) -> pd.DataFrame:
    """A tiny deterministic table for the contract-test kit."""
    import pandas as pd

    rng = np.random.default_rng(0)
    label = np.arange(n) % 3
    return pd.DataFrame({"a": rng.normal(size=n) + label, "b": rng.normal(size=n),
                         "colour": np.array(["red", "blue"])[np.arange(n) % 2],
                         "label": np.array(["x", "y", "z"])[label]})


#: Column names that usually hold the label (suggested when ``label`` is missing).
_LABEL_NAMES = frozenset({"target", "class", "label", "labels", "y", "category", "species"})

class _TableDataset(Dataset):
    """A table file (CSV or Parquet) with one row per data point."""

    fmt: ClassVar[str] = ""
    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "task:regression", "features:vector", "data:attributes",
         "user_data"})
    space = {
        "path": Fixed(types=(str,), help="the file to read"),
        "label": Fixed(types=(str,), help="label (target) column"),
        "features": Fixed(types=(tuple,),
                          help="feature columns (default: every other column)"),
        "split_column": Fixed(types=(str,),
                              help="column of train/val/test per row (default: a column "
                                   "named 'split' if present, else a random split)"),
        "attributes": Fixed(types=(tuple,),
                            help="categorical columns kept as node attributes"),
        "task": TASK,
        **FRACTIONS,
        "standardize": STANDARDIZE,
    }

    def __init__(self, path: str | None = None, label: str = "label",
                 features: tuple[str, ...] | None = None, split_column: str | None = None,
                 attributes: tuple[str, ...] = (), task: str = "auto",
                 val_fraction: float = 0.15, test_fraction: float = 0.2,
                 standardize: bool = True) -> None:
        self.path = path
        self.label = label
        self.features = features
        self.split_column = split_column
        self.attributes = attributes
        self.task = task
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.standardize = standardize

    def read(self, path: Path) -> pd.DataFrame:
        """Read the table (malformed files raise :class:`DataError`)."""
        raise NotImplementedError

    @classmethod
    def write(cls, df: pd.DataFrame, path: Path) -> None:
        """Write ``df`` in this format (used to make tiny test input)."""
        raise NotImplementedError

    @classmethod
    def _contract_params(cls, tmp_dir: Path) -> dict[str, Any]:
        path = Path(tmp_dir) / f"contract.{cls.fmt}"
        cls.write(_contract_table(), path)
        return {"path": str(path), "attributes": ("colour",)}

    def _where(self) -> str:
        return f"{self.fmt} file '{self.path}'"

    def _column(self, df: pd.DataFrame, col: str, what: str) -> None:
        if col in df.columns:
            return
        cols = [str(c) for c in df.columns]
        close = difflib.get_close_matches(col, cols, n=1, cutoff=0.5)
        if not close and what == "label":  # the usual names of a label column
            close = [c for c in cols if c.lower() in _LABEL_NAMES][:1]
        hint = f" Did you mean '{close[0]}'?" if close else ""
        if what in ("label", "split"):
            param = "label" if what == "label" else "split_column"
            hint += f" Name it with --set dataset.{param}=COLUMN."
        raise DataError(f"{self._where()} has no {what} column '{col}'.{hint} Its columns: "
                        f"{', '.join(cols[:30])}{' ...' if len(cols) > 30 else ''}.")

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        import pandas as pd

        if self.path is None:
            raise DataError(f"dataset '{self.name}' needs a file: set dataset.path to your "
                            f".{self.fmt} file.")
        path = Path(self.path).expanduser()
        require_file(path, self._where())
        df = self.read(path)
        if df.shape[0] == 0:
            raise DataError(f"{self._where()} holds no data rows.")
        self._column(df, self.label, "label")
        split_col = self.split_column
        if split_col is None and "split" in df.columns and self.label != "split":
            split_col = "split"
        if split_col is not None:
            self._column(df, split_col, "split")
        for col in self.attributes:
            self._column(df, col, "attribute")
        skip = {self.label, split_col, *self.attributes}
        if self.features is not None:
            for col in self.features:
                self._column(df, col, "feature")
            feats = list(self.features)
        else:
            feats = [c for c in df.columns if c not in skip]
        if not feats:
            raise DataError(f"{self._where()} has no feature columns besides the label, "
                            "split and attribute columns.")
        non_numeric = [str(c) for c in feats if not pd.api.types.is_numeric_dtype(df[c])]
        if non_numeric:
            col = non_numeric[0]
            coerced = pd.to_numeric(df[col], errors="coerce")
            bad = np.flatnonzero(coerced.isna().to_numpy() & df[col].notna().to_numpy())
            example = f" (row {int(bad[0])} holds {df[col].iloc[bad[0]]!r})" if bad.size else ""
            raise DataError(f"{self._where()}: feature columns {non_numeric[:10]} are not "
                            f"numeric{example}; list them under dataset.attributes if they are "
                            "categories, or pick numeric columns with dataset.features.")
        X = df[feats].to_numpy(dtype=np.float64, na_value=np.nan)
        y_series = df[self.label]
        y = y_series.to_numpy(dtype=np.float64, na_value=np.nan) \
            if pd.api.types.is_numeric_dtype(y_series) and \
            not pd.api.types.is_bool_dtype(y_series) else y_series.to_numpy(dtype=object)
        if y.dtype == object:
            missing = np.flatnonzero(y_series.isna().to_numpy())
            if missing.size:
                raise DataError(f"{self._where()}: the label column '{self.label}' is empty in "
                                f"rows {_rows(missing)}; drop those rows or fill in labels.")
            y = y.astype(str)
        split = None
        if split_col is not None:
            split = df[split_col].astype(str).to_numpy()
        attrs = {str(c): pd.factorize(df[c], use_na_sentinel=True)[0].astype(np.int64)
                 for c in self.attributes}
        return bundle_from_arrays(
            self.name, X, y, task=self.task, where=self._where(),
            columns=[str(c) for c in feats], split=split, val_fraction=self.val_fraction,
            test_fraction=self.test_fraction, standardize_x=self.standardize, rng=rng,
            attrs=attrs)


@register("dataset", "csv")
class CSVDataset(_TableDataset):
    """A CSV file with a header row: feature columns, a label column, optional split column.

    Categorical ``attributes`` columns are kept as integer codes in ``bundle.attrs`` (missing
    values -1) for attribute hyperedges; they are not features.
    """

    fmt = "csv"

    @classmethod
    def write(cls, df: pd.DataFrame, path: Path) -> None:
        df.to_csv(path, index=False)

    def read(self, path: Path) -> pd.DataFrame:
        import pandas as pd

        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError as err:
            raise DataError(f"{self._where()} is empty: it needs a header row and data "
                            "rows.") from err
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise DataError(f"{self._where()} is not a readable CSV file: "
                            f"{str(err).strip().splitlines()[0]}.") from err


@register("dataset", "parquet")
class ParquetDataset(_TableDataset):
    """A Parquet file: feature columns, a label column, optional split column."""

    fmt = "parquet"

    @classmethod
    def write(cls, df: pd.DataFrame, path: Path) -> None:
        df.to_parquet(path)

    def read(self, path: Path) -> pd.DataFrame:
        import pandas as pd
        import pyarrow

        try:
            return pd.read_parquet(path)
        except (pyarrow.ArrowException, OSError, ValueError) as err:
            raise DataError(f"{self._where()} is not a readable Parquet file: "
                            f"{str(err).strip().splitlines()[0]}.") from err


@register("dataset", "npz")
class NpzDataset(Dataset):
    """A NumPy ``.npz`` archive holding a feature array, a label array and optional splits.

    Features may be ``[rows, features]`` or image-shaped ``[rows, C, H, W]``.
    """

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "task:regression", "features:vector", "user_data"})
    space = {
        "path": Fixed(types=(str,), help="the .npz file to read"),
        "x_key": Fixed(types=(str,), help="array of features"),
        "y_key": Fixed(types=(str,), help="array of labels"),
        "split_key": Fixed(types=(str,),
                           help="array of train/val/test (or 0/1/2) per row (default: a "
                                "'split' array if present, else a random split)"),
        "task": TASK,
        **FRACTIONS,
        "standardize": STANDARDIZE,
    }

    def __init__(self, path: str | None = None, x_key: str = "X", y_key: str = "y",
                 split_key: str | None = None, task: str = "auto",
                 val_fraction: float = 0.15, test_fraction: float = 0.2,
                 standardize: bool = True) -> None:
        self.path = path
        self.x_key = x_key
        self.y_key = y_key
        self.split_key = split_key
        self.task = task
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.standardize = standardize

    @classmethod
    def _contract_params(cls, tmp_dir: Path) -> dict[str, Any]:
        df = _contract_table()
        path = Path(tmp_dir) / "contract.npz"
        np.savez(path, X=df[["a", "b"]].to_numpy(), y=df["label"].to_numpy().astype(str))
        return {"path": str(path)}

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        where = f"npz file '{self.path}'"
        if self.path is None:
            raise DataError("dataset 'npz' needs a file: set dataset.path to your .npz file.")
        path = Path(self.path).expanduser()
        require_file(path, where)
        if not zipfile.is_zipfile(path):
            raise DataError(f"{where} is not a readable .npz archive: it is not a valid .npz "
                            "(zip) file as numpy.savez writes. Save the arrays with "
                            "numpy.savez(path, X=..., y=...).")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays: dict[str, Any] = {k: data[k] for k in data.files}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise DataError(f"{where} is not a readable .npz archive: {err}.") from err
        split_key = self.split_key
        if split_key is None and "split" in arrays:
            split_key = "split"
        for key, what in ((self.x_key, "x_key"), (self.y_key, "y_key"), (split_key, "split_key")):
            if key is not None and key not in arrays:
                close = difflib.get_close_matches(key, list(arrays), n=1, cutoff=0.5)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise DataError(f"{where} has no array '{key}' ({what}).{hint} Its arrays: "
                                f"{', '.join(arrays)}.")
        return bundle_from_arrays(
            "npz", arrays[self.x_key], arrays[self.y_key], task=self.task, where=where,
            split=None if split_key is None else arrays[split_key],
            val_fraction=self.val_fraction, test_fraction=self.test_fraction,
            standardize_x=self.standardize, rng=rng)


class ArrayDataset(Dataset):
    """In-memory arrays from Python (see :func:`hypergraph.from_arrays`).

    Not registered: arrays are data, not hyperparameters. Pass the instance to
    ``hypergraph.train(config, dataset=...)``; the config's dataset entry is then ignored.
    """

    kind: ClassVar[str] = "dataset"
    name: ClassVar[str] = "arrays"
    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "task:regression", "features:vector", "user_data"})
    space = {"task": TASK, **FRACTIONS,
             "standardize": Categorical(choices=(True, False),
                                        help="scale features by training-row statistics"),
             "seed": Fixed(types=(int,),
                           help="seed of the random split (default: the run's dataset stream)")}

    def __init__(self, X: np.ndarray, y: np.ndarray, split: np.ndarray | None,
                 task: str = "auto", val_fraction: float = 0.15, test_fraction: float = 0.2,
                 standardize: bool = False, seed: int | None = None) -> None:
        self.X = X
        self.y = y
        self.split = split
        self.task = task
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.standardize = standardize
        self.seed = seed

    def clone(self) -> ArrayDataset:
        """A new instance over the same arrays."""
        return ArrayDataset(self.X, self.y, self.split, **self.get_params())

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        return bundle_from_arrays(
            "arrays", self.X, self.y, task=self.task, where="from_arrays data",
            split=self.split, val_fraction=self.val_fraction, test_fraction=self.test_fraction,
            standardize_x=self.standardize,
            rng=rng if self.seed is None else np.random.default_rng(self.seed))
