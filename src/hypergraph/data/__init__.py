"""Data stores and data handles."""

from hypergraph.data._prefetch import Prefetcher
from hypergraph.data._store import ArrayStore, Data, DataStore, FileStore

__all__ = ["ArrayStore", "Data", "DataStore", "FileStore", "Prefetcher"]
