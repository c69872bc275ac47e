"""Graph managers: update the graph during training."""

from hypergraph.managers._base import GraphManager
from hypergraph.managers._static import StaticManager

__all__ = ["GraphManager", "StaticManager"]
