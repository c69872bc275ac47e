"""Pieces the built-in PyTorch models share.

The body/head network, the optimiser and learning-rate schedule hyperparameters, and
:class:`ScheduledTorchModel`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hypergraph.models._base import TorchModel
from hypergraph.spaces import Categorical, Float, Int

__all__ = ["OPTIMIZER", "SCHEDULE_SPACE", "Net", "Reshape", "ScheduledTorchModel"]

OPTIMIZER = Categorical(choices=("adam", "adamw", "sgd"), help="optimiser")

#: Learning-rate schedule hyperparameters (applied per optimiser step).
SCHEDULE_SPACE = {
    "scheduler": Categorical(choices=("none", "cosine", "step"),
                             help="learning-rate schedule over optimiser steps"),
    "scheduler_steps": Int(low=1, high=10_000_000, log=True,
                           help="cosine: steps of one half period; step: steps between "
                                "10x decays"),
}


def optim_space() -> dict[str, Any]:
    """``lr``, ``weight_decay``, ``optimizer`` and the schedule parameters (defaults: the
    model's constructor)."""
    return {
        "lr": Float(low=1e-5, high=1.0, log=True, help="learning rate"),
        "weight_decay": Float(low=0.0, high=0.1, help="L2 penalty"),
        "optimizer": OPTIMIZER,
        **SCHEDULE_SPACE,
    }


class Net(nn.Module):
    """``head(body(x))``: ``body`` gives the embedding, ``head`` the outputs."""

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.body(x))
        return out


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (batch size kept, so empty batches work)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class ScheduledTorchModel(TorchModel):
    """A :class:`TorchModel` with an optional learning-rate schedule.

    The schedule is stepped after every optimiser step: ``none``; ``cosine`` annealing to
    ``lr / 1000`` with a warm restart every ``scheduler_steps``; or ``step``: lr x 0.1 every
    ``scheduler_steps``. Its state is part of :meth:`state_dict`, so resumed runs continue it
    exactly.
    """

    scheduler: str
    scheduler_steps: int

    def setup(self, input_shape: tuple[int, ...], num_outputs: int, task: str,
              device: str = "cpu", seed: int = 0) -> None:
        super().setup(input_shape, num_outputs, task, device=device, seed=seed)
        self.sched_: torch.optim.lr_scheduler.LRScheduler | None = None
        if self.scheduler == "cosine":
            self.sched_ = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                self.opt_, T_0=self.scheduler_steps, eta_min=self.lr * 1e-3)
        elif self.scheduler == "step":
            self.sched_ = torch.optim.lr_scheduler.StepLR(
                self.opt_, step_size=self.scheduler_steps, gamma=0.1)

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        losses = super().train_step(x, y, weights)
        if self.sched_ is not None:
            self.sched_.step()
        return losses

    def current_lr(self) -> float:
        """The learning rate of the next step."""
        return float(self.opt_.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.sched_ is not None:
            state["sched"] = self.sched_.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.sched_ is not None and "sched" in state:
            self.sched_.load_state_dict(state["sched"])


def flat_size(input_shape: tuple[int, ...]) -> int:
    """Number of values in one input."""
    return math.prod(input_shape)
