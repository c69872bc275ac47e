"""Traversal base class: a sampler that returns training node ids.

Like PyG's ``BaseSampler``, a traversal only decides *which* nodes come next; the trainer's
generic loop gathers their data and batches it. Keep traversal state small: arrays over nodes or
walkers, a NumPy generator, nothing per data point in Python objects.
"""

from __future__ import annotations

import math
import warnings
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
        max_steps: Gradient steps the trainer stops at (0: no step limit; epochs decide).
            Methods that change behaviour at the end of training plan by it when it is set.
    """

    score: Callable[[np.ndarray], np.ndarray] | None = None
    epochs: int = 1
    max_steps: int = 0


class Traversal(Module):
    """Base of traversals.

    Life cycle (the contract). The base keeps these attributes current, so no hook ever has to
    tell setup from a graph change: ``graph_``, ``batch_size_``, ``rng_`` (the only source of
    randomness), ``context_``, ``train_ids_`` (the training node ids, ascending) and
    ``position_`` (node id -> index into ``train_ids_``, ``-1`` for every other node: per-node
    arrays over the training nodes are indexed by it). A subclass overrides only what it needs:

    1. ``__init__(**params)`` stores the hyperparameters under their own names, nothing else.
    2. ``setup(graph, batch_size, rng, context)`` fills the attributes above, then calls
       :meth:`build` (caches derived from the graph), :meth:`init_state` (state made once:
       per-training-node arrays, walkers, counters; may read the caches) and :meth:`reset`
       (what depends on both and starts over with every graph, e.g. the order of the current pass).
    3. Each epoch starts with ``on_epoch_start(epoch)``; each step calls ``next_batch()`` and,
       when ``needs_feedback``, ``feedback(ids, losses)`` with the batch's per-sample losses.
    4. After a manager changed the graph (often in place), ``on_graph_change(graph)`` calls
       :meth:`before_graph_change` while the caches, ``train_ids_`` and ``position_`` still
       describe the graph as last built (undo work done ahead, fold queued feedback), updates
       the attributes, then calls :meth:`build`, :meth:`fit_state` (default: :meth:`init_state`
       again only when the number of training nodes changed) and :meth:`reset`.
    5. ``state_dict`` / ``load_state_dict`` (the generator plus :meth:`extra_state`) capture
       everything needed for an exact resume; loading happens after ``setup`` on the same graph.

    Rules:
        * ``next_batch`` returns only **training** node ids, at most ``batch_size`` of them.
        * The same generator seed gives the same sequence of selections.
        * ``steps_per_epoch`` batches make one epoch (the default: enough batches to see as many
          samples as there are training nodes).
    Traversals declaring ``covers_all`` visit every training node eventually.
    """

    needs_feedback: ClassVar[bool] = False
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_build" in cls.__dict__ and "build" not in cls.__dict__:
            # the single hook of earlier versions ran where build runs now
            warnings.warn(f"{cls.__name__}._build is deprecated: override build (caches), "
                          "init_state (state) and reset; see the Traversal docstring.",
                          DeprecationWarning, stacklevel=2)
            cls.build = cls.__dict__["_build"]  # type: ignore[method-assign]

    def setup(self, graph: HyperGraph, batch_size: int, rng: np.random.Generator,
              context: TraversalContext | None = None) -> None:
        """Prepare for ``graph``; derived state lives in attributes ending with ``_``."""
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}.")
        self.batch_size_ = batch_size
        self.rng_ = rng
        self.context_ = context or TraversalContext()
        self._attach(graph)
        if self.train_ids_.size == 0:
            raise DataError(f"{self.display_name()}: the graph has no training nodes.")
        self.build()
        self.init_state()
        self.reset()

    def on_graph_change(self, graph: HyperGraph) -> None:
        """The manager replaced or changed the graph (see the life cycle)."""
        self.before_graph_change()
        previous = self.train_ids_
        self._attach(graph)
        self.build()
        self.fit_state(previous)
        self.reset()

    def _attach(self, graph: HyperGraph) -> None:
        self.graph_ = graph
        self.train_ids_ = graph.train_ids()
        self.position_ = np.full(graph.num_nodes, -1, np.int64)
        self.position_[self.train_ids_] = np.arange(self.train_ids_.size)

    # ------------------------------------------------------------------ hooks
    def build(self) -> None:
        """Caches derived from the graph (at setup and after every graph change)."""

    def init_state(self) -> None:
        """State made once, after the first :meth:`build` (see :meth:`fit_state`)."""

    def fit_state(self, previous: np.ndarray) -> None:
        """Fit the state to a changed graph; ``previous`` holds the old training node ids.

        The default makes the state anew (:meth:`init_state`) when the number of training
        nodes changed and keeps it otherwise.
        """
        if previous.size != self.train_ids_.size:
            self.init_state()

    def reset(self) -> None:
        """Last at setup and after every graph change: start over what depends on both the caches
        and the state (a pass over the training nodes, an epoch plan, work done ahead)."""

    def before_graph_change(self) -> None:
        """First thing on a graph change, while everything still describes the old graph."""

    # ------------------------------------------------------------------ per step
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

    # ------------------------------------------------------------------ state
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


WALKERS = Int(low=1, high=65536, log=True, help="walkers moving at once")
