"""The array-backed graph and its light views."""

from hypergraph.graph._hypergraph import ACTIVE_ATTR, SPLIT_NAMES, TEST, TRAIN, VAL, HyperGraph
from hypergraph.graph._views import ClusterNode, Edge, HyperEdge, Node

__all__ = [
    "ACTIVE_ATTR",
    "SPLIT_NAMES",
    "TEST",
    "TRAIN",
    "VAL",
    "ClusterNode",
    "Edge",
    "HyperEdge",
    "HyperGraph",
    "Node",
]
