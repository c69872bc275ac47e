"""Multinomial logistic regression (a linear classifier)."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from hypergraph.exceptions import IncompatibleModulesError
from hypergraph.models._base import TorchModel
from hypergraph.models._common import Net, ScheduledTorchModel, flat_size, optim_space
from hypergraph.registry import register

__all__ = ["LogRegModel"]


@register("model", "logreg")
class LogRegModel(ScheduledTorchModel):
    """One linear layer trained with cross-entropy (L2 through ``weight_decay``).

    The embedding is the flattened input itself (the layer before the linear output).
    """

    tags: ClassVar[frozenset[str]] = TorchModel.tags | {"task:classification", "model:torch",
                                                       "model:linear"}
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector", "task:classification"})
    space = optim_space()

    def __init__(self, lr: float = 1e-2, weight_decay: float = 0.0, optimizer: str = "adam",
                 scheduler: str = "none", scheduler_steps: int = 1000) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_steps = scheduler_steps

    def setup(self, input_shape: tuple[int, ...], num_outputs: int, task: str,
              device: str = "cpu", seed: int = 0) -> None:
        if task != "classification":
            raise IncompatibleModulesError(
                f"model 'logreg' is a classifier, but the dataset is a {task} task; use model "
                "mlp for regression.")
        super().setup(input_shape, num_outputs, task, device=device, seed=seed)

    def build_network(self, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        return Net(nn.Flatten(), nn.Linear(flat_size(input_shape), num_outputs))
