"""Trainer base class, the context it runs in, and the batch gatherer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypergraph.base import Module
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import HyperGraph
from hypergraph.managers import GraphManager
from hypergraph.models import Model
from hypergraph.rng import RngStreams
from hypergraph.trainers._callbacks import Callback
from hypergraph.traversals import Traversal

__all__ = ["BatchGatherer", "TrainContext", "Trainer"]


@dataclass
class TrainContext:
    """Everything one training run works with (built by :func:`hypergraph.run.build`)."""

    bundle: DatasetBundle
    graph: HyperGraph
    model: Model
    traversal: Traversal
    manager: GraphManager
    streams: RngStreams
    device: torch.device
    out_dir: Path | None = None
    callbacks: list[Callback] = field(default_factory=list)
    resume_state: dict[str, Any] | None = None


class BatchGatherer:
    """Turns node ids into ``(x, y)`` tensors on the model's device.

    In-memory stores are copied to the device once and indexed there; other stores are read row
    by row through ``store.get``.
    """

    def __init__(self, graph: HyperGraph, bundle: DatasetBundle, device: torch.device,
                 rng: np.random.Generator) -> None:
        self.graph = graph
        self.store = bundle.store
        self.device = device
        self.rng = rng
        arr = bundle.store.as_array()
        self.X = None if arr is None else torch.from_numpy(np.ascontiguousarray(arr)).to(device)
        y = bundle.y.astype(np.int64 if bundle.task == "classification" else np.float32)
        self.y = torch.from_numpy(y).to(device)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Store rows of ``ids`` (cluster nodes draw a member)."""
        return self.graph.node_rows(ids, self.rng)

    def gather_rows(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` for store rows."""
        idx = torch.from_numpy(rows).to(self.device)
        if self.X is not None:
            x = self.X.index_select(0, idx)
        else:
            x = torch.from_numpy(self.store.get(rows)).to(self.device)
        return x, self.y.index_select(0, idx)

    def __call__(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gather_rows(self.rows(ids))


class Trainer(Module):
    """Base of trainers: ``fit(ctx)`` trains and returns the run's metrics.

    The returned mapping holds ``val`` (best validation metrics), ``test`` (test metrics of the
    best-on-validation model), ``samples_seen``, ``steps``, ``epochs`` and ``wall_s``.
    """

    def fit(self, ctx: TrainContext) -> dict[str, Any]:
        """Train ``ctx.model`` with ``ctx.traversal`` over ``ctx.graph``."""
        raise NotImplementedError
