"""Similarity-threshold graph builder with a degree cap, computed block by block."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hypergraph.dataloaders._base import Dataloader, graph_from_pairs
from hypergraph.dataloaders._embedding import EMBED_DIM, FEATURES, builder_vectors
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import HyperGraph
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int

__all__ = ["ThresholdDataloader", "threshold_edges", "threshold_edges_knn"]

#: Similarity entries computed at once (rows per block x n): 2**22 float32 = 16 MiB, plus the
#: int64 top-k selection over the block (32 MiB).
_BLOCK_ENTRIES = 1 << 22
#: Rows used to estimate the Euclidean kernel scale (all rows below this size).
_SCALE_SAMPLE = 2048


def _euclidean_scale(X: np.ndarray, rng: np.random.Generator) -> float:
    """Median squared distance between distinct rows (on a seeded sample for large data)."""
    n = X.shape[0]
    sample = X if n <= _SCALE_SAMPLE else X[np.sort(rng.choice(n, _SCALE_SAMPLE, replace=False))]
    sq = np.einsum("ij,ij->i", sample, sample, dtype=np.float64)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (sample @ sample.T), 0.0)
    off = d2[~np.eye(sample.shape[0], dtype=bool)]
    scale = float(np.median(off)) if off.size else 1.0
    return scale if scale > 1e-12 else 1.0


def threshold_edges(X: np.ndarray, threshold: float, max_degree: int, metric: str,
                    rng: np.random.Generator, symmetrize: str = "union",
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed edges ``(src, dst, similarity)`` of a threshold graph.

    Each row keeps its ``max_degree`` most similar other rows whose similarity is at least
    ``threshold``. Similarity is the cosine (``metric="cosine"``) or ``exp(-d^2 / s)`` with ``s``
    the median squared distance between rows (``"euclidean"``). Rows are processed in blocks
    so that memory stays ``O(block x n)``, never ``n x n``. With ``symmetrize="mutual"`` only
    pairs chosen from both ends are kept (degrees then never exceed ``max_degree``); with
    ``"union"`` the caller symmetrises (a node may then exceed the cap through others' choices).
    """
    X = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=np.float32)
    n = X.shape[0]
    k = min(max_degree, n - 1)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if k < 1:
        return empty
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        Y = X / np.maximum(norms, 1e-12)
        sq = None
        scale = 1.0
    else:
        Y = X
        sq = np.einsum("ij,ij->i", X, X)
        scale = _euclidean_scale(X, rng)
    block = max(1, min(n, _BLOCK_ENTRIES // max(n, 1)))
    srcs, dsts, sims = [], [], []
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        S = Y[lo:hi] @ Y.T
        if sq is not None:
            d2 = np.maximum(sq[lo:hi, None] + sq[None, :] - 2.0 * S, 0.0)
            S = np.exp(-d2 / np.float32(scale))
        local = np.arange(hi - lo)
        S[local, lo + local] = -np.inf
        if k < n - 1:
            idx = np.argpartition(S, n - k, axis=1)[:, n - k:]
        else:
            idx = np.broadcast_to(np.arange(n), (hi - lo, n))
        vals = np.take_along_axis(S, idx, axis=1)
        keep = vals >= threshold
        rows = np.broadcast_to((lo + local)[:, None], idx.shape)
        srcs.append(rows[keep].astype(np.int64))
        dsts.append(idx[keep].astype(np.int64))
        sims.append(vals[keep].astype(np.float32))
    src, dst, sim = np.concatenate(srcs), np.concatenate(dsts), np.concatenate(sims)
    if symmetrize == "mutual" and src.size:
        key = src * n + dst
        keep = np.isin(key, dst * n + src)
        src, dst, sim = src[keep], dst[keep], sim[keep]
    return src, dst, np.clip(sim, 1e-6, 1.0).astype(np.float32)


def threshold_edges_knn(X: np.ndarray, threshold: float, max_degree: int, metric: str,
                        rng: np.random.Generator, symmetrize: str = "union",
                        mode: str = "approx") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges of :func:`threshold_edges` found through a k-nearest-neighbour search.

    A row's ``max_degree`` most similar rows are its ``max_degree`` nearest neighbours (both
    similarities fall as the distance grows), so the threshold graph is the kNN graph with
    ``k = max_degree`` filtered by similarity. With ``mode="approx"`` the search is the ``knn``
    builder's approximate index, which scales to millions of rows.
    """
    from hypergraph.dataloaders._knn import KNNDataloader

    X = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=np.float32)
    n = X.shape[0]
    ids, dist = KNNDataloader(k=max_degree, metric=metric, mode=mode).neighbours(X, rng)
    src = np.repeat(np.arange(n, dtype=np.int64), ids.shape[1])
    dst = ids.ravel().astype(np.int64)
    d = dist.ravel().astype(np.float64)
    sim = 1.0 - d if metric == "cosine" else np.exp(-(d**2) / _euclidean_scale(X, rng))
    keep = sim >= threshold
    src, dst, sim = src[keep], dst[keep], sim[keep]
    if symmetrize == "mutual" and src.size:
        mutual = np.isin(src * n + dst, dst * n + src)
        src, dst, sim = src[mutual], dst[mutual], sim[mutual]
    return src, dst, np.clip(sim, 1e-6, 1.0).astype(np.float32)


@register("dataloader", "threshold")
class ThresholdDataloader(Dataloader):
    """Edges between points whose similarity passes ``threshold``, at most ``max_degree`` each.

    Each point links to its ``max_degree`` most similar points among those with similarity
    >= ``threshold`` (cosine, or a Gaussian kernel of the Euclidean distance scaled by the median
    squared distance); the graph is symmetrised (``union``) or keeps only mutual choices
    (``mutual``). Exact search runs in row blocks: memory ``O(block x n)``, time ``O(n^2 d)``.
    Above ``approx_threshold`` rows (``mode="auto"``) or with ``mode="approx"`` the candidates
    come from the ``knn`` builder's approximate index instead (the top ``max_degree`` by
    similarity are the ``max_degree`` nearest neighbours). Points with no similar neighbour
    stay isolated (walkers teleport away from them).
    """

    tags: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "graph:symmetric",
                                                "node:point"})
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector|features:embedding"})
    space = {
        "threshold": Float(low=0.0, high=1.0,
                           help="minimum similarity of an edge"),
        "max_degree": Int(low=1, high=200, log=True,
                          help="most similar neighbours kept per node"),
        "metric": Categorical(choices=("cosine", "euclidean"),
                              help="cosine similarity or Gaussian kernel of Euclidean distance"),
        "symmetrize": Categorical(choices=("union", "mutual"),
                                  help="keep an edge chosen by either end, or by both"),
        "mode": Categorical(choices=("auto", "exact", "approx"),
                            help="exact blockwise search, approximate kNN candidates, or auto: "
                                 "approximate above approx_threshold rows"),
        "approx_threshold": Int(low=0, high=1_000_000_000,
                                help="rows above which mode=auto searches approximately"),
        "features": FEATURES,
        "embed_dim": EMBED_DIM,
    }

    def __init__(self, threshold: float = 0.5, max_degree: int = 20, metric: str = "cosine",
                 symmetrize: str = "union", mode: str = "auto", approx_threshold: int = 50_000,
                 features: str = "raw", embed_dim: int = 32) -> None:
        self.threshold = threshold
        self.max_degree = max_degree
        self.metric = metric
        self.symmetrize = symmetrize
        self.mode = mode
        self.approx_threshold = approx_threshold
        self.features = features
        self.embed_dim = embed_dim

    def edges(self, X: np.ndarray, rng: np.random.Generator,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directed edges of the threshold graph over the rows of ``X``."""
        n = X.shape[0]
        if self.mode == "approx" or (self.mode == "auto" and n > self.approx_threshold):
            return threshold_edges_knn(X, self.threshold, self.max_degree, self.metric, rng,
                                       self.symmetrize)
        return threshold_edges(X, self.threshold, self.max_degree, self.metric, rng,
                               self.symmetrize)

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        X = builder_vectors(bundle, self.features, self.embed_dim, rng, self.display_name())
        src, dst, w = self.edges(X, rng)
        return graph_from_pairs(bundle, src, dst, w)
