"""Dataloaders: graph builders."""

from hypergraph.dataloaders._base import Dataloader, graph_from_pairs
from hypergraph.dataloaders._knn import KNNDataloader, similarity_weights

__all__ = ["Dataloader", "KNNDataloader", "graph_from_pairs", "similarity_weights"]
