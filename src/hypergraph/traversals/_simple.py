"""Epoch-based and i.i.d. traversals (the references every other traversal is measured against)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hypergraph.registry import register
from hypergraph.spaces import Categorical
from hypergraph.traversals._base import Selection, Traversal

__all__ = ["ComprehensiveTraversal", "UniformTraversal"]


@register("traversal", "comprehensive")
class ComprehensiveTraversal(Traversal):
    """Every training node once per epoch, in a fresh random order: ordinary epoch training.

    The last batch of an epoch holds what is left (fewer than ``batch_size`` nodes when the
    training nodes do not divide evenly), as a PyTorch ``DataLoader`` does by default;
    ``drop_last`` skips it instead (every batch full, a few nodes left out of each epoch).
    """

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:epoch"})
    space = {"drop_last": Categorical(choices=(False, True),
                                      help="skip each epoch's last, partial batch")}

    def __init__(self, drop_last: bool = False) -> None:
        self.drop_last = drop_last

    def reset(self) -> None:
        """A fresh pass (at setup, after a graph change and at each epoch start)."""
        self.order_ = self.rng_.permutation(self.train_ids_)
        self.cursor_ = 0

    def steps_per_epoch(self) -> int:
        if self.drop_last and self.train_ids_.size >= self.batch_size_:
            return self.train_ids_.size // self.batch_size_
        return super().steps_per_epoch()

    def on_epoch_start(self, epoch: int) -> None:
        self.reset()

    def next_batch(self) -> Selection:
        left = self.order_.size - self.cursor_
        if left <= 0 or (self.drop_last and left < min(self.batch_size_, self.order_.size)):
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
