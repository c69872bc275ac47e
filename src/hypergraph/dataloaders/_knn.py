"""k-nearest-neighbour graph builder."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hypergraph.dataloaders._base import Dataloader, graph_from_pairs
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import HyperGraph
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Int

__all__ = ["KNNDataloader", "similarity_weights"]


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


@register("dataloader", "knn")
class KNNDataloader(Dataloader):
    """Exact k-nearest-neighbour graph over the features, symmetrised, weighted by similarity."""

    tags: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "graph:symmetric",
                                                "node:point"})
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector"})
    space = {
        "k": Int(default=10, low=1, high=200, help="neighbours per node before symmetrising"),
        "metric": Categorical(default="cosine", choices=("cosine", "euclidean"),
                              help="distance used to find neighbours"),
    }

    def __init__(self, k: int = 10, metric: str = "cosine") -> None:
        self.k = k
        self.metric = metric

    def neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, distances)`` of the ``k`` nearest neighbours of each row (self excluded)."""
        from sklearn.neighbors import NearestNeighbors

        n = X.shape[0]
        k = min(self.k, n - 1)
        if k < 1:
            return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
        nn = NearestNeighbors(n_neighbors=k + 1, metric=self.metric, algorithm="brute")
        nn.fit(X)
        dist, ids = nn.kneighbors(X)
        # drop each row's self match (not always column 0 when duplicates exist)
        not_self = ids != np.arange(n)[:, None]
        order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(ids, order, 1), np.take_along_axis(dist, order, 1)

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        X = bundle.features().reshape(len(bundle), -1)
        ids, dist = self.neighbours(X)
        src = np.repeat(np.arange(X.shape[0]), ids.shape[1])
        return graph_from_pairs(bundle, src, ids.ravel(), similarity_weights(dist.ravel(),
                                                                             self.metric))
