"""Background reading of store rows, so that loading overlaps computing.

A :class:`Prefetcher` reads the rows of the *next* batch from a :class:`DataStore` on one
background thread while the model trains on the current one. The trainer asks for the next
batch's node ids one step early (only when the traversal's choice does not depend on the current
step's losses), hands their rows to :meth:`Prefetcher.submit`, and later collects them with
:meth:`Prefetcher.get`. Stores promise that ``get`` is safe to call from a background thread.

The prefetcher counts the time the caller spent blocked in :meth:`get` (``wait_s``) and the time
the thread spent reading (``load_s``): when the disk keeps up, ``wait_s`` stays near zero.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from hypergraph.data._store import DataStore

__all__ = ["Prefetcher"]


class Prefetcher:
    """Reads store rows one request ahead on a background thread.

    Args:
        store: The store to read from (its ``get`` must be thread-safe).

    Attributes:
        wait_s: Seconds callers spent blocked in :meth:`get`.
        load_s: Seconds the background thread spent reading.
        submitted: Requests started in the background.
        hits: :meth:`get` calls served by a background read.
        misses: :meth:`get` calls that had to read in the caller (no matching request).
    """

    def __init__(self, store: DataStore) -> None:
        self.store = store
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[np.ndarray, Future[np.ndarray]] | None = None
        self.wait_s = 0.0
        self.load_s = 0.0
        self.submitted = 0
        self.hits = 0
        self.misses = 0

    def _read(self, rows: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.store.get(rows)
        self.load_s += time.perf_counter() - t0
        return out

    def submit(self, rows: np.ndarray) -> None:
        """Start reading ``rows`` in the background (replaces an uncollected request)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hg-prefetch")
        if self._pending is not None:
            self._pending[1].cancel()
        rows = np.array(rows, dtype=np.int64, copy=True)
        self._pending = (rows, self._pool.submit(self._read, rows))
        self.submitted += 1

    def get(self, rows: np.ndarray) -> np.ndarray:
        """The features of ``rows``: from the background read when it was submitted, else now.

        A request for other rows is read in the caller and leaves the submitted one pending.

        Errors raised by the background read (e.g. an unreadable file) are raised here.
        """
        pending = self._pending
        t0 = time.perf_counter()
        if pending is not None and pending[0].shape == np.shape(rows) and np.array_equal(
                pending[0], rows):
            self._pending = None
            out = pending[1].result()
            self.hits += 1
        else:  # not the submitted request (e.g. an evaluation read): read now, keep the request
            out = self.store.get(rows)
            self.misses += 1
        self.wait_s += time.perf_counter() - t0
        return out

    def close(self) -> None:
        """Stop the background thread (pending reads finish first)."""
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def stats(self) -> dict[str, float]:
        """``wait_s``, ``load_s``, ``submitted``, ``hits`` and ``misses`` as a dict."""
        return {"wait_s": self.wait_s, "load_s": self.load_s, "submitted": self.submitted,
                "hits": self.hits, "misses": self.misses}

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
