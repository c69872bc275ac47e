"""Rebuild the edges from the model's current embedding every few epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hypergraph.dataloaders._embedding import model_embedding
from hypergraph.dataloaders._knn import KNNDataloader, similarity_weights
from hypergraph.dataloaders._threshold import ThresholdDataloader
from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph
from hypergraph.logging import get_logger
from hypergraph.managers._base import GraphManager
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int

if TYPE_CHECKING:
    from hypergraph.models import Model

__all__ = ["ReembedManager"]

logger = get_logger(__name__)


@register("manager", "reembed")
class ReembedManager(GraphManager):
    """Every ``every`` epochs, rebuild the pairwise edges from ``model.embed`` of every node.

    Each point node is embedded by the current model (the penultimate layer; features only,
    no labels), then the edges are replaced by a symmetrised kNN graph (``method="knn"``, ``k``
    neighbours) or a threshold graph (``"threshold"``: similarity >= ``threshold``, at most
    ``k`` per node) over those embeddings; both switch to approximate search on large graphs
    as the ``knn`` and ``threshold`` builders do. Hyperedges, node arrays and splits are untouched.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"manager:dynamic"})
    requires: ClassVar[frozenset[str]] = frozenset({"embedding", "node:point",
                                                    "graph:pairwise"})
    space = {
        "every": Int(low=1, high=10_000, help="epochs between rebuilds"),
        "method": Categorical(choices=("knn", "threshold"),
                              help="graph built over the embeddings"),
        "k": Int(low=1, high=200, help="neighbours (cap) per node"),
        "metric": Categorical(choices=("cosine", "euclidean"),
                              help="similarity of embeddings"),
        "threshold": Float(low=0.0, high=1.0,
                           help="minimum similarity (method=threshold)"),
    }

    def __init__(self, every: int = 5, method: str = "knn", k: int = 10, metric: str = "cosine",
                 threshold: float = 0.5) -> None:
        self.every = every
        self.method = method
        self.k = k
        self.metric = metric
        self.threshold = threshold

    def setup(self, graph: HyperGraph, rng: np.random.Generator) -> None:
        super().setup(graph, rng)
        if graph.members is not None and np.any(graph.store_row < 0):
            raise DataError(f"{self.display_name()} rebuilds point graphs; this graph holds "
                            "cluster nodes. Use another manager with the 'cluster' dataloader.")
        if graph.store is None:
            raise DataError(f"{self.display_name()}: the graph has no data store attached.")

    def embeddings(self, graph: HyperGraph, model: Model) -> np.ndarray:
        """The model's embedding of every node (one row per node)."""
        assert graph.store is not None
        return model_embedding(model, graph.store, graph.store_row.astype(np.int64))

    def rebuild(self, graph: HyperGraph, model: Model) -> None:
        """Replace the pairwise edges by a graph over the current embeddings."""
        E = self.embeddings(graph, model)
        if self.method == "knn":
            ids, dist = KNNDataloader(k=self.k, metric=self.metric).neighbours(E, self.rng_)
            src = np.repeat(np.arange(E.shape[0]), ids.shape[1])
            dst, w = ids.ravel(), similarity_weights(dist.ravel(), self.metric)
        else:
            src, dst, w = ThresholdDataloader(threshold=self.threshold, max_degree=self.k,
                                              metric=self.metric).edges(E, self.rng_)
        graph.set_edges(src, dst, w, symmetric=True)
        logger.info("reembed: rebuilt %d edges from the model's embedding", graph.num_edges)

    def on_epoch_end(self, graph: HyperGraph, model: Model, epoch: int) -> bool:
        if (epoch + 1) % self.every != 0:
            return False
        self.rebuild(graph, model)
        return True
