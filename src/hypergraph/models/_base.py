"""Model base classes.

:class:`Model` is the contract every model kind follows; :class:`TorchModel` implements it for
any PyTorch network built by ``build_network`` (subclasses only describe their network).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hypergraph._io import atomic_path
from hypergraph.base import Module
from hypergraph.exceptions import DataError, HyperGraphError

__all__ = ["Model", "TorchModel", "metrics_for", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; ``"cuda"`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HyperGraphError("--device cuda was asked for, but PyTorch sees no CUDA device on "
                              "this machine. Use --device cpu or --device auto.")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise HyperGraphError(f"Unknown device '{device}'. Valid choices: auto, cpu, cuda, "
                              "cuda:N.")
    return torch.device(device)


def metrics_for(task: str, outputs: torch.Tensor, y: torch.Tensor,
                losses: torch.Tensor) -> dict[str, float]:
    """Task metrics from model outputs: accuracy for classification, MSE/MAE/R2 for regression."""
    if y.numel() == 0:
        return {"loss": float("nan")}
    out = {"loss": float(losses.mean())}
    if task == "classification":
        out["accuracy"] = float((outputs.argmax(1) == y).float().mean())
    else:
        pred = outputs.reshape(-1)
        err = pred - y.reshape(-1).float()
        mse = float((err**2).mean())
        var = float(((y.float() - y.float().mean()) ** 2).mean())
        out |= {"mse": mse, "mae": float(err.abs().mean()),
                "r2": 1.0 - mse / var if var > 0 else 0.0}
    return out


class Model(Module):
    """Base of models.

    Contract:
        * ``setup`` builds the network and optimiser; nothing heavy happens in ``__init__``.
        * ``train_step(x, y, weights)`` takes one optimiser step on the (weighted) mean of the
          per-sample losses and returns those per-sample losses (detached, shape ``[len(x)]``).
        * ``losses(x, y)`` returns per-sample losses without changing anything.
        * ``predict(x)`` returns outputs (logits or values); an empty batch gives an empty result.
        * ``state_dict``/``load_state_dict`` round-trip the network *and* optimiser exactly.
    Models declaring ``per_sample_loss`` promise one loss per sample; ``embedding`` promises
    ``embed(x)``.
    """

    def setup(self, input_shape: tuple[int, ...], num_outputs: int, task: str,
              device: str = "cpu", seed: int = 0) -> None:
        """Build the network for inputs of ``input_shape`` and ``num_outputs`` outputs."""
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        """One optimiser step; returns per-sample losses (detached)."""
        raise NotImplementedError

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample losses without a parameter update."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs for ``x`` (no gradient)."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer embedding of ``x``."""
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
                 ) -> dict[str, float]:
        """Metrics (``loss`` plus task metrics) over ``x``, ``y``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: network and optimiser state."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load a file written by :meth:`save` (the model must be set up)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as err:
            raise DataError(f"Could not read checkpoint '{path}': {err}") from err
        self.load_state_dict(state)


class TorchModel(Model):
    """A :class:`Model` around a PyTorch network; subclasses implement :meth:`build_network`.

    The network returned by ``build_network`` must expose ``body`` (input -> embedding) and
    ``head`` (embedding -> outputs) submodules.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"per_sample_loss", "embedding", "sample_weights"})

    lr: float
    weight_decay: float
    optimizer: str

    def build_network(self, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        """Return a module with ``body`` and ``head`` submodules."""
        raise NotImplementedError

    def setup(self, input_shape: tuple[int, ...], num_outputs: int, task: str,
              device: str = "cpu", seed: int = 0) -> None:
        self.task_ = task
        self.device_ = resolve_device(device)
        self.input_shape_ = tuple(input_shape)
        # Parameter init and dropout draw from the global torch RNG: seed it for this model.
        torch.manual_seed(seed)
        self.net_ = self.build_network(self.input_shape_, num_outputs).to(self.device_)
        params = self.net_.parameters()
        if self.optimizer == "sgd":
            self.opt_: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        elif self.optimizer == "adamw":
            self.opt_ = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            self.opt_ = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    @property
    def device(self) -> torch.device:
        """The device the network lives on."""
        return self.device_

    def _per_sample(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task_ == "classification":
            return nn.functional.cross_entropy(out, y, reduction="none")
        return nn.functional.mse_loss(out.reshape(-1), y.reshape(-1).float(), reduction="none")

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        if not self.net_.training:  # train() walks every submodule: skip it when already set
            self.net_.train()
        losses = self._per_sample(self.net_(x), y)
        # The gradient of mean(losses * weights) with respect to losses is weights / n: handing
        # it to backward directly skips the mean (and its backward node), with gradients
        # bit-identical to ``loss.mean().backward()``.
        grad = self._mean_grad(losses)
        if weights is not None:
            grad = grad * weights
        self.opt_.zero_grad(set_to_none=True)
        losses.backward(grad)
        self.opt_.step()
        return losses.detach()

    def _mean_grad(self, losses: torch.Tensor) -> torch.Tensor:
        """``ones(n) / n`` like ``losses`` (cached: batches mostly share one size)."""
        cached: torch.Tensor | None = getattr(self, "mean_grad_", None)
        if (cached is None or cached.shape != losses.shape or cached.device != losses.device
                or cached.dtype != losses.dtype):
            n = losses.shape[0]
            cached = torch.ones(n, dtype=losses.dtype, device=losses.device) / max(n, 1)
            self.mean_grad_ = cached
        return cached

    @torch.no_grad()
    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.net_.eval()
        return self._per_sample(self.net_(x), y)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.net_.eval()
        out: torch.Tensor = self.net_(x)
        return out

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.net_.eval()
        out: torch.Tensor = self.net_.body(x)  # type: ignore[operator]
        return out

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
                 ) -> dict[str, float]:
        self.net_.eval()
        outs = [self.net_(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        outputs = torch.cat(outs) if outs else torch.zeros((0, 1), device=x.device)
        return metrics_for(self.task_, outputs, y, self._per_sample(outputs, y) if outs
                           else torch.zeros(0))

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net_.state_dict(), "opt": self.opt_.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net_.load_state_dict(state["net"])
        self.opt_.load_state_dict(state["opt"])

    def num_parameters(self) -> int:
        """Trainable parameter count."""
        return int(sum(p.numel() for p in self.net_.parameters() if p.requires_grad))


def to_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A NumPy array as a tensor on ``device`` (no copy on CPU when possible)."""
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)
