"""k-nearest-neighbour graph builder: exact search, or approximate search (faiss) at scale.

Exact search compares every pair of rows (scikit-learn, brute force): O(n^2 d) time, fine up to a
few ten thousand rows. Above ``approx_threshold`` rows (``mode="auto"``) or with
``mode="approx"``, an inverted-file index (faiss ``IndexIVFFlat``: k-means cells, each row
compared only with the rows of the ``nprobe`` cells nearest to it) finds the neighbours instead.
``nprobe`` is tuned on a random sample of rows until recall@k against exact search on that
sample reaches ``target_recall``; the measured recall is logged and kept in ``recall_``. The
index is built deterministically (seeded k-means, per-row search), so the same seed gives the
same graph on any number of threads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hypergraph.dataloaders._base import Dataloader, graph_from_pairs
from hypergraph.dataloaders._embedding import EMBED_DIM, FEATURES, builder_vectors
from hypergraph.datasets import DatasetBundle
from hypergraph.exceptions import InvalidParameterError
from hypergraph.graph import HyperGraph
from hypergraph.logging import get_logger
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int

if TYPE_CHECKING:
    import faiss

__all__ = ["KNNDataloader", "exact_neighbours", "knn_recall", "similarity_weights"]

logger = get_logger(__name__)

#: Rows whose exact neighbours are computed to measure (and tune) the approximate recall.
RECALL_SAMPLE = 1000


def similarity_weights(dist: np.ndarray, metric: str) -> np.ndarray:
    """Edge weights in ``(0, 1]`` from neighbour distances.

    Cosine: the cosine similarity (clipped below at 1e-6). Euclidean: a Gaussian kernel whose
    bandwidth is the median squared distance.
    """
    if metric == "cosine":
        return np.clip(1.0 - dist, 1e-6, 1.0).astype(np.float32)
    sq = dist.astype(np.float64) ** 2
    scale = float(np.median(sq)) if sq.size else 1.0
    return np.maximum(np.exp(-sq / max(scale, 1e-12)), 1e-6).astype(np.float32)


def knn_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """recall@k: the share of the exact neighbours (rows of ``exact``) found in ``found``.

    Args:
        found: ``[m, k']`` neighbour ids from an approximate search (``-1`` = missing).
        exact: ``[m, k]`` the exact neighbour ids of the same rows.
    """
    if exact.size == 0:
        return 1.0
    hit = (exact[:, :, None] == found[:, None, :]).any(axis=2)
    return float(hit.mean())


def _drop_self(ids: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own id (not always column 0 when duplicates exist); keep ``k``."""
    not_self = ids != rows[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(dist, order, 1)


def _unit_rows(X: np.ndarray, metric: str) -> np.ndarray:
    """``float32`` rows; unit length for cosine (so L2 order equals cosine order)."""
    Xf = np.ascontiguousarray(X.reshape(X.shape[0], -1), dtype=np.float32)
    if metric == "cosine":
        norm = np.linalg.norm(Xf, axis=1, keepdims=True)
        Xf = Xf / np.maximum(norm, np.float32(1e-12))
    return Xf


def _metric_distances(sq: np.ndarray, metric: str) -> np.ndarray:
    """Squared L2 of prepared rows -> the metric's distance (cosine: ``1 - cos``, which is
    ``|a - b|^2 / 2`` for unit rows)."""
    sq = np.maximum(sq, 0.0)
    return (sq / 2.0 if metric == "cosine" else np.sqrt(sq)).astype(np.float32)


def exact_neighbours(reference: np.ndarray, queries: np.ndarray | None, k: int, metric: str,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, distances)`` of each query's ``k`` nearest reference rows, by exact search.

    Args:
        reference: ``[m, d]`` rows searched.
        queries: ``[q, d]`` rows whose neighbours are wanted; ``None``: the reference rows
            themselves, each excluding itself.
        k: Neighbours per query (fewer when the reference has fewer rows).
        metric: ``"cosine"`` or ``"euclidean"``.
    """
    from sklearn.neighbors import NearestNeighbors

    # Cosine order equals the Euclidean order of unit rows, and scikit-learn's Euclidean
    # brute force (one matrix product per chunk) is several times faster than its cosine.
    ref = _unit_rows(reference, metric)
    self_search = queries is None
    qry = ref if queries is None else _unit_rows(queries, metric)
    k = min(k, ref.shape[0] - int(self_search))
    if k < 1 or qry.shape[0] == 0:
        return np.zeros((qry.shape[0], 0), np.int64), np.zeros((qry.shape[0], 0), np.float32)
    nn = NearestNeighbors(n_neighbors=k + int(self_search), metric="euclidean", algorithm="brute")
    nn.fit(ref)
    dist, ids = nn.kneighbors(qry)
    if self_search:
        ids, dist = _drop_self(ids, dist, np.arange(qry.shape[0]), k)
    return ids, _metric_distances(dist.astype(np.float64) ** 2, metric)


@register("dataloader", "knn")
class KNNDataloader(Dataloader):
    """k-nearest-neighbour graph over the features, symmetrised, weighted by similarity.

    ``mode="auto"`` searches exactly up to ``approx_threshold`` rows and approximately above;
    ``"exact"`` and ``"approx"`` force one method. After an approximate build, ``recall_`` holds
    recall@k against exact search measured on a sample of rows, and ``nprobe_`` the number of
    index cells each row searched.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "graph:symmetric",
                                                "node:point"})
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector|features:embedding"})
    space = {
        "k": Int(low=1, high=200, help="neighbours per node before symmetrising"),
        "metric": Categorical(choices=("cosine", "euclidean"),
                              help="distance used to find neighbours"),
        "mode": Categorical(choices=("auto", "exact", "approx"),
                            help="exact search, approximate search (faiss IVF), or auto: "
                                 "approximate above approx_threshold rows"),
        "approx_threshold": Int(low=0, high=1_000_000_000, log=False,
                                help="rows above which mode=auto searches approximately"),
        "target_recall": Float(low=0.5, high=1.0,
                               help="recall@k (vs exact search, on a sample) the approximate "
                                    "search is tuned to reach"),
        "features": FEATURES,
        "embed_dim": EMBED_DIM,
    }

    def __init__(self, k: int = 10, metric: str = "cosine", mode: str = "auto",
                 approx_threshold: int = 20_000, target_recall: float = 0.95,
                 features: str = "raw", embed_dim: int = 32) -> None:
        self.k = k
        self.metric = metric
        self.mode = mode
        self.approx_threshold = approx_threshold
        self.target_recall = target_recall
        self.features = features
        self.embed_dim = embed_dim

    # ------------------------------------------------------------------ search
    def use_approx(self, n: int) -> bool:
        """Whether ``n`` rows are searched approximately under the current ``mode``."""
        if self.mode not in ("auto", "exact", "approx"):
            raise InvalidParameterError(f"The 'mode' parameter of dataloader 'knn' must be one "
                                        f"of {{'auto', 'exact', 'approx'}}. Got {self.mode!r}.")
        return self.mode == "approx" or (self.mode == "auto" and n > self.approx_threshold)

    def neighbours(self, X: np.ndarray, rng: np.random.Generator | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, distances)`` of the ``k`` nearest neighbours of each row (self excluded).

        Args:
            X: ``[n, d]`` rows to link.
            rng: Seeds the approximate index (k-means) and the recall sample; a fixed seed is
                used when ``None``. Exact search draws nothing.
        """
        n = X.shape[0]
        k = min(self.k, n - 1)
        self.recall_: float | None = None
        self.nprobe_: int | None = None
        if k < 1:
            return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
        if self.use_approx(n):
            return self._approx(X, k, rng if rng is not None else np.random.default_rng(0))
        return self._exact(X, k)

    def _exact(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_neighbours(X, None, k, self.metric)

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        return _unit_rows(X, self.metric)

    def _distances(self, sq: np.ndarray) -> np.ndarray:
        return _metric_distances(sq, self.metric)

    def _approx(self, X: np.ndarray, k: int, rng: np.random.Generator,
                ) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        Xf = self._prepare(X)
        n, d = Xf.shape
        nlist = int(max(1, min(round(4 * math.sqrt(n)), n // 8)))
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist)
        index.cp.seed = int(rng.integers(0, 2**31 - 1))
        index.cp.max_points_per_centroid = 64  # k-means on a sample of 64 rows per cell
        index.cp.min_points_per_centroid = 1  # small inputs: no faiss warning
        index.train(Xf)
        index.add(Xf)

        # Tune nprobe on a sample whose exact neighbours are known.
        sample = np.sort(rng.choice(n, size=min(n, RECALL_SAMPLE), replace=False))
        flat = faiss.IndexFlatL2(d)
        flat.add(Xf)
        _, exact = flat.search(Xf[sample], k + 1)
        exact_ids, _ = _drop_self(exact, exact, sample, k)
        nprobe = 1
        while True:
            index.nprobe = nprobe
            _, found = index.search(Xf[sample], k + 1)
            recall = knn_recall(_drop_self(found, found, sample, k)[0], exact_ids)
            if recall >= self.target_recall or nprobe >= nlist:
                break
            nprobe = min(nlist, nprobe * 2)
        if recall < self.target_recall:
            logger.warning("knn: approximate search reached recall@%d %.3f < target %.3f even "
                           "probing every cell", k, recall, self.target_recall)
        self.recall_, self.nprobe_ = recall, nprobe

        sq, ids = _search_all(index, Xf, k + 1)
        missing = np.flatnonzero((ids < 0).sum(axis=1) > 0)
        if missing.size:  # rows whose probed cells held fewer than k + 1 rows
            sq[missing], ids[missing] = flat.search(Xf[missing], k + 1)
        ids, sq = _drop_self(ids, sq, np.arange(n), k)
        logger.info("knn: approximate search of %d rows (%d cells, nprobe %d): recall@%d %.3f "
                    "on %d sampled rows", n, nlist, nprobe, k, recall, sample.size)
        return ids.astype(np.int64), self._distances(sq)

    # ------------------------------------------------------------------ build
    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        X = builder_vectors(bundle, self.features, self.embed_dim, rng,
                            owner="dataloader 'knn'")
        ids, dist = self.neighbours(X, rng)
        src = np.repeat(np.arange(X.shape[0]), ids.shape[1])
        return graph_from_pairs(bundle, src, ids.ravel(), similarity_weights(dist.ravel(),
                                                                             self.metric))


def _search_all(index: faiss.Index, X: np.ndarray, kk: int, chunk: int = 65_536,
                ) -> tuple[np.ndarray, np.ndarray]:
    """``index.search(X, kk)`` in chunks of rows (bounded temporary memory)."""
    n = X.shape[0]
    sq = np.empty((n, kk), np.float32)
    ids = np.empty((n, kk), np.int64)
    for lo in range(0, n, chunk):
        sq[lo:lo + chunk], ids[lo:lo + chunk] = index.search(X[lo:lo + chunk], kk)
    return sq, ids
