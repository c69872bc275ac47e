"""The array-backed graph.

Pairwise edges live in CSR (``indptr``, ``indices``, ``weights``); hyperedges (edges joining any
number of nodes) in a sparse incidence matrix (hyperedges x nodes); per-node facts in arrays
(``split``, ``label``, ``store_row``, optional ``members`` for cluster nodes and free ``attrs``).
:class:`~hypergraph.graph.Node` and :class:`~hypergraph.graph.Edge` are light views made on access.

Indices are ``int32`` and weights ``float32``: 8 bytes per directed edge plus 8 per node for
``indptr``. Mutating methods (``add_edges``, ``remove_edges``, ``set_weights``...) change the
graph in place and bump :attr:`HyperGraph.version`, so that traversals can rebuild caches.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from hypergraph._io import atomic_path, require_file
from hypergraph.exceptions import DataError

if TYPE_CHECKING:
    import networkx as nx

    from hypergraph.data import DataStore
    from hypergraph.graph._views import Edge, HyperEdge, Node

__all__ = ["ACTIVE_ATTR", "SPLIT_NAMES", "TEST", "TRAIN", "VAL", "HyperGraph"]

TRAIN, VAL, TEST = 0, 1, 2
#: Key in :attr:`HyperGraph.attrs` of the optional activity mask (see ``set_active``).
ACTIVE_ATTR = "_active"
SPLIT_NAMES = ("train", "val", "test")
_FORMAT_VERSION = 1

def _as_index(a: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise DataError(f"{what}: a boolean mask must have one entry per node ({n}), "
                            f"got shape {arr.shape}.")
        return np.flatnonzero(arr)
    arr = arr.astype(np.int64, copy=False).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise DataError(f"{what}: node ids must lie in [0, {n}), got min {arr.min()} "
                        f"max {arr.max()}.")
    return arr


def _csr_from_pairs(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays from (src, dst, w); duplicate pairs keep the largest weight."""
    return _csr_from_keys(n, _pair_keys(n, np.asarray(src), np.asarray(dst)), w)


def _pair_keys(n: int, src: np.ndarray, dst: np.ndarray, keep: np.ndarray | None = None,
               both: bool = False) -> np.ndarray:
    """``int64`` keys ``src * n + dst`` of the kept pairs (and of the reversed ones if ``both``)."""
    s = src if keep is None else src[keep]
    m = s.shape[0]
    key = np.empty(2 * m if both else m, np.int64)
    np.multiply(s, n, out=key[:m], casting="unsafe")
    del s
    d = dst if keep is None else dst[keep]
    key[:m] += d
    if both:
        np.multiply(d, n, out=key[m:], casting="unsafe")
        del d
        key[m:] += src if keep is None else src[keep]
    return key


