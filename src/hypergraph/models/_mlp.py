"""Multi-layer perceptron."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from hypergraph.models._base import TorchModel
from hypergraph.models._common import Net, ScheduledTorchModel, flat_size, optim_space
from hypergraph.registry import register
from hypergraph.spaces import Float, Int

__all__ = ["MLPModel"]


@register("model", "mlp")
class MLPModel(ScheduledTorchModel):
    """PyTorch MLP (``depth`` hidden layers of ``width`` units) for classification or regression."""

    tags: ClassVar[frozenset[str]] = TorchModel.tags | {"task:classification",
                                                       "task:regression", "model:torch"}
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector"})
    space = {
        "width": Int(low=8, high=2048, log=True, help="units per hidden layer"),
        "depth": Int(low=1, high=6, help="hidden layers"),
        "dropout": Float(low=0.0, high=0.8, help="dropout after each hidden layer"),
        **optim_space(),
    }

    def __init__(self, width: int = 256, depth: int = 2, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 scheduler: str = "none", scheduler_steps: int = 1000) -> None:
        self.width = width
        self.depth = depth
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_steps = scheduler_steps

    def build_network(self, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        size = flat_size(input_shape)
        for _ in range(self.depth):
            layers += [nn.Linear(size, self.width), nn.ReLU()]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            size = self.width
        return Net(nn.Sequential(*layers), nn.Linear(size, num_outputs))
