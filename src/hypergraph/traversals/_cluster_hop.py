"""Walks between cluster nodes (hypernodes) that sample points where the walkers stop."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from hypergraph.graph import HyperGraph
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int
from hypergraph.traversals._base import WALKERS
from hypergraph.traversals._random_walk import RandomWalkTraversal

__all__ = ["ClusterHopTraversal"]


@register("traversal", "cluster_hop")
class ClusterHopTraversal(RandomWalkTraversal):
    """Walkers hop between training cluster nodes; each stop samples points of that cluster.

    Walkers move as in ``random_walk`` (weighted neighbours, ``teleport``, ``restart``,
    ``no_return``) over the training cluster nodes. The cluster a walker stops at enters the
    batch ``samples_per_stop`` times; gathering draws one random member per entry
    (:meth:`HyperGraph.node_rows`), so a batch holds cluster ids, possibly repeated, and the
    model sees points sampled from the clusters visited. Teleport targets may also be drawn in
    proportion to cluster size (``teleport_to="size"``). One epoch is as many samples as the
    training clusters hold points.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:walk",
                                                "traversal:cluster"})
    requires: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "node:cluster"})
    space = {
        "walkers": WALKERS,
        "teleport": Float(low=0.0, high=1.0,
                          help="probability of a jump to a random training cluster per step"),
        "no_return": Int(low=0, high=64, help="steps a walker avoids revisiting"),
        "teleport_to": Categorical(choices=("uniform", "degree", "size"),
                                   help="teleport targets: uniform, by degree or by cluster size"),
        "restart": Float(low=0.0, high=1.0,
                         help="probability per step of returning to the walker's start node"),
        "samples_per_stop": Int(low=1, high=4096, log=True,
                                help="points sampled from the cluster at each stop"),
    }

    def __init__(self, walkers: int = 16, teleport: float = 0.05, no_return: int = 1,
                 teleport_to: str = "size", restart: float = 0.0,
                 samples_per_stop: int = 4) -> None:
        self.walkers = walkers
        self.teleport = teleport
        self.no_return = no_return
        self.teleport_to = teleport_to
        self.restart = restart
        self.samples_per_stop = samples_per_stop

    def _sizes(self) -> np.ndarray:
        """Points held by each training node (members for clusters, 1 for points)."""
        ids = self.train_ids_
        if self.graph_.members is None:
            return np.ones(ids.size, np.int64)
        ptr = self.graph_.members[0]
        sizes = ptr[ids + 1] - ptr[ids]
        return np.where(self.graph_.store_row[ids] < 0, sizes, 1).astype(np.int64)

    def build(self) -> None:
        self.sizes_ = self._sizes()
        super().build()

    def _teleport_weights(self, sub: HyperGraph) -> np.ndarray | None:
        if self.teleport_to == "size":
            return self.sizes_.astype(np.float64)
        return super()._teleport_weights(sub)

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(int(self.sizes_.sum()) / self.batch_size_))

    def _stops(self, positions: np.ndarray) -> np.ndarray:
        return np.repeat(positions, self.samples_per_stop)
