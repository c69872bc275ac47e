"""Temporarily withdraw well-learned training nodes from traversal, then restore them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hypergraph.graph import TRAIN, HyperGraph
from hypergraph.logging import get_logger
from hypergraph.managers._base import GraphManager
from hypergraph.registry import register
from hypergraph.spaces import Float, Int

if TYPE_CHECKING:
    from hypergraph.models import Model

__all__ = ["ReductionManager"]

logger = get_logger(__name__)


@register("manager", "reduction")
class ReductionManager(GraphManager):
    """Withdraw the best-learned training nodes for a few epochs, then restore them.

    The manager records each node's most recent training loss. At the end of every ``every``-th
    epoch it withdraws the ``fraction`` of active training nodes with the lowest recorded loss
    (nodes not trained since their last restore are not eligible), keeping at least
    ``min_active`` of all training nodes active. A withdrawn node returns after ``rest_epochs``
    epochs with its loss record cleared. Withdrawal is an activity mask on the graph
    (:meth:`HyperGraph.set_active`): :meth:`HyperGraph.train_ids` leaves those nodes out, so
    every traversal stops yielding them; splits, edges and evaluation sets are unchanged.
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"manager:dynamic", "manager:reduction"})
    requires: ClassVar[frozenset[str]] = frozenset({"per_sample_loss"})
    space = {
        "fraction": Float(low=0.0, high=0.9,
                          help="share of active training nodes withdrawn per round"),
        "rest_epochs": Int(low=1, high=10_000, help="epochs a node stays withdrawn"),
        "every": Int(low=1, high=10_000, help="epochs between withdrawal rounds"),
        "min_active": Float(low=0.01, high=1.0,
                            help="share of training nodes that always stays active"),
    }

    def __init__(self, fraction: float = 0.2, rest_epochs: int = 2, every: int = 1,
                 min_active: float = 0.3) -> None:
        self.fraction = fraction
        self.rest_epochs = rest_epochs
        self.every = every
        self.min_active = min_active

    def setup(self, graph: HyperGraph, rng: np.random.Generator) -> None:
        super().setup(graph, rng)
        self.graph_ = graph
        self.train_mask_ = graph.split == TRAIN
        self.until_ = np.full(graph.num_nodes, -1, np.int64)  # -1: active
        self.last_loss_ = np.full(graph.num_nodes, np.nan, np.float64)

    def on_step(self, graph: HyperGraph, model: Model, ids: np.ndarray,
                losses: np.ndarray | None) -> bool:
        if losses is not None:
            self.last_loss_[np.asarray(ids, np.int64)] = np.asarray(losses, np.float64)
        return False

    def withdrawn(self) -> np.ndarray:
        """Ids of the nodes withdrawn now."""
        return np.flatnonzero(self.until_ >= 0)

    def _mask(self) -> np.ndarray:
        return self.until_ < 0

    def on_epoch_end(self, graph: HyperGraph, model: Model, epoch: int) -> bool:
        done = epoch + 1
        back = (self.until_ >= 0) & (self.until_ <= done)
        self.until_[back] = -1
        self.last_loss_[back] = np.nan
        withdrawn = 0
        if done % self.every == 0 and self.fraction > 0:
            active = np.flatnonzero(self.train_mask_ & (self.until_ < 0))
            keep_min = math.ceil(self.min_active * int(self.train_mask_.sum()))
            budget = min(int(self.fraction * active.size), active.size - keep_min)
            loss = self.last_loss_[active]
            eligible = active[np.isfinite(loss)]
            if budget > 0 and eligible.size:
                order = np.argsort(self.last_loss_[eligible], kind="stable")
                out = eligible[order[:budget]]
                self.until_[out] = done + self.rest_epochs
                withdrawn = out.size
        changed = bool(back.any()) or withdrawn > 0
        if changed:
            graph.set_active(self._mask())
            logger.info("reduction: epoch %d restored %d, withdrew %d; %d withdrawn", done,
                        int(back.sum()), withdrawn, self.withdrawn().size)
        return changed

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "until": self.until_.copy(),
                "last_loss": self.last_loss_.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.until_ = np.asarray(state["until"], np.int64)
        self.last_loss_ = np.asarray(state["last_loss"], np.float64)
        current = self.graph_.active_mask()
        mask = self._mask()
        if (current is None and not mask.all()) or (
                current is not None and not np.array_equal(current, mask)):
            self.graph_.set_active(mask)
