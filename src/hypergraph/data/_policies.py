"""The ``store`` kind: where a run keeps the features of its data points.

A dataset makes a :class:`~hypergraph.data.DataStore` (in memory, or files read on demand); the
run's store module decides what the run uses: :class:`AutoStore` (``auto``, the default) keeps
the dataset's own, :class:`MemoryStore` (``memory``) reads everything into one array (fast
batches, which then live on the device; memory grows with the data), :class:`LazyFileStore`
(``file``) reads items from their files on demand with an LRU cache of ``cache_size`` items
(memory bounded by the cache). The choice changes speed and memory, never the numbers: every
store gathers the same arrays (checked by the contract kit).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hypergraph.base import Module
from hypergraph.data._store import ArrayStore, DataStore, FileStore
from hypergraph.exceptions import ConfigError
from hypergraph.logging import get_logger
from hypergraph.registry import register
from hypergraph.spaces import Int

if TYPE_CHECKING:
    from hypergraph.datasets import DatasetBundle

__all__ = ["AutoStore", "LazyFileStore", "MemoryStore", "StorePolicy"]

logger = get_logger(__name__)

#: Rows read at a time when a store is copied into memory.
_CHUNK = 1024


class StorePolicy(Module):
    """Base of the ``store`` kind: turns the dataset's store into the one the run reads.

    Contract: ``make(store)`` returns a store of the same length and item shape whose ``get``
    gives exactly the arrays ``store.get`` gives, for any rows in any order (repeats allowed);
    it may return ``store`` itself. A store it cannot serve is refused with a
    :class:`~hypergraph.exceptions.HyperGraphError` naming the choices that can (tags should
    make that impossible in a run). Tags: ``store:memory`` promises ``as_array()`` is not
    ``None``; ``store:file`` promises items stay in their files with at most ``cache_size``
    of them held in memory.
    """

    tags: ClassVar[frozenset[str]] = frozenset()

    def make(self, store: DataStore) -> DataStore:
        """The store the run reads, made from the dataset's ``store``."""
        raise NotImplementedError

    def apply(self, bundle: DatasetBundle) -> DatasetBundle:
        """``bundle`` with its store replaced by :meth:`make` (the same bundle when kept)."""
        store = self.make(bundle.store)
        if store is bundle.store:
            return bundle
        return dataclasses.replace(bundle, store=store)


@register("store", "auto")
class AutoStore(StorePolicy):
    """The dataset's own store: in memory for tables, files read lazily for image folders."""

    tags: ClassVar[frozenset[str]] = frozenset({"store:auto"})

    def __init__(self) -> None:
        pass  # no hyperparameters

    def make(self, store: DataStore) -> DataStore:
        return store


@register("store", "memory")
class MemoryStore(StorePolicy):
    """Every item in one in-memory array: the fastest batches, memory grows with the data."""

    tags: ClassVar[frozenset[str]] = frozenset({"store:memory"})

    def __init__(self) -> None:
        pass  # no hyperparameters

    def make(self, store: DataStore) -> DataStore:
        if store.as_array() is not None:
            return store
        n = len(store)
        array = np.empty((n, *store.item_shape), np.float32)
        for lo in range(0, n, _CHUNK):
            array[lo:lo + _CHUNK] = store.get(np.arange(lo, min(lo + _CHUNK, n)))
        logger.info("Read %d items into memory (%.1f MiB).", n, array.nbytes / 2**20)
        return ArrayStore(array)


@register("store", "file")
class LazyFileStore(StorePolicy):
    """Items read from their files on demand, the last ``cache_size`` used kept in memory.

    Needs a dataset whose items are files (tag ``source:files``, e.g. ``image_folder``); its
    ``cache_size`` replaces the dataset's own.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"store:file"})
    requires: ClassVar[frozenset[str]] = frozenset({"source:files"})
    space = {"cache_size": Int(low=0, high=10_000_000,
                               help="items kept in memory (least recently used evicted)")}

    def __init__(self, cache_size: int = 4096) -> None:
        self.cache_size = cache_size

    def make(self, store: DataStore) -> DataStore:
        if not isinstance(store, FileStore):
            raise ConfigError(f"store 'file' reads items from their files, but the dataset "
                              f"keeps its features in a {type(store).__name__}, not in files "
                              "(tag source:files). Use store 'auto' or 'memory'.")
        return FileStore(store.paths, store.loader, store.item_shape,
                         cache_size=self.cache_size)
