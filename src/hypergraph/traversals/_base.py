"""Traversal base class: a sampler that returns training node ids.

Like PyG's ``BaseSampler``, a traversal only decides *which* nodes come next; the trainer's
generic loop gathers their data and batches it. Keep traversal state small: arrays over nodes or
walkers, a NumPy generator, nothing per data point in Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hypergraph.base import Module
from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph
from hypergraph.spaces import Int

__all__ = ["Selection", "Traversal", "TraversalContext"]


@dataclass
class Selection:
    """One batch chosen by a traversal: node ids and optional per-sample loss weights."""

    ids: np.ndarray
    weights: np.ndarray | None = None


@dataclass
class TraversalContext:
    """What the trainer lends a traversal beyond the graph.

    Attributes:
        score: ``score(ids) -> per-sample losses`` with a forward pass of the current model and no
            update (selection methods use it; each call is counted as selection compute).
        epochs: Number of epochs the trainer plans (some methods change behaviour at the end).
    """

    score: Callable[[np.ndarray], np.ndarray] | None = None
    epochs: int = 1


class Traversal(Module):
    """Base of traversals.

    Contract:
        * ``next_batch`` returns only **training** node ids, at most ``batch_size`` of them.
        * The same generator seed gives the same sequence of selections.
        * ``steps_per_epoch`` batches make one epoch (the default: enough batches to see as many
          samples as there are training nodes).
        * ``feedback`` receives the per-sample losses of the last batch when ``needs_feedback``.
        * ``on_graph_change`` is called after a manager changed the graph; rebuild caches there.
        * ``state_dict``/``load_state_dict`` capture everything needed for an exact resume.
    Traversals declaring ``covers_all`` visit every training node eventually.
    """

    needs_feedback: ClassVar[bool] = False
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all"})

    def setup(self, graph: HyperGraph, batch_size: int, rng: np.random.Generator,
              context: TraversalContext | None = None) -> None:
        """Prepare for ``graph``; derived state lives in attributes ending with ``_``."""
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}.")
        self.graph_ = graph
        self.batch_size_ = batch_size
        self.rng_ = rng
        self.context_ = context or TraversalContext()
        self.train_ids_ = graph.train_ids()
        if self.train_ids_.size == 0:
            raise DataError(f"{self.display_name()}: the graph has no training nodes.")
        self._build()

    def _build(self) -> None:
        """Build caches derived from ``self.graph_`` (called by setup and on graph change)."""

    def steps_per_epoch(self) -> int:
        """Batches per epoch."""
        return max(1, math.ceil(self.train_ids_.size / self.batch_size_))

    def on_epoch_start(self, epoch: int) -> None:
        """Called before the first batch of each epoch."""

    def next_batch(self) -> Selection:
        """The next batch of training node ids."""
        raise NotImplementedError

    def feedback(self, ids: np.ndarray, losses: np.ndarray) -> None:
        """Per-sample losses of the last batch (only called when ``needs_feedback``)."""

    def on_graph_change(self, graph: HyperGraph) -> None:
        """The manager replaced or changed the graph."""
        self.graph_ = graph
        self.train_ids_ = graph.train_ids()
        self._build()

    def state_dict(self) -> dict[str, Any]:
        """Resumable state: the generator plus :meth:`extra_state`."""
        return {"rng": self.rng_.bit_generator.state, "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rng_.bit_generator.state = state["rng"]
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict[str, Any]:
        """Subclass state beyond the generator (arrays and numbers)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""


WALKERS = Int(default=16, low=1, high=65536, log=True, help="walkers moving at once")
