"""The array-backed graph and its light views."""

from hypergraph.graph._hypergraph import SPLIT_NAMES, TEST, TRAIN, VAL, HyperGraph
from hypergraph.graph._views import Edge, HyperEdge, Node

__all__ = ["SPLIT_NAMES", "TEST", "TRAIN", "VAL", "Edge", "HyperEdge", "HyperGraph", "Node"]
