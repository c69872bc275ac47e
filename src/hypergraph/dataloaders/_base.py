"""Dataloader base class: builds a :class:`~hypergraph.graph.HyperGraph` from a dataset."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hypergraph.base import Module
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import HyperGraph

__all__ = ["Dataloader", "graph_from_pairs"]


class Dataloader(Module):
    """Base of graph builders.

    Contract: the graph has one node per data row unless the builder declares ``node:cluster``;
    node arrays carry the bundle's splits and labels unchanged; edges are built from features
    (or training labels) only: validation and test labels must never shape the graph. Graphs
    declared ``graph:symmetric`` hold every edge in both directions with equal weight.
    """

    tags: ClassVar[frozenset[str]] = frozenset()

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        """Build the graph of ``bundle``."""
        raise NotImplementedError


def graph_from_pairs(bundle: DatasetBundle, src: np.ndarray, dst: np.ndarray,
                     weights: np.ndarray, symmetric: bool = True) -> HyperGraph:
    """A point-node graph over every row of ``bundle`` with the given edges."""
    g = HyperGraph.from_edges(len(bundle), src, dst, weights, symmetric=symmetric,
                              split=bundle.split, label=bundle.y, attrs=dict(bundle.attrs) or None)
    g.store = bundle.store
    return g
