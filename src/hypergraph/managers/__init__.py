"""Graph managers: update the graph during training."""

from hypergraph.managers._base import GraphManager
from hypergraph.managers._reduction import ReductionManager
from hypergraph.managers._reembed import ReembedManager
from hypergraph.managers._reweight import ReweightManager, reverse_positions
from hypergraph.managers._static import StaticManager

__all__ = [
    "GraphManager",
    "ReductionManager",
    "ReembedManager",
    "ReweightManager",
    "StaticManager",
    "reverse_positions",
]
