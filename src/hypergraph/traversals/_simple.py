"""Epoch-based and i.i.d. traversals (the references every other traversal is measured against)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hypergraph.registry import register
from hypergraph.traversals._base import Selection, Traversal

__all__ = ["ComprehensiveTraversal", "UniformTraversal"]


@register("traversal", "comprehensive")
class ComprehensiveTraversal(Traversal):
    """Every training node once per epoch, in a fresh random order: ordinary epoch training."""

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:epoch"})

    def __init__(self) -> None:
        pass

    def reset(self) -> None:
        """A fresh pass (at setup, after a graph change and at each epoch start)."""
        self.order_ = self.rng_.permutation(self.train_ids_)
        self.cursor_ = 0

    def on_epoch_start(self, epoch: int) -> None:
        self.reset()

    def next_batch(self) -> Selection:
        if self.cursor_ >= self.order_.size:
            self.reset()
        ids = self.order_[self.cursor_:self.cursor_ + self.batch_size_]
        self.cursor_ += ids.size
        return Selection(ids)

    def extra_state(self) -> dict[str, Any]:
        return {"order": self.order_.copy(), "cursor": self.cursor_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.order_ = np.asarray(state["order"])
        self.cursor_ = int(state["cursor"])


@register("traversal", "uniform")
class UniformTraversal(Traversal):
    """Training nodes drawn i.i.d. uniformly with replacement: the plain-SGD baseline."""

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:iid"})

    def __init__(self) -> None:
        pass

    def next_batch(self) -> Selection:
        pick = self.rng_.integers(0, self.train_ids_.size, size=self.batch_size_)
        return Selection(self.train_ids_[pick])
