"""Attribute hyperedges: one hyperedge per value of a categorical attribute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from hypergraph.dataloaders._base import Dataloader, graph_from_pairs
from hypergraph.dataloaders._embedding import EMBED_DIM, FEATURES, builder_vectors
from hypergraph.dataloaders._knn import KNNDataloader, similarity_weights
from hypergraph.datasets import DatasetBundle
from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Fixed, Int

__all__ = ["AttributeDataloader", "attribute_incidence"]


def _missing(values: np.ndarray) -> np.ndarray:
    """Rows whose value counts as missing: NaN, None, the empty string, or a negative code."""
    if values.dtype.kind in "iu":
        return np.asarray(values < 0)
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values))
    if values.dtype.kind in "OUS":
        return np.array([v is None or (isinstance(v, float) and v != v) or
                         (isinstance(v, str | bytes) and len(v) == 0) for v in values], bool)
    return np.zeros(values.shape[0], bool)


def attribute_incidence(attrs: dict[str, np.ndarray], columns: Sequence[str], n: int,
                        min_size: int = 2) -> tuple[sp.csr_matrix, list[tuple[str, Any]]]:
    """``(H x n)`` incidence of the groups of rows sharing one value of one column.

    Returns the incidence matrix and, per hyperedge, its ``(column, value)``. Missing values
    join no hyperedge; groups smaller than ``min_size`` are dropped.
    """
    blocks: list[sp.csr_matrix] = []
    names: list[tuple[str, Any]] = []
    for col in columns:
        values = np.asarray(attrs[col])
        present = np.flatnonzero(~_missing(values))
        if present.size == 0:
            continue
        uniq, inverse = np.unique(values[present].astype(str) if values.dtype.kind == "O"
                                  else values[present], return_inverse=True)
        counts = np.bincount(inverse, minlength=uniq.size)
        keep = counts >= min_size
        if not keep.any():
            continue
        new_id = np.cumsum(keep) - 1
        sel = keep[inverse]
        rows, cols = new_id[inverse[sel]], present[sel]
        blocks.append(sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)),
                                    shape=(int(keep.sum()), n)))
        names.extend((col, v.item() if hasattr(v, "item") else v) for v in uniq[keep])
    if not blocks:
        return sp.csr_matrix((0, n), dtype=np.float32), []
    inc = sp.vstack(blocks).tocsr()
    inc.sort_indices()
    return inc, names


def _comember_edges(inc: sp.csr_matrix, k: int, rng: np.random.Generator,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For every membership, ``k`` random co-members of the same hyperedge (vectorised)."""
    coo = inc.tocoo()
    sizes = np.diff(inc.indptr)
    he, node = coo.row.astype(np.int64), coo.col.astype(np.int64)
    if he.size == 0 or k < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    he_rep, node_rep = np.repeat(he, k), np.repeat(node, k)
    pick = inc.indptr[he_rep] + (rng.random(he_rep.size) * sizes[he_rep]).astype(np.int64)
    other = inc.indices[pick].astype(np.int64)
    return node_rep, other


@register("dataloader", "attribute")
class AttributeDataloader(Dataloader):
    """Hyperedges joining all points that share a categorical attribute value.

    Each attribute column (``columns``; all of ``bundle.attrs`` when empty) gives one hyperedge
    per value held by at least ``min_size`` points, stored in the graph's incidence matrix
    (missing values join none). So that walkers can move, pairwise edges are added too:
    ``pairwise="knn"`` links each point to its ``k`` nearest neighbours by feature similarity,
    ``"comembers"`` to ``k`` random points of each hyperedge it belongs to (weight 1), and
    ``"none"`` adds no pairwise edge. Labels are never read. Datasets provide the attributes
    through ``bundle.attrs`` and declare the tag ``data:attributes``.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "graph:symmetric",
                                                "graph:hyperedges", "node:point"})
    requires: ClassVar[frozenset[str]] = frozenset(
        {"data:attributes", "features:vector|features:embedding"})
    space = {
        "columns": Fixed(types=(tuple, list, str),
                         help="attribute columns to use (empty: all the dataset provides)"),
        "min_size": Int(low=1, high=1_000_000, log=True,
                        help="smallest group that forms a hyperedge"),
        "pairwise": Categorical(choices=("knn", "comembers", "none"),
                                help="pairwise edges added for walkers"),
        "k": Int(low=1, high=200, help="pairwise neighbours per point"),
        "metric": Categorical(choices=("cosine", "euclidean"),
                              help="distance of the kNN pairwise edges"),
        "features": FEATURES,
        "embed_dim": EMBED_DIM,
    }

    def __init__(self, columns: tuple[str, ...] | str = (), min_size: int = 2,
                 pairwise: str = "knn", k: int = 10, metric: str = "cosine", features: str = "raw",
                 embed_dim: int = 32) -> None:
        self.columns = columns
        self.min_size = min_size
        self.pairwise = pairwise
        self.k = k
        self.metric = metric
        self.features = features
        self.embed_dim = embed_dim

    def _columns(self, bundle: DatasetBundle) -> list[str]:
        given = [self.columns] if isinstance(self.columns, str) else list(self.columns)
        cols = given or sorted(bundle.attrs)
        if not cols:
            raise DataError(f"{self.display_name()}: dataset '{bundle.name}' has no categorical "
                            "attributes (bundle.attrs is empty); use a dataset with attribute "
                            "columns or another dataloader.")
        missing = [c for c in cols if c not in bundle.attrs]
        if missing:
            raise DataError(f"{self.display_name()}: the 'columns' parameter names {missing}, "
                            f"which dataset '{bundle.name}' does not have; available: "
                            f"{sorted(bundle.attrs)}.")
        return cols

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        n = len(bundle)
        inc, _ = attribute_incidence(bundle.attrs, self._columns(bundle), n, self.min_size)
        if self.pairwise == "knn":
            X = builder_vectors(bundle, self.features, self.embed_dim, rng, self.display_name())
            ids, dist = KNNDataloader(k=self.k, metric=self.metric).neighbours(X, rng)
            src = np.repeat(np.arange(n), ids.shape[1])
            dst, w = ids.ravel(), similarity_weights(dist.ravel(), self.metric)
        elif self.pairwise == "comembers":
            src, dst = _comember_edges(inc, self.k, rng)
            w = np.ones(src.size, np.float32)
        else:
            src = dst = np.zeros(0, np.int64)
            w = np.zeros(0, np.float32)
        g = graph_from_pairs(bundle, src, dst, w)
        g.set_hyperedges(inc)
        g.version = 0
        g.validate()
        return g
