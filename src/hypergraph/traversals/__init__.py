"""Traversals: samplers that choose which training nodes the model sees next."""

from hypergraph.traversals._base import Selection, Traversal, TraversalContext
from hypergraph.traversals._baselines import (
    InfoBatchTraversal,
    LossTopKTraversal,
    RhoLossTraversal,
)
from hypergraph.traversals._cluster_hop import ClusterHopTraversal
from hypergraph.traversals._components import ComponentsTraversal
from hypergraph.traversals._random_walk import RandomWalkTraversal, WalkTable
from hypergraph.traversals._simple import ComprehensiveTraversal, UniformTraversal
from hypergraph.traversals.ivalue import IValueTraversal

__all__ = [
    "ClusterHopTraversal",
    "ComponentsTraversal",
    "ComprehensiveTraversal",
    "IValueTraversal",
    "InfoBatchTraversal",
    "LossTopKTraversal",
    "RandomWalkTraversal",
    "RhoLossTraversal",
    "Selection",
    "Traversal",
    "TraversalContext",
    "UniformTraversal",
    "WalkTable",
]
