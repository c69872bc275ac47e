"""Data stores (where features live), data handles, and the ``store`` kind that picks one."""

from hypergraph.data._policies import AutoStore, LazyFileStore, MemoryStore, StorePolicy
from hypergraph.data._prefetch import Prefetcher
from hypergraph.data._store import ArrayStore, Data, DataStore, FileStore

__all__ = ["ArrayStore", "AutoStore", "Data", "DataStore", "FileStore", "LazyFileStore",
           "MemoryStore", "Prefetcher", "StorePolicy"]
