"""Models: per-sample losses, predictions and embeddings."""

from hypergraph.models._base import Model, TorchModel, metrics_for, resolve_device, to_tensor
from hypergraph.models._mlp import MLPModel

__all__ = ["MLPModel", "Model", "TorchModel", "metrics_for", "resolve_device", "to_tensor"]
