"""Traversals: samplers that choose which training nodes the model sees next."""

from hypergraph.traversals._base import Selection, Traversal, TraversalContext
from hypergraph.traversals._random_walk import RandomWalkTraversal, WalkTable
from hypergraph.traversals._simple import ComprehensiveTraversal, UniformTraversal

__all__ = [
    "ComprehensiveTraversal",
    "RandomWalkTraversal",
    "Selection",
    "Traversal",
    "TraversalContext",
    "UniformTraversal",
    "WalkTable",
]
