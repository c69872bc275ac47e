"""Any user PyTorch ``nn.Module``, trained with HyperGraph's optimiser, loss and schedule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from hypergraph.exceptions import ConfigError, IncompatibleModulesError, InvalidParameterError
from hypergraph.models._base import TorchModel
from hypergraph.models._common import ScheduledTorchModel, optim_space
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Fixed

__all__ = ["TorchWrapperModel", "example_network"]

ModuleFactory = Callable[[tuple[int, ...], int], nn.Module]

_LOSSES = {"cross_entropy": "classification", "mse": "regression", "l1": "regression",
           "huber": "regression"}


def example_network(input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """A small MLP factory: the shape of what ``module_factory`` returns (used in tests)."""
    size = 1
    for dim in input_shape:
        size *= int(dim)
    return nn.Sequential(nn.Flatten(), nn.Linear(size, 32), nn.ReLU(),
                         nn.Linear(32, num_outputs))


@register("model", "torch")
class TorchWrapperModel(ScheduledTorchModel):
    """Your own PyTorch ``nn.Module`` (from Python), with optimiser, loss and lr schedule.

    HyperGraph adds the optimiser, per-sample loss, schedule, checkpoints and embeddings.

    Built from Python only (a network is not a hyperparameter)::

        def make(input_shape, num_outputs):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
                                 nn.Linear(32, num_outputs))

        model = TorchWrapperModel(make, lr=1e-3)
        hypergraph.train(config, model=model)

    Args:
        module_factory: ``factory(input_shape, num_outputs) -> nn.Module`` called at ``setup``
            (after the model seed is set, so initial weights follow the run seed), or a module
            instance, deep-copied at each ``setup``. The module maps a batch ``[n, *input_shape]``
            to outputs ``[n, num_outputs]`` (regression: ``[n, 1]`` or ``[n]``).
        loss: ``auto`` (cross-entropy for classification, MSE for regression),
            ``cross_entropy``, ``mse``, ``l1`` or ``huber``; always per sample.
        head: Name of the output layer (as in ``named_modules()``); its *input* is the
            embedding. Default: a ``head`` attribute when the module has ``body`` and ``head``,
            else the last submodule that holds parameters.
        lr: Learning rate (as for ``mlp``).
        weight_decay: L2 penalty.
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        scheduler: Learning-rate schedule over optimiser steps: ``none``, ``cosine`` or ``step``.
        scheduler_steps: ``cosine``: steps of one half period; ``step``: steps between 10x decays.
    """

    tags: ClassVar[frozenset[str]] = TorchModel.tags | {"task:classification",
                                                       "task:regression", "model:torch",
                                                       "python_only"}
    space = {
        "loss": Categorical(choices=("auto", *_LOSSES),
                            help="per-sample loss (auto: by task)"),
        "head": Fixed(types=(str,), help="output layer whose input is the "
                                                       "embedding"),
        **optim_space(),
    }

    def __init__(self, module_factory: ModuleFactory | nn.Module, loss: str = "auto",
                 head: str | None = None, lr: float = 1e-3, weight_decay: float = 0.0,
                 optimizer: str = "adam", scheduler: str = "none",
                 scheduler_steps: int = 1000) -> None:
        self.module_factory = module_factory
        self.loss = loss
        self.head = head
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_steps = scheduler_steps

    @classmethod
    def _contract_params(cls, tmp_dir: Path) -> dict[str, Any]:
        """The contract kit wraps :func:`example_network`."""
        return {"module_factory": example_network}

    @classmethod
    def from_params(cls, params: dict[str, Any] | None = None) -> TorchWrapperModel:
        """Refused: the wrapped network can only be given from Python."""
        raise ConfigError(
            "model 'torch' wraps a PyTorch module given from Python and cannot be built from a "
            "config: create TorchWrapperModel(module_factory, ...) and call "
            "hypergraph.train(config, model=that_model).")

    def clone(self) -> TorchWrapperModel:
        """A fresh, un-set-up wrapper around the same factory and hyperparameters."""
        return TorchWrapperModel(self.module_factory, **self.get_params())

    def build_network(self, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        factory = self.module_factory
        if isinstance(factory, nn.Module):
            net = copy.deepcopy(factory)
        elif callable(factory):
            net = factory(tuple(input_shape), num_outputs)
        else:
            raise InvalidParameterError(
                "The 'module_factory' parameter of TorchWrapperModel (model 'torch') must be an "
                f"nn.Module or a callable (input_shape, num_outputs) -> nn.Module. Got "
                f"{factory!r} instead.")
        if not isinstance(net, nn.Module):
            raise InvalidParameterError(
                "The 'module_factory' of TorchWrapperModel (model 'torch') must return an "
                f"nn.Module. Got {type(net).__name__} instead.")
        return net

    def setup(self, input_shape: tuple[int, ...], num_outputs: int, task: str,
              device: str = "cpu", seed: int = 0) -> None:
        loss = self.loss if self.loss != "auto" else (
            "cross_entropy" if task == "classification" else "mse")
        if _LOSSES[loss] != task:
            raise IncompatibleModulesError(
                f"model 'torch': loss '{loss}' is for {_LOSSES[loss]}, but the dataset is a "
                f"{task} task; use loss auto.")
        self.loss_ = loss
        super().setup(input_shape, num_outputs, task, device=device, seed=seed)
        self.head_ = self._find_head()

    def _find_head(self) -> nn.Module:
        modules = dict(self.net_.named_modules())
        if self.head is not None:
            if self.head not in modules:
                names = ", ".join(n for n in modules if n) or "(none)"
                raise InvalidParameterError(
                    f"The 'head' parameter of TorchWrapperModel (model 'torch') must name a "
                    f"submodule of the network ({names}). Got {self.head!r} instead.")
            return modules[self.head]
        if isinstance(getattr(self.net_, "head", None), nn.Module) and \
                isinstance(getattr(self.net_, "body", None), nn.Module):
            head: nn.Module = self.net_.head  # type: ignore[assignment]
            return head
        with_params = [m for n, m in modules.items()
                       if n and any(True for _ in m.parameters(recurse=False))]
        return with_params[-1] if with_params else self.net_

    def _per_sample(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_ == "cross_entropy":
            return nn.functional.cross_entropy(out, y, reduction="none")
        pred, target = out.reshape(-1), y.reshape(-1).float()
        if self.loss_ == "l1":
            return nn.functional.l1_loss(pred, target, reduction="none")
        if self.loss_ == "huber":
            return nn.functional.huber_loss(pred, target, reduction="none")
        return nn.functional.mse_loss(pred, target, reduction="none")

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the output layer (see ``head``), flattened per sample."""
        self.net_.eval()
        seen: list[torch.Tensor] = []

        def grab(_module: nn.Module, args: tuple[Any, ...]) -> None:
            seen.append(args[0])

        handle = self.head_.register_forward_pre_hook(grab)
        try:
            self.net_(x)
        finally:
            handle.remove()
        if not seen:
            raise InvalidParameterError(
                "model 'torch': the output layer chosen for embeddings was not called in "
                "forward; set the 'head' parameter to the network's output layer.")
        return seen[-1].reshape(x.shape[0], -1)