def _csr_from_keys(n: int, key: np.ndarray, w: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays from pair keys (``src * n + dst``, consumed in place) and weights."""
    if key.size == 0:
        return np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
    # Sorted once, with few temporaries: at 10^6 nodes and 2 x 10^7 edges every extra array of
    # the edge count costs 80-160 MB.
    order = np.argsort(key)
    w = np.asarray(w, np.float32)[order]
    del order
    key.sort()  # equals key[order] (ties are equal keys), without a second array
    first = np.empty(key.size, dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    if starts.size < key.size:  # duplicate pairs: keep the largest weight
        w = np.maximum.reduceat(w, starts)
        key = key[starts]
    del starts
    indptr = np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * n).astype(np.int64)
    np.remainder(key, n, out=key)
    return indptr, key.astype(np.int32), w


class HyperGraph:
    """Array-backed graph of data points: CSR pairwise edges, sparse hyperedges, node arrays.

    Args:
        indptr: ``int64[n + 1]`` row pointers.
        indices: ``int32[E]`` neighbour ids, sorted within each row.
        weights: ``float32[E]`` edge weights (positive).
        split: ``int8[n]`` 0 train, 1 validation, 2 test.
        label: ``[n]`` labels (int classes or float targets).
        store_row: ``int64[n]`` row in the data store of a point node (-1 for cluster nodes).
        incidence: optional ``(H, n)`` CSR matrix; row ``h`` lists the members of hyperedge ``h``.
        members: optional ``(member_ptr, member_rows)``: the store rows a cluster node holds.
        attrs: optional extra per-node arrays (categorical attributes, coordinates...).

    A data structure, not a module: dataloaders build it, managers change it, traversals read
    it. :meth:`validate` checks its invariants.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                 split: np.ndarray, label: np.ndarray, store_row: np.ndarray,
                 incidence: sp.csr_matrix | None = None,
                 members: tuple[np.ndarray, np.ndarray] | None = None,
                 attrs: dict[str, np.ndarray] | None = None) -> None:
        self.indptr = indptr
        self.indices = indices
        self.weights = weights
        self.split = split
        self.label = label
        self.store_row = store_row
        self.incidence = incidence
        self.members = members
        self.attrs = attrs
        self.version = 0
        self.store: DataStore | None = None
        self._cache: dict[tuple[Any, ...], Any] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(cls, num_nodes: int, src: Iterable[int] | np.ndarray,
                   dst: Iterable[int] | np.ndarray,
                   weights: Iterable[float] | np.ndarray | None = None, *,
                   symmetric: bool = True, split: np.ndarray | None = None,
                   label: np.ndarray | None = None, store_row: np.ndarray | None = None,
                   hyperedges: Sequence[Sequence[int]] | None = None,
                   attrs: dict[str, np.ndarray] | None = None,
                   allow_self_loops: bool = False) -> HyperGraph:
        """Build a graph from an edge list.

        Duplicate edges keep their largest weight. With ``symmetric`` each edge is added in both
        directions. Missing node arrays default to: all train, label -1, ``store_row = arange``.
        """
        n = int(num_nodes)
        s = np.asarray(src, dtype=np.int64).ravel()
        d = np.asarray(dst, dtype=np.int64).ravel()
        if s.shape != d.shape:
            raise DataError(f"src and dst must have the same length, got {s.size} and {d.size}.")
        w = (np.ones(s.size, np.float32) if weights is None
             else np.asarray(weights, dtype=np.float32).ravel())
        if w.shape != s.shape:
            raise DataError(f"weights must have one entry per edge ({s.size}), got {w.size}.")
        if s.size and (min(s.min(), d.min()) < 0 or max(s.max(), d.max()) >= n):
            raise DataError(f"Edge endpoints must lie in [0, {n}).")
        if not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
            raise DataError("Edge weights must be finite and non-negative.")
        keep = None if allow_self_loops else s != d
        if keep is not None and keep.all():
            keep = None
        # Pair keys straight from the inputs (no concatenated copies of src and dst): at 10^6
        # nodes and 10^7 pairs each such copy would cost 80-160 MB.
        key = _pair_keys(n, s, d, keep, both=symmetric)
        if keep is not None:
            w = w[keep]
        if symmetric:
            w = np.concatenate([w, w])
        indptr, indices, weights_ = _csr_from_keys(n, key, w)
        g = cls(
            indptr, indices, weights_,
            split=np.zeros(n, np.int8) if split is None else np.asarray(split, np.int8),
            label=np.full(n, -1, np.int64) if label is None else np.asarray(label),
            store_row=np.arange(n, dtype=np.int64) if store_row is None
            else np.asarray(store_row, np.int64),
            incidence=None if hyperedges is None else incidence_from_lists(hyperedges, n),
            attrs=attrs,
        )
        g.validate()
        return g

    # ------------------------------------------------------------------ basic facts
    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return int(self.indptr.shape[0] - 1)

    @property
    def num_edges(self) -> int:
        """Number of directed CSR entries (an undirected edge counts twice)."""
        return int(self.indices.shape[0])

    @property
    def num_hyperedges(self) -> int:
        """Number of hyperedges."""
        return 0 if self.incidence is None else int(self.incidence.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the graph's arrays, in bytes."""
        total = sum(a.nbytes for a in (self.indptr, self.indices, self.weights, self.split,
                                       self.label, self.store_row))
        if self.incidence is not None:
            inc = self.incidence
            total += inc.data.nbytes + inc.indices.nbytes + inc.indptr.nbytes
        if self.members is not None:
            total += self.members[0].nbytes + self.members[1].nbytes
        total += sum(a.nbytes for a in (self.attrs or {}).values())
        return int(total)

    def degree(self, ids: np.ndarray | Sequence[int] | int | None = None) -> np.ndarray:
        """Out-degree of ``ids`` (all nodes when ``None``)."""
        deg = np.diff(self.indptr)
        return deg if ids is None else deg[np.asarray(ids)]

    def weighted_degree(self) -> np.ndarray:
        """Sum of out-edge weights per node (``float64``)."""
        key = ("wdeg", self.version)
        if key not in self._cache:
            cw = np.concatenate([[0.0], np.cumsum(self.weights, dtype=np.float64)])
            self._cache[key] = cw[self.indptr[1:]] - cw[self.indptr[:-1]]
        return self._cache[key]

    def neighbors(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, weights)`` of the out-neighbours of ``node`` (views, not copies)."""
        lo, hi = self.indptr[node], self.indptr[node + 1]
        return self.indices[lo:hi], self.weights[lo:hi]

    def has_edge(self, src: int, dst: int) -> bool:
        """Whether the directed edge ``src -> dst`` exists."""
        nbrs, _ = self.neighbors(src)
        pos = np.searchsorted(nbrs, dst)
        return bool(pos < nbrs.size and nbrs[pos] == dst)

    def edge_list(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src, dst, weight)`` arrays of every directed edge."""
        src = np.repeat(np.arange(self.num_nodes, dtype=np.int64), np.diff(self.indptr))
        return src, self.indices.astype(np.int64), self.weights.copy()

    def ids_in_split(self, split: int | str) -> np.ndarray:
        """Node ids of one split (``0``/``"train"``, ``1``/``"val"``, ``2``/``"test"``)."""
        code = SPLIT_NAMES.index(split) if isinstance(split, str) else int(split)
        key = ("split", code, self.version)
        if key not in self._cache:
            self._cache[key] = np.flatnonzero(self.split == code)
        return self._cache[key]

    def train_ids(self) -> np.ndarray:
        """Ids of training nodes (the only ones a traversal may yield).

        When an activity mask is set (:meth:`set_active`), withdrawn nodes are left out; their
        split stays ``train``.
        """
        active = (self.attrs or {}).get(ACTIVE_ATTR)
        if active is None:
            return self.ids_in_split(TRAIN)
        key = ("train_active", self.version)
        if key not in self._cache:
            ids = self.ids_in_split(TRAIN)
            self._cache[key] = ids[active[ids]]
        return self._cache[key]

    def active_mask(self) -> np.ndarray | None:
        """The per-node activity mask set by :meth:`set_active` (``None`` when unset)."""
        return (self.attrs or {}).get(ACTIVE_ATTR)

    def set_active(self, mask: np.ndarray | None) -> None:
        """Withdraw nodes from traversal (``False``) or restore them; ``None`` clears the mask.

        The mask is stored in :attr:`attrs` under ``"_active"`` and only affects
        :meth:`train_ids`; splits and edges are untouched.
        """
        attrs = dict(self.attrs or {})
        if mask is None:
            attrs.pop(ACTIVE_ATTR, None)
        else:
            m = np.asarray(mask)
            if m.dtype != bool or m.shape != (self.num_nodes,):
                raise DataError(f"set_active: the mask must be a boolean array with one entry "
                                f"per node ({self.num_nodes}), got {m.dtype} {m.shape}.")
            attrs[ACTIVE_ATTR] = m.copy()
        self.attrs = attrs or None
        self.version += 1

    def random_nodes(self, n: int, rng: np.random.Generator, split: int | str | None = None,
                     replace: bool = True) -> np.ndarray:
        """``n`` node ids drawn uniformly (from one split if given)."""
        pool = (np.arange(self.num_nodes) if split is None else self.ids_in_split(split))
        if pool.size == 0:
            raise DataError(f"No nodes to draw from (split={split!r}).")
        return pool[rng.integers(0, pool.size, size=n)] if replace else rng.choice(
            pool, size=n, replace=False)

    def node_rows(self, ids: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Store rows for node ids: a point node's row, or one random member of a cluster.

        Each occurrence of a cluster id draws its own member (uniformly, from ``rng``; a fixed
        seed when ``None``), so repeated ids in a batch sample several points of the cluster.
        """
        ids = np.asarray(ids, dtype=np.int64)
        rows = self.store_row[ids]
        if self.members is None:
            return rows
        ptr, member_rows = self.members
        cluster = rows < 0
        if np.any(cluster):
            cid = ids[cluster]
            size = ptr[cid + 1] - ptr[cid]
            if np.any(size == 0):
                raise DataError("A cluster node with no members was asked for data.")
            gen = rng if rng is not None else np.random.default_rng(0)
            pick = ptr[cid] + (gen.random(cid.size) * size).astype(np.int64)
            rows = rows.copy()
            rows[cluster] = member_rows[pick]
        return rows

    def is_symmetric(self) -> bool:
        """Whether every edge ``u -> v`` has a reverse ``v -> u`` with the same weight."""
        n = self.num_nodes
        # the edge pattern first: an edge of weight 0 is still an edge, but sparse arithmetic
        # would drop it
        pattern = sp.csr_matrix((np.ones(self.indices.size, np.int32), self.indices,
                                 self.indptr), shape=(n, n))
        if (pattern != pattern.T).nnz:
            return False
        a = self.to_scipy()
        diff = a - a.T
        return bool(diff.nnz == 0 or np.abs(diff.data).max() <= 1e-6)

    def to_scipy(self) -> sp.csr_matrix:
        """The weighted adjacency as a SciPy CSR matrix (shares no memory)."""
        n = self.num_nodes
        return sp.csr_matrix((self.weights.copy(), self.indices.copy(), self.indptr.copy()),
                             shape=(n, n))

    # ------------------------------------------------------------------ views
    def node(self, node_id: int) -> Node:
        """A light :class:`Node` view of one node."""
        from hypergraph.graph._views import ClusterNode, Node

        if not 0 <= node_id < self.num_nodes:
            raise DataError(f"Node id {node_id} out of range [0, {self.num_nodes}).")
        if self.store_row[node_id] < 0 and self.members is not None:
            return ClusterNode(self, int(node_id))
        return Node(self, int(node_id))

    def edges_of(self, node_id: int) -> list[Edge]:
        """:class:`Edge` views of the out-edges of one node."""
        from hypergraph.graph._views import Edge

        lo, hi = int(self.indptr[node_id]), int(self.indptr[node_id + 1])
        return [Edge(self, pos, node_id) for pos in range(lo, hi)]

    def hyperedge(self, index: int) -> HyperEdge:
        """A :class:`HyperEdge` view of one hyperedge."""
        from hypergraph.graph._views import HyperEdge

        if not 0 <= index < self.num_hyperedges:
            raise DataError(f"Hyperedge {index} out of range [0, {self.num_hyperedges}).")
        return HyperEdge(self, int(index))

    # ------------------------------------------------------------------ mutation
    def _replace_edges(self, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> None:
        self.indptr, self.indices, self.weights = _csr_from_pairs(self.num_nodes, src, dst, w)
        self.version += 1

    def _checked_edges(self, what: str, src: np.ndarray | Sequence[int],
                       dst: np.ndarray | Sequence[int],
                       weights: np.ndarray | Sequence[float] | None, symmetric: bool,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validated ``(src, dst, weights)`` without self-loops, mirrored when ``symmetric``."""
        s = _as_index(src, self.num_nodes, f"{what} src")
        d = _as_index(dst, self.num_nodes, f"{what} dst")
        if s.shape != d.shape:
            raise DataError(f"{what}: src and dst must have the same length.")
        w = np.ones(s.size, np.float32) if weights is None else np.asarray(weights, np.float32)
        if w.shape != s.shape:
            raise DataError(f"{what}: weights must have one entry per edge ({s.size}), "
                            f"got {w.size}.")
        if not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
            raise DataError(f"{what}: weights must be finite and non-negative.")
        keep = s != d
        s, d, w = s[keep], d[keep], w[keep]
        if symmetric:
            s, d, w = np.concatenate([s, d]), np.concatenate([d, s]), np.concatenate([w, w])
        return s, d, w

    def add_edges(self, src: np.ndarray | Sequence[int], dst: np.ndarray | Sequence[int],
                  weights: np.ndarray | Sequence[float] | None = None, *,
                  symmetric: bool = True) -> None:
        """Add edges in bulk (an existing edge keeps the larger weight)."""
        s, d, w = self._checked_edges("add_edges", src, dst, weights, symmetric)
        os_, od, ow = self.edge_list()
        self._replace_edges(np.concatenate([os_, s]), np.concatenate([od, d]),
                            np.concatenate([ow, w]))

    def remove_edges(self, src: np.ndarray | Sequence[int], dst: np.ndarray | Sequence[int],
                     *, symmetric: bool = True) -> int:
        """Remove edges in bulk; returns how many directed entries were removed."""
        n = self.num_nodes
        s = _as_index(src, n, "remove_edges src")
        d = _as_index(dst, n, "remove_edges dst")
        if symmetric:
            s, d = np.concatenate([s, d]), np.concatenate([d, s])
        os_, od, ow = self.edge_list()
        drop = np.isin(os_ * n + od, s * n + d)
        if drop.any():
            self._replace_edges(os_[~drop], od[~drop], ow[~drop])
        return int(drop.sum())

    def set_edges(self, src: np.ndarray | Sequence[int], dst: np.ndarray | Sequence[int],
                  weights: np.ndarray | Sequence[float] | None = None, *,
                  symmetric: bool = True) -> None:
        """Replace every pairwise edge at once (duplicates keep the larger weight)."""
        self._replace_edges(*self._checked_edges("set_edges", src, dst, weights, symmetric))

    def restore_edges(self, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                      attrs: dict[str, np.ndarray] | None, version: int) -> None:
        """Put back edges and node attributes saved from this graph (for an exact resume).

        The arrays are taken as they are (they came from a valid graph of the same nodes);
        ``version`` is restored too, and caches derived from the old edges are dropped.
        """
        self.indptr, self.indices, self.weights = indptr, indices, weights
        self.attrs, self.version = attrs, version
        self._cache.clear()

    def set_weights(self, weights: np.ndarray) -> None:
        """Replace all edge weights (same order as :attr:`indices`)."""
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != self.weights.shape:
            raise DataError(f"set_weights: expected {self.weights.shape}, got {w.shape}.")
        if not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
            raise DataError("set_weights: weights must be finite and non-negative.")
        self.weights = w
        self.version += 1

    def set_hyperedges(self, hyperedges: Sequence[Sequence[int]] | sp.csr_matrix | None) -> None:
        """Replace the hyperedges (lists of member ids, or an incidence matrix)."""
        if hyperedges is None or sp.issparse(hyperedges):
            self.incidence = None if hyperedges is None else sp.csr_matrix(hyperedges)
        else:
            self.incidence = incidence_from_lists(hyperedges, self.num_nodes)
        self.version += 1

    # ------------------------------------------------------------------ subgraphs
    def subgraph(self, nodes: np.ndarray | Sequence[int]) -> HyperGraph:
        """The subgraph induced by ``nodes`` (a boolean mask or ids), re-indexed.

        New node ``j`` is old node ``ids[j]`` where ``ids`` are the given ids in order (sorted
        when a mask is given); :attr:`attrs` gains ``"parent_id"`` holding ``ids``.
        """
        ids = _as_index(nodes, self.num_nodes, "subgraph")
        if np.unique(ids).size != ids.size:
            raise DataError("subgraph: node ids must be distinct.")
        sub = self.to_scipy()[ids][:, ids].tocsr()
        sub.sort_indices()
        incidence = None
        if self.incidence is not None:
            inc = self.incidence[:, ids].tocsr()
            incidence = inc[np.diff(inc.indptr) > 0]
        members = None
        if self.members is not None:
            ptr, rows = self.members
            sizes = ptr[ids + 1] - ptr[ids]
            new_ptr = np.zeros(ids.size + 1, np.int64)
            np.cumsum(sizes, out=new_ptr[1:])
            take = np.concatenate([np.arange(ptr[i], ptr[i + 1]) for i in ids]) if ids.size \
                else np.zeros(0, np.int64)
            members = (new_ptr, rows[take.astype(np.int64)])
        attrs = {k: v[ids] for k, v in (self.attrs or {}).items()}
        parent = self.attrs.get("parent_id") if self.attrs else None
        attrs["parent_id"] = ids if parent is None else parent[ids]
        g = HyperGraph(sub.indptr.astype(np.int64), sub.indices.astype(np.int32),
                       sub.data.astype(np.float32), self.split[ids].copy(),
                       self.label[ids].copy(), self.store_row[ids].copy(), incidence=incidence,
                       members=members, attrs=attrs)
        g.store = self.store
        return g

    def split_subgraph(self, split: int | str) -> HyperGraph:
        """The subgraph of one split (``"train"``, ``"val"``, ``"test"``)."""
        return self.subgraph(self.ids_in_split(split))

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check the CSR and node-array invariants; raise :class:`DataError` when broken."""
        n = self.num_nodes
        ip, ix, w = self.indptr, self.indices, self.weights
        if ip.ndim != 1 or n < 0 or ip[0] != 0 or ip[-1] != ix.size:
            raise DataError("Graph CSR invalid: indptr must start at 0 and end at len(indices).")
        if np.any(np.diff(ip) < 0):
            raise DataError("Graph CSR invalid: indptr must be non-decreasing.")
        if ix.size != w.size:
            raise DataError("Graph CSR invalid: indices and weights differ in length.")
        if ix.size and (ix.min() < 0 or ix.max() >= n):
            raise DataError("Graph CSR invalid: an edge points to a node that does not exist.")
        if w.size and (not np.all(np.isfinite(w)) or w.min() < 0):
            raise DataError("Graph CSR invalid: weights must be finite and non-negative.")
        for name in ("split", "label", "store_row"):
            arr = getattr(self, name)
            if arr.shape[0] != n:
                raise DataError(f"Graph invalid: '{name}' has {arr.shape[0]} entries for {n} "
                                "nodes.")
        if n and (self.split.min() < 0 or self.split.max() > 2):
            raise DataError("Graph invalid: split codes must be 0 (train), 1 (val) or 2 (test).")
        if self.incidence is not None and self.incidence.shape[1] != n:
            raise DataError(f"Graph invalid: incidence has {self.incidence.shape[1]} columns "
                            f"for {n} nodes.")
        for name, arr in (self.attrs or {}).items():
            if arr.shape[0] != n:
                raise DataError(f"Graph invalid: attribute '{name}' has {arr.shape[0]} entries "
                                f"for {n} nodes.")
        active = (self.attrs or {}).get(ACTIVE_ATTR)
        if active is not None and active.dtype != bool:
            raise DataError(f"Graph invalid: the activity mask '{ACTIVE_ATTR}' must be boolean.")
        if self.members is not None:
            ptr, rows = self.members
            if ptr.shape != (n + 1,) or (n and (ptr[0] != 0 or ptr[-1] != rows.size
                                                or np.any(np.diff(ptr) < 0))):
                raise DataError("Graph invalid: members must be a CSR pair (ptr of n + 1 "
                                "non-decreasing entries from 0 to len(rows), rows).")
            empty = (self.store_row < 0) & (np.diff(ptr) == 0)
            if np.any(empty):
                raise DataError(f"Graph invalid: cluster nodes {np.flatnonzero(empty)[:5].tolist()}"
                                " hold no members.")
        elif n and self.store_row.min() < 0:
            raise DataError("Graph invalid: nodes with store_row -1 (clusters) need members.")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to one ``.npz`` file (written atomically)."""
        arrays: dict[str, np.ndarray] = {
            "format_version": np.array(_FORMAT_VERSION), "indptr": self.indptr,
            "indices": self.indices, "weights": self.weights, "split": self.split,
            "label": self.label, "store_row": self.store_row,
        }
        if self.incidence is not None:
            inc = self.incidence.tocsr()
            arrays |= {"inc_indptr": inc.indptr, "inc_indices": inc.indices,
                       "inc_data": inc.data, "inc_shape": np.array(inc.shape)}
        if self.members is not None:
            arrays |= {"members_ptr": self.members[0], "members_rows": self.members[1]}
        for name, arr in (self.attrs or {}).items():
            arrays[f"attr__{name}"] = arr
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HyperGraph:
        """Load a graph written by :meth:`save`; malformed files raise :class:`DataError`."""
        path = Path(path)
        require_file(path, f"Graph file '{path}'")
        if not zipfile.is_zipfile(path):
            raise DataError(f"Graph file '{path}' is not a HyperGraph .npz file: it is not a "
                            "zip archive (as numpy.savez writes).")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            raise DataError(f"Graph file '{path}' is not a HyperGraph .npz file: {err}") from err
        missing = {"indptr", "indices", "weights", "split", "label", "store_row"} - set(data)
        if missing:
            raise DataError(f"Graph file '{path}' lacks arrays {sorted(missing)}.")
        incidence = None
        if "inc_indptr" in data:
            incidence = sp.csr_matrix((data["inc_data"], data["inc_indices"], data["inc_indptr"]),
                                      shape=tuple(data["inc_shape"]))
        members = None
        if "members_ptr" in data:
            members = (data["members_ptr"], data["members_rows"])
        attrs = {k[6:]: v for k, v in data.items() if k.startswith("attr__")} or None
        g = cls(data["indptr"], data["indices"], data["weights"], data["split"], data["label"],
                data["store_row"], incidence=incidence, members=members, attrs=attrs)
        g.validate()
        return g

    # ------------------------------------------------------------------ interop
    def to_networkx(self) -> nx.Graph:
        """A networkx graph (``Graph`` if symmetric, else ``DiGraph``) with node attributes."""
        import networkx as nx

        g: nx.Graph = nx.Graph() if self.is_symmetric() else nx.DiGraph()
        for i in range(self.num_nodes):
            g.add_node(i, split=int(self.split[i]), label=self.label[i].item(),
                       store_row=int(self.store_row[i]))
        src, dst, w = self.edge_list()
        g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist(), strict=True))
        return g

    @classmethod
    def from_networkx(cls, g: nx.Graph, weight: str = "weight") -> HyperGraph:
        """Build from a networkx graph whose nodes are ``0..n-1`` (or relabelled in order).

        Node attributes ``split``, ``label`` and ``store_row`` are read when present.
        """
        import networkx as nx

        nodes = list(g.nodes())
        index = {v: i for i, v in enumerate(nodes)}
        n = len(nodes)
        edges = list(g.edges(data=weight, default=1.0))
        src = np.array([index[u] for u, _, _ in edges], np.int64)
        dst = np.array([index[v] for _, v, _ in edges], np.int64)
        w = np.array([x for _, _, x in edges], np.float32)
        data = g.nodes
        split = np.array([data[v].get("split", TRAIN) for v in nodes], np.int8)
        label = np.array([data[v].get("label", -1) for v in nodes])
        store_row = np.array([data[v].get("store_row", i) for i, v in enumerate(nodes)],
                             np.int64)
        return cls.from_edges(n, src, dst, w, symmetric=not isinstance(g, nx.DiGraph),
                              split=split, label=label, store_row=store_row,
                              allow_self_loops=True)

    def __repr__(self) -> str:
        return (f"HyperGraph(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"hyperedges={self.num_hyperedges})")


def incidence_from_lists(hyperedges: Sequence[Sequence[int]], n: int) -> sp.csr_matrix:
    """A ``(H, n)`` CSR incidence matrix from lists of member ids."""
    lengths = np.array([len(h) for h in hyperedges], np.int64)
    indptr = np.zeros(len(hyperedges) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    cols = (np.concatenate([np.asarray(h, np.int64) for h in hyperedges])
            if len(hyperedges) else np.zeros(0, np.int64))
    if cols.size and (cols.min() < 0 or cols.max() >= n):
        raise DataError(f"Hyperedge members must lie in [0, {n}).")
    inc = sp.csr_matrix((np.ones(cols.size, np.float32), cols, indptr), shape=(len(hyperedges), n))
    inc.sum_duplicates()
    return inc
