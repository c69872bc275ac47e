"""Vectorised random walks over the training subgraph."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hypergraph.registry import register
from hypergraph.spaces import Float, Int
from hypergraph.traversals._base import WALKERS, Selection, Traversal

__all__ = ["RandomWalkTraversal", "WalkTable"]


class WalkTable:
    """Cached arrays for drawing weighted neighbours of many walkers at once.

    ``step(pos, u)`` maps walker positions and uniforms in ``[0, 1)`` to a neighbour drawn with
    probability proportional to edge weight, for all walkers in one vectorised call:
    O(walkers x log(degree)) through a per-row binary search on the global cumulative weights.
    Rows with no (or zero-weight) edges return ``-1``.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> None:
        self.indptr = indptr
        self.indices = indices
        self.cum = np.concatenate([[0.0], np.cumsum(weights, dtype=np.float64)])

    def step(self, pos: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One weighted neighbour per walker (``-1`` at dead ends)."""
        start, stop = self.indptr[pos], self.indptr[pos + 1]
        lo, hi = self.cum[start], self.cum[stop]
        target = lo + u * (hi - lo)
        j = np.searchsorted(self.cum, target, side="right") - 1
        j = np.clip(j, start, np.maximum(stop - 1, start))
        dead = (stop <= start) | (hi <= lo)
        out = self.indices[np.minimum(j, self.indices.size - 1)].astype(np.int64) \
            if self.indices.size else np.zeros(pos.size, np.int64)
        out[dead] = -1
        return out


@register("traversal", "random_walk")
class RandomWalkTraversal(Traversal):
    """``walkers`` random walkers moving to weighted random neighbours, all at once.

    Each step every walker moves to a neighbour drawn in proportion to edge weight, or teleports
    to a uniformly random training node (with probability ``teleport``, and always at a dead end).
    A walker avoids the nodes it stopped at in its last ``no_return`` steps (by redrawing up to
    three times). The node a walker stops at joins the batch. Walks run on the subgraph induced
    by the training nodes, so no validation or test node is ever yielded.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:walk"})
    requires: ClassVar[frozenset[str]] = frozenset({"graph:pairwise"})
    space = {
        "walkers": WALKERS,
        "teleport": Float(default=0.05, low=0.0, high=1.0,
                          help="probability of a jump to a random training node per step"),
        "no_return": Int(default=2, low=0, high=64, help="steps a walker avoids revisiting"),
    }

    def __init__(self, walkers: int = 16, teleport: float = 0.05, no_return: int = 2) -> None:
        self.walkers = walkers
        self.teleport = teleport
        self.no_return = no_return

    def _build(self) -> None:
        sub = self.graph_.subgraph(self.train_ids_)
        self.table_ = WalkTable(sub.indptr, sub.indices, sub.weights)
        self.n_sub_ = sub.num_nodes
        pos: np.ndarray | None = getattr(self, "pos_", None)
        if pos is None or pos.max(initial=-1) >= self.n_sub_:
            self.pos_ = self.rng_.integers(0, self.n_sub_, size=self.walkers)
            self.history_ = np.full((self.walkers, self.no_return), -1, np.int64)
        self.pending_ = np.zeros(0, np.int64)

    def walk(self) -> np.ndarray:
        """Advance every walker one step; returns the new positions (subgraph ids)."""
        rng, pos = self.rng_, self.pos_
        nxt = self.table_.step(pos, rng.random(pos.size))
        if self.no_return > 0:
            for _ in range(3):
                clash = (nxt[:, None] == self.history_).any(axis=1) & (nxt >= 0)
                if not clash.any():
                    break
                nxt[clash] = self.table_.step(pos[clash], rng.random(int(clash.sum())))
        jump = (nxt < 0) | (rng.random(pos.size) < self.teleport)
        if jump.any():
            nxt[jump] = rng.integers(0, self.n_sub_, size=int(jump.sum()))
        if self.no_return > 0:
            self.history_ = np.roll(self.history_, 1, axis=1)
            self.history_[:, 0] = nxt
        self.pos_ = nxt
        return nxt

    def next_batch(self) -> Selection:
        need = self.batch_size_
        parts = [self.pending_]
        have = self.pending_.size
        while have < need:
            step = self.walk()
            parts.append(step)
            have += step.size
        ids = np.concatenate(parts)
        self.pending_ = ids[need:]
        return Selection(self.train_ids_[ids[:need]])

    def extra_state(self) -> dict[str, Any]:
        return {"pos": self.pos_.copy(), "history": self.history_.copy(),
                "pending": self.pending_.copy()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pos_ = np.asarray(state["pos"])
        self.history_ = np.asarray(state["history"])
        self.pending_ = np.asarray(state["pending"])
