"""Models: per-sample losses, predictions and embeddings."""

from hypergraph.models._base import Model, TorchModel, metrics_for, resolve_device, to_tensor
from hypergraph.models._cnn import CNNModel, image_shape
from hypergraph.models._common import Net, Reshape, ScheduledTorchModel
from hypergraph.models._logreg import LogRegModel
from hypergraph.models._mlp import MLPModel
from hypergraph.models._torch import TorchWrapperModel

__all__ = [
    "CNNModel",
    "LogRegModel",
    "MLPModel",
    "Model",
    "Net",
    "Reshape",
    "ScheduledTorchModel",
    "TorchModel",
    "TorchWrapperModel",
    "image_shape",
    "metrics_for",
    "resolve_device",
    "to_tensor",
]
