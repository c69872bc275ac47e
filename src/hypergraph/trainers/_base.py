"""Trainer base class, the context it runs in, and the batch gatherer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypergraph.base import Module
from hypergraph.data import Prefetcher
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import HyperGraph
from hypergraph.managers import GraphManager
from hypergraph.models import Model
from hypergraph.rng import RngStreams
from hypergraph.trainers._callbacks import Callback, TrainState
from hypergraph.traversals import Traversal

__all__ = ["BatchGatherer", "TrainContext", "Trainer"]


@dataclass
class TrainContext:
    """Everything one training run works with (built by :func:`hypergraph.run.prepare`).

    ``resume_state`` is a checkpoint payload (``last.pt``) to continue from; ``trainer`` is set
    by the trainer while it fits, so that callbacks can ask it for a checkpoint; ``run_id`` is
    the run folder's identity (``run.json``), written into every ``last.pt`` so that resume can
    refuse a checkpoint of another run. ``timings`` accumulates the seconds of each phase, so
    compute comparisons can count graph building and traversal setup.
    """

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
    trainer: Trainer | None = None
    run_id: str | None = None
    #: Seconds spent per phase (``data_s``, ``graph_s``, ``model_s`` from :func:`prepare`; the
    #: trainer adds ``setup_s``, ``selection_s``, ``step_s`` and ``eval_s``).
    timings: dict[str, float] = field(default_factory=dict)


class BatchGatherer:
    """Turns node ids into ``(x, y)`` tensors on the model's device.

    In-memory stores are copied to the device once and indexed there; other stores are read row
    by row through ``store.get``, on a background thread when the trainer announces the next
    batch early with :meth:`prefetch` (see :class:`~hypergraph.data.Prefetcher`).
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
        self.prefetcher: Prefetcher | None = None if self.X is not None else Prefetcher(
            bundle.store)
        self.ahead: tuple[np.ndarray, np.ndarray] | None = None  # (ids, rows) being read

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Store rows of ``ids`` (cluster nodes draw a member)."""
        return self.graph.node_rows(ids, self.rng)

    def gather_rows(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` for store rows."""
        idx = torch.from_numpy(rows)
        if self.device.type != "cpu":  # pageable -> device without waiting for the device
            idx = idx.to(self.device, non_blocking=True)
        if self.X is not None:
            x = self.X.index_select(0, idx)
        else:
            data = self.store.get(rows) if self.prefetcher is None else self.prefetcher.get(rows)
            x = torch.from_numpy(data).to(self.device)
        return x, self.y.index_select(0, idx)

    def prefetch(self, ids: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Start reading the rows of ``ids`` (the next batch) in the background.

        A no-op for in-memory stores. ``rows`` (the store rows of ``ids``) skips drawing them
        again, for a resumed run. The next call with the same ``ids`` collects the result.
        """
        if self.prefetcher is None:
            return
        rows = self.rows(ids) if rows is None else rows
        self.ahead = (ids, rows)
        self.prefetcher.submit(rows)

    def close(self) -> None:
        """Stop the background reader (if any)."""
        if self.prefetcher is not None:
            self.prefetcher.close()

    def __call__(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        ahead = self.ahead
        if ahead is not None and (ahead[0] is ids or np.array_equal(ahead[0], ids)):
            self.ahead = None
            return self.gather_rows(ahead[1])
        return self.gather_rows(self.rows(ids))


class Trainer(Module):
    """Base of trainers: ``fit(ctx)`` trains and returns the run's metrics.

    The returned mapping holds ``val`` (best validation metrics), ``test`` (test metrics of the
    best-on-validation model), ``samples_seen``, ``steps``, ``epochs`` and ``wall_s``.
    """

    def fit(self, ctx: TrainContext) -> dict[str, Any]:
        """Train ``ctx.model`` with ``ctx.traversal`` over ``ctx.graph``.

        When ``ctx.resume_state`` holds a payload of :meth:`checkpoint_state`, training continues
        from it and ends exactly as the uninterrupted run would have.
        """
        raise NotImplementedError

    def checkpoint_state(self, ctx: TrainContext, state: TrainState) -> dict[str, Any]:
        """Everything an exact resume needs, as plain data for ``torch.save``.

        Only valid while :meth:`fit` runs (callbacks call it). The payload holds at least
        ``"state"`` (:meth:`TrainState.to_dict`) and ``"model"`` (the model's state dict).
        """
        raise NotImplementedError
