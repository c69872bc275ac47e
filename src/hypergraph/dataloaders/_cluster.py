"""k-means hypernode graph builder: each training node holds a cluster of data points."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from hypergraph.dataloaders._base import Dataloader
from hypergraph.dataloaders._embedding import EMBED_DIM, FEATURES, builder_vectors
from hypergraph.dataloaders._knn import exact_neighbours, similarity_weights
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import TRAIN, HyperGraph
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Int

__all__ = ["ClusterDataloader", "kmeans_groups"]


#: Up to this many rows, full (Lloyd) k-means is used: faster than mini-batch on small data.
_FULL_KMEANS_ROWS = 20_000


def kmeans_groups(X: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, centroids)`` of k-means on ``X``; empty clusters are dropped.

    Full k-means up to ``_FULL_KMEANS_ROWS`` rows, scikit-learn's ``MiniBatchKMeans`` above.

    Labels are renumbered ``0..c-1`` (``c <= n_clusters``); centroids are the member means.
    """
    m = X.shape[0]
    if n_clusters >= m:
        labels = np.arange(m)
    elif m <= _FULL_KMEANS_ROWS:
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=n_clusters, random_state=seed, n_init=1).fit_predict(X)
    else:
        from sklearn.cluster import MiniBatchKMeans

        km = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=3,
                             batch_size=4096)
        labels = km.fit_predict(X)
    _, labels = np.unique(labels, return_inverse=True)
    c = int(labels.max()) + 1 if m else 0
    assign = sp.csr_matrix((np.ones(m, np.float32), (labels, np.arange(m))), shape=(c, m))
    counts = np.asarray(assign.sum(axis=1)).ravel()
    centroids = np.asarray(assign @ X) / counts[:, None]
    return labels.astype(np.int64), centroids.astype(np.float32)


@register("dataloader", "cluster")
class ClusterDataloader(Dataloader):
    """k-means hypernodes: training points grouped into cluster nodes linked by centroid kNN.

    Training rows are clustered with k-means (mini-batch above 20,000 rows) into about
    ``n_train / cluster_size`` cluster nodes (``store_row = -1``; their rows are in
    ``graph.members``). A cluster never mixes splits: validation and test rows become ordinary
    point nodes (``eval_nodes="point"``) or clusters of their own split (``"cluster"``), so
    evaluation stays per point. Each training cluster links to its ``k`` nearest training
    clusters by centroid similarity, and each evaluation node to its ``k`` nearest training
    clusters. Gathering a cluster node's data
    draws one random member, so a walker that stops at a cluster samples a point from it.
    Labels are not used to build the graph; a cluster's node label is its members' majority
    class (or mean target), for display only.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "graph:symmetric",
                                                "node:cluster"})
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector|features:embedding"})
    space = {
        "cluster_size": Int(low=1, high=100_000, log=True,
                            help="average training points per cluster node"),
        "k": Int(low=1, high=200, help="neighbouring clusters per node"),
        "metric": Categorical(choices=("cosine", "euclidean"),
                              help="similarity of centroids"),
        "eval_nodes": Categorical(choices=("point", "cluster"),
                                  help="validation/test rows as point nodes or per-split "
                                       "clusters"),
        "features": FEATURES,
        "embed_dim": EMBED_DIM,
    }

    def __init__(self, cluster_size: int = 16, k: int = 8, metric: str = "cosine",
                 eval_nodes: str = "point", features: str = "raw", embed_dim: int = 32) -> None:
        self.cluster_size = cluster_size
        self.k = k
        self.metric = metric
        self.eval_nodes = eval_nodes
        self.features = features
        self.embed_dim = embed_dim

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        X = builder_vectors(bundle, self.features, self.embed_dim, rng, self.display_name())
        split = np.asarray(bundle.split, np.int8)
        seed = int(rng.integers(0, 2**31 - 1))
        node_split, node_vec, member_lists, node_rows = [], [], [], []
        for code in np.unique(split):
            rows = np.flatnonzero(split == code)
            if code == TRAIN or self.eval_nodes == "cluster":
                n_c = max(1, math.ceil(rows.size / self.cluster_size))
                labels, centroids = kmeans_groups(X[rows], n_c, seed + int(code))
                order = np.argsort(labels, kind="stable")
                sizes = np.bincount(labels, minlength=centroids.shape[0])
                member_lists.append((rows[order], sizes))
                node_vec.append(centroids)
                node_rows.append(np.full(centroids.shape[0], -1, np.int64))
                node_split.append(np.full(centroids.shape[0], code, np.int8))
            else:
                member_lists.append((rows, np.ones(rows.size, np.int64)))
                node_vec.append(X[rows])
                node_rows.append(rows.astype(np.int64))
                node_split.append(np.full(rows.size, code, np.int8))
        vec = np.concatenate(node_vec)
        store_row = np.concatenate(node_rows)
        nsplit = np.concatenate(node_split)
        members = np.concatenate([m for m, _ in member_lists]).astype(np.int64)
        sizes = np.concatenate([s for _, s in member_lists]).astype(np.int64)
        ptr = np.zeros(sizes.size + 1, np.int64)
        np.cumsum(sizes, out=ptr[1:])
        n = vec.shape[0]

        train_nodes = np.flatnonzero(nsplit == TRAIN)
        other = np.flatnonzero(nsplit != TRAIN)
        ids_t, dist_t = exact_neighbours(vec[train_nodes], None, self.k, self.metric)
        ids_o, dist_o = exact_neighbours(vec[train_nodes], vec[other], self.k, self.metric)
        src = np.concatenate([np.repeat(train_nodes, ids_t.shape[1]),
                              np.repeat(other, ids_o.shape[1])])
        dst = np.concatenate([train_nodes[ids_t.ravel()], train_nodes[ids_o.ravel()]])
        dist = np.concatenate([dist_t.ravel(), dist_o.ravel()])
        g = HyperGraph.from_edges(n, src, dst, similarity_weights(dist, self.metric),
                                  split=nsplit, label=self._node_labels(bundle, members, sizes))
        g.store_row = store_row
        g.members = (ptr, members)
        g.store = bundle.store
        g.validate()
        return g

    @staticmethod
    def _node_labels(bundle: DatasetBundle, members: np.ndarray, sizes: np.ndarray,
                     ) -> np.ndarray:
        """Majority class (or mean target) of each node's members, for display."""
        node_of = np.repeat(np.arange(sizes.size), sizes)
        y = bundle.y[members]
        if bundle.task == "classification":
            c = max(int(bundle.num_classes), int(y.max(initial=0)) + 1)
            counts = np.bincount(node_of * c + y.astype(np.int64), minlength=sizes.size * c)
            return counts.reshape(sizes.size, c).argmax(axis=1).astype(bundle.y.dtype)
        sums = np.bincount(node_of, weights=y.astype(np.float64), minlength=sizes.size)
        return (sums / np.maximum(sizes, 1)).astype(bundle.y.dtype)
