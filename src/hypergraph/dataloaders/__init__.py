"""Dataloaders: graph builders."""

from hypergraph.dataloaders._attribute import AttributeDataloader, attribute_incidence
from hypergraph.dataloaders._base import Dataloader, graph_from_pairs
from hypergraph.dataloaders._cluster import ClusterDataloader, kmeans_groups
from hypergraph.dataloaders._embedding import builder_vectors, model_embedding, random_projection
from hypergraph.dataloaders._knn import KNNDataloader, knn_recall, similarity_weights
from hypergraph.dataloaders._threshold import (
    ThresholdDataloader,
    threshold_edges,
    threshold_edges_knn,
)

__all__ = [
    "AttributeDataloader",
    "ClusterDataloader",
    "Dataloader",
    "KNNDataloader",
    "ThresholdDataloader",
    "attribute_incidence",
    "builder_vectors",
    "graph_from_pairs",
    "kmeans_groups",
    "knn_recall",
    "model_embedding",
    "random_projection",
    "similarity_weights",
    "threshold_edges",
    "threshold_edges_knn",
]
