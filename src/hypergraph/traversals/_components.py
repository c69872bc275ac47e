"""Components any traversal can use: near-duplicate groups (``dedup``) and coverage (epoch order).

IValue's gains on redundant data come largely from two components that are not about value at
all: visiting a group of near-duplicates as one node, and taking part of every batch from a
shuffled pass (epoch order). :class:`ComponentsTraversal` gives both to **any** registered
traversal, so a comparison can give every arm the same components:

* ``dedup``: training nodes joined by edges of weight (similarity) ``>= dedup`` form a group
  (:func:`~hypergraph.traversals.ivalue.near_duplicate_groups`, the rule IValue uses). The
  inner traversal runs on the graph of one representative per group; each node it picks stands
  for its group and is replaced by a random member, and a member's loss is fed back as its
  group's. A group of ``m`` copies is then trained on as often as one unique point.
* ``cover``: that share of every batch comes from a shuffled pass over the groups (every group
  once per pass, one random member each), the rest from the inner traversal.

``components(inner="comprehensive", dedup=0.995)`` is epoch order over near-duplicate groups
(the ``epoch_dedup`` arm of ``hypergraph bench``); with ``dedup=0`` and ``cover=0`` the wrapper
selects what its inner traversal selects with the same generator after one permutation of the
training positions (the coverage pass, drawn at setup in every case).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hypergraph.registry import register
from hypergraph.spaces import Fixed, Float
from hypergraph.traversals._base import Selection, Traversal, TraversalContext
from hypergraph.traversals.ivalue import near_duplicate_groups, shuffled_pass

__all__ = ["ComponentsTraversal", "epoch_dedup_groups"]


def epoch_dedup_groups(traversal: Traversal, threshold: float) -> np.ndarray | None:
    """Near-duplicate group id per training node of ``traversal``'s graph (positions in
    ``train_ids_``), or ``None`` when no two training nodes are near-duplicates."""
    if threshold <= 0:
        return None
    sub = traversal.graph_.subgraph(traversal.train_ids_)
    group, mult = near_duplicate_groups(sub.indptr, sub.indices, sub.weights, threshold)
    return group if int(mult.max(initial=1)) > 1 else None


@register("traversal", "components")
class ComponentsTraversal(Traversal):
    """Any traversal with near-duplicate groups (``dedup``) and coverage (``cover``) added.

    See the module docstring. ``inner`` names a registered traversal and ``inner_params`` its
    parameters. The inner traversal shares this traversal's generator; after a graph change it
    is set up anew on the new groups (its learnt state starts over).
    """

    needs_feedback: ClassVar[bool] = True  # forwarded when the inner traversal wants it
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:selection"})
    space = {
        "inner": Fixed(default="uniform", types=(str,), help="registered traversal wrapped"),
        "inner_params": Fixed(default=None, types=(dict,),
                              help="parameters of the inner traversal"),
        "dedup": Float(low=0.0, high=1.0,
                       help="similarity at or above which training nodes are near-duplicates "
                       "visited as one group (0: off)"),
        "cover": Float(low=0.0, high=1.0,
                       help="share of each batch taken from a shuffled pass over the groups"),
    }

    def __init__(self, inner: str = "uniform", inner_params: dict[str, Any] | None = None,
                 dedup: float = 0.0, cover: float = 0.0) -> None:
        self.inner = inner
        self.inner_params = inner_params
        self.dedup = dedup
        self.cover = cover

    def _make_inner(self) -> Traversal:
        from hypergraph import registry

        cls = registry.resolve("traversal", self.inner)
        inner = cls.from_params(dict(self.inner_params or {}))
        assert isinstance(inner, Traversal)
        return inner

    # ------------------------------------------------------------------ life cycle
    def build(self) -> None:
        self.group_ = epoch_dedup_groups(self, self.dedup)
        n = self.train_ids_.size
        self.k_cover_ = min(self.batch_size_, round(self.cover * self.batch_size_))
        if self.group_ is None:
            self.reps_ = np.arange(n)
            self.members_ptr_ = np.arange(n + 1)
            self.members_ = np.arange(n)
            self.rep_of_ = np.arange(n)  # training position -> position among representatives
            graph = self.graph_
        else:
            order = np.argsort(self.group_, kind="stable")
            sizes = np.bincount(self.group_)
            self.members_ptr_ = np.concatenate([[0], np.cumsum(sizes)])
            self.members_ = order
            self.reps_ = order[self.members_ptr_[:-1]]  # lowest position of each group
            self.rep_of_ = self.group_
            graph = self.graph_.subgraph(self.train_ids_[self.reps_])
        self.inner_graph_ = graph
        self.inner_ = self._make_inner()
        if self.k_cover_ < self.batch_size_:
            ctx = self.context_
            score = None if ctx.score is None else self._inner_score
            self.inner_.setup(graph, self.batch_size_ - self.k_cover_, self.rng_,
                              TraversalContext(score=score, epochs=ctx.epochs,
                                               max_steps=ctx.max_steps))

    def _inner_score(self, ids: np.ndarray) -> np.ndarray:
        assert self.context_.score is not None
        return self.context_.score(self._to_outer(ids, draw=False))

    def _to_outer(self, inner_ids: np.ndarray, draw: bool = True) -> np.ndarray:
        """Node ids of this graph for the inner traversal's picks (a random group member)."""
        inner_ids = np.asarray(inner_ids, np.int64)
        if self.group_ is None:
            return inner_ids
        g = self.inner_.position_[inner_ids]  # the inner graph's training nodes are the groups
        if not draw:
            return self.train_ids_[self.reps_[g]]
        lo, hi = self.members_ptr_[g], self.members_ptr_[g + 1]
        pick = lo + (self.rng_.random(g.size) * (hi - lo)).astype(np.int64)
        return self.train_ids_[self.members_[pick]]

    def init_state(self) -> None:
        self.perm_ = shuffled_pass(self.rng_, self.train_ids_.size, self.group_)
        self.cursor_ = 0

    def fit_state(self, previous: np.ndarray) -> None:
        self.init_state()

    # ------------------------------------------------------------------ per step
    def steps_per_epoch(self) -> int:
        if self.k_cover_ >= self.batch_size_:
            return max(1, -(-self.perm_.size // self.batch_size_))
        return self.inner_.steps_per_epoch()

    def on_epoch_start(self, epoch: int) -> None:
        if self.k_cover_ < self.batch_size_:
            self.inner_.on_epoch_start(epoch)

    def next_batch(self) -> Selection:
        parts: list[np.ndarray] = []
        weights: list[np.ndarray] = []  # of the cover part, then the inner part
        if self.k_cover_ > 0:
            k = min(self.k_cover_, self.perm_.size)
            take = self.perm_[self.cursor_:self.cursor_ + k]
            self.cursor_ += take.size
            if take.size < k:
                self.perm_ = shuffled_pass(self.rng_, self.train_ids_.size, self.group_)
                self.cursor_ = k - take.size
                take = np.concatenate([take, self.perm_[:self.cursor_]])
            ids = self.train_ids_[take]
            if self.group_ is not None:  # a random member of each group swept
                g = self.group_[take]
                lo, hi = self.members_ptr_[g], self.members_ptr_[g + 1]
                ids = self.train_ids_[self.members_[
                    lo + (self.rng_.random(g.size) * (hi - lo)).astype(np.int64)]]
            parts.append(ids)
            weights.append(np.ones(ids.size, np.float32))
        if self.k_cover_ < self.batch_size_:
            sel = self.inner_.next_batch()
            if not parts:
                return Selection(self._to_outer(sel.ids), sel.weights)
            parts.append(self._to_outer(sel.ids))
            if sel.weights is not None:
                weights.append(np.asarray(sel.weights, np.float32))
                return Selection(np.concatenate(parts), np.concatenate(weights))
        return Selection(np.concatenate(parts))

    def feedback(self, ids: np.ndarray, losses: np.ndarray) -> None:
        if self.k_cover_ >= self.batch_size_ or not self.inner_.needs_feedback:
            return
        pos = self.position_[ids]
        inner_ids = self.inner_.train_ids_[self.rep_of_[pos]]
        self.inner_.feedback(inner_ids, losses)

    # ------------------------------------------------------------------ state
    def extra_state(self) -> dict[str, Any]:
        inner = self.inner_.extra_state() if self.k_cover_ < self.batch_size_ else {}
        return {"perm": self.perm_.copy(), "cursor": self.cursor_, "inner": inner}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.perm_ = np.asarray(state["perm"])
        self.cursor_ = int(state["cursor"])
        if self.k_cover_ < self.batch_size_:
            self.inner_.load_extra_state(state["inner"])
