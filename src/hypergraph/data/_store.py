"""Data stores: where the features of data points live.

A :class:`DataStore` maps row numbers to feature arrays. :class:`ArrayStore` keeps everything in
memory; :class:`FileStore` reads items lazily from files through a loader function and keeps an
LRU cache of a bounded number of items, for data that does not fit in memory. :class:`Data` is a
light handle to one row of a store.

Stores are data structures, not modules: a dataset makes its store, and the run's ``store``
module (:mod:`hypergraph.data._policies`) may move it into memory or change its cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from hypergraph.exceptions import DataError

__all__ = ["ArrayStore", "Data", "DataStore", "FileStore"]


class DataStore:
    """Base of data stores.

    Contract: ``get(rows)`` returns a float array of shape ``(len(rows), *item_shape)`` in the
    order asked, for any int array of rows in ``[0, len(store))`` (repeats allowed). Stores are
    read-only once built; ``get`` must be safe to call from a background prefetch thread.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one item's features."""
        raise NotImplementedError

    def get(self, rows: np.ndarray) -> np.ndarray:
        """Features of ``rows`` stacked along the first axis."""
        raise NotImplementedError

    def as_array(self) -> np.ndarray | None:
        """The whole store as one array when it is held in memory, else ``None``."""
        return None


class ArrayStore(DataStore):
    """All features in one in-memory array (``float32``)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def item_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[1:])

    def get(self, rows: np.ndarray) -> np.ndarray:
        return self.array[rows]

    def as_array(self) -> np.ndarray:
        return self.array


class FileStore(DataStore):
    """Items read lazily from files by ``loader(path) -> np.ndarray``, with an LRU cache.

    Args:
        paths: One file per row.
        loader: Reads one file into a float array of ``item_shape``.
        item_shape: Shape of one loaded item.
        cache_size: Items kept in memory (least recently used are evicted; 0 keeps none).

    Raises:
        DataError: a negative ``cache_size``.
    """

    def __init__(self, paths: Sequence[str], loader: Callable[[str], np.ndarray],
                 item_shape: tuple[int, ...], cache_size: int = 4096) -> None:
        if cache_size < 0:
            raise DataError(f"A file store's cache_size must be >= 0, got {cache_size}.")
        self.paths = paths
        self.loader = loader
        self.item_shape_ = item_shape
        self.cache_size = cache_size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def cached(self) -> int:
        """Items held in the cache now (at most ``cache_size``)."""
        with self._lock:
            return len(self._cache)

    @property
    def item_shape(self) -> tuple[int, ...]:
        return tuple(self.item_shape_)

    def _load(self, row: int) -> np.ndarray:
        path = self.paths[row]
        try:
            item = np.asarray(self.loader(path), dtype=np.float32)
        except (OSError, ValueError) as err:
            raise DataError(f"Could not read data file '{path}': {err}") from err
        if item.shape != self.item_shape:
            raise DataError(f"Data file '{path}' gave shape {item.shape}, expected "
                            f"{self.item_shape}.")
        return item

    def get(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.item_shape), np.float32)
        for i, row in enumerate(np.asarray(rows, dtype=np.int64).tolist()):
            with self._lock:
                item = self._cache.get(row)
                if item is not None:
                    self._cache.move_to_end(row)
                    self.hits += 1
            if item is None:
                item = self._load(row)
                with self._lock:
                    self.misses += 1
                    if self.cache_size > 0:
                        self._cache[row] = item
                        while len(self._cache) > self.cache_size:
                            self._cache.popitem(last=False)
            out[i] = item
        return out


class Data:
    """Handle to one data point: a store and a row, read on access."""

    __slots__ = ("row", "store")

    def __init__(self, store: DataStore, row: int) -> None:
        self.store = store
        self.row = row

    @property
    def value(self) -> np.ndarray:
        """The point's features."""
        return self.store.get(np.array([self.row]))[0]

    def __repr__(self) -> str:
        return f"Data(row={self.row}, store={type(self.store).__name__})"
