"""Vectorised random walks over the training subgraph."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from hypergraph.graph import HyperGraph
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int
from hypergraph.traversals._base import WALKERS, Selection, Traversal

__all__ = ["RandomWalkTraversal", "WalkTable"]

#: Most batches of walker stops computed per burst of walk steps (see ``_walk_ahead``).
WALK_AHEAD = 32


class WalkTable:
    """Cached arrays for drawing weighted neighbours of many walkers at once.

    ``step(pos, u)`` maps walker positions and uniforms in ``[0, 1)`` to a neighbour drawn with
    probability proportional to edge weight, for all walkers in one vectorised call, through a
    binary search on the global cumulative weights (O(log edges) per walker: its cost grows with
    the graph, through cache misses). ``draw`` is the hot path: O(1) per walker whatever the graph
    size, by rejection sampling (a uniform neighbour, accepted with probability
    ``weight / row max weight``, kept per edge) over a few candidates per walker at once; it falls
    back on ``step`` for the rare walker none of whose candidates is accepted. Rows with no (or
    zero-weight) edges return ``-1``. A draw reads three arrays per walker (``indptr`` at the
    start and end of its row, mostly one cache line; ``indices`` and ``accept`` at its
    candidates): on a large graph every array read at a random node is a cache miss.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> None:
        self.indptr = indptr
        self.indices = indices
        self._cols = np.arange(0)
        self.cum = np.concatenate([[0.0], np.cumsum(weights, dtype=np.float64)])
        n = indptr.shape[0] - 1
        deg = np.diff(indptr)
        self.deg = deg
        self.weights = np.asarray(weights, np.float32)
        wmax = np.full(n, np.inf, np.float32)  # empty rows: nothing is ever accepted
        rows = np.flatnonzero(deg > 0)
        if rows.size:
            wmax[rows] = np.maximum.reduceat(self.weights, indptr[rows])
        self.wmax = wmax
        self.dead_ends = bool(rows.size < n)  # rows whose candidates must all be refused
        # acceptance probability of each edge as a candidate of its row (0 in zero-weight rows)
        per_edge = np.repeat(wmax, deg)
        self.accept = np.divide(self.weights, per_edge, out=np.zeros_like(self.weights),
                                where=per_edge > 0)
        # Candidates per walker: enough that all are rejected for about 1 walker in 1000 (the
        # exact fallback costs more than a few extra candidates for everyone).
        accept = float(self.accept.mean()) if rows.size else 1.0
        accept = 0.9 * min(max(accept, 0.05), 1.0)  # 0.9: room for no-return clashes
        self.tries = int(np.clip(math.ceil(math.log(1e-3) / math.log1p(-accept))
                                 if accept < 1.0 else 1, 2, 12))

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

    def draw(self, pos: np.ndarray, rng: np.random.Generator,
             avoid: np.ndarray | None = None) -> np.ndarray:
        """One weighted neighbour per walker, avoiding ``avoid[w]`` where possible.

        Args:
            pos: Walker positions (row ids).
            rng: Source of the uniforms.
            avoid: Optional ``[walkers, h]`` ids each walker should not move to (its recent
                stops); a walker whose candidates all clash or are rejected takes an exact
                weighted draw that ignores ``avoid``.

        Returns:
            ``int64[walkers]`` neighbour ids (``-1`` at dead ends).
        """
        w = pos.size
        if self.indices.size == 0:
            return np.full(w, -1, np.int64)
        start = self.indptr[pos]
        stop = self.indptr[pos + 1]  # mostly in start's cache line: cheaper than a degree array
        u = rng.random((2, self.tries, w), dtype=np.float32)
        j = start + (u[0] * (stop - start)).astype(np.int64)
        np.minimum(j, self.indices.size - 1, out=j)
        cand = self.indices[j]
        ok = u[1] < self.accept[j]
        if self.dead_ends:  # an empty row's "candidate" is another row's edge
            ok &= stop > start
        if avoid is not None:
            for h in range(avoid.shape[1]):
                ok &= cand != avoid[:, h]
        first = ok.argmax(axis=0)
        cols = self._columns(w)
        out = cand[first, cols].astype(np.int64)
        hit = ok[first, cols]
        if not hit.all():
            idx = np.flatnonzero(~hit)
            out[idx] = self.step(pos[idx], rng.random(idx.size))
        return out

    def _columns(self, w: int) -> np.ndarray:
        """``arange(w)``, kept between calls (the walker count rarely changes)."""
        cols = self._cols
        if cols.size != w:
            cols = self._cols = np.arange(w)
        return cols


@register("traversal", "random_walk")
class RandomWalkTraversal(Traversal):
    """``walkers`` random walkers moving to weighted random neighbours, all at once.

    Each step every walker moves to a neighbour drawn in proportion to edge weight, or teleports
    (warps) to a random training node (with probability ``teleport``, and always at a dead end).
    Teleport targets are uniform (``teleport_to="uniform"``) or proportional to the node's
    weighted degree in the training subgraph (``"degree"``). With probability ``restart`` a
    walker instead returns to the node it started from (random walk with restart). A walker
    avoids the nodes it stopped at in its last ``no_return`` steps (clashing candidates are
    redrawn; after a few failed tries it may return). The node a walker stops at joins the
    batch. Walks run on the subgraph induced by the (active) training nodes, so no validation or
    test node is ever yielded.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:walk"})
    requires: ClassVar[frozenset[str]] = frozenset({"graph:pairwise"})
    space = {
        "walkers": WALKERS,
        "teleport": Float(low=0.0, high=1.0,
                          help="probability of a jump to a random training node per step"),
        "no_return": Int(low=0, high=64, help="steps a walker avoids revisiting"),
        "teleport_to": Categorical(choices=("uniform", "degree"),
                                   help="teleport targets: uniform or by weighted degree"),
        "restart": Float(low=0.0, high=1.0,
                         help="probability per step of returning to the walker's start node"),
    }

    def __init__(self, walkers: int = 16, teleport: float = 0.05, no_return: int = 2,
                 teleport_to: str = "uniform", restart: float = 0.0) -> None:
        self.walkers = walkers
        self.teleport = teleport
        self.no_return = no_return
        self.teleport_to = teleport_to
        self.restart = restart

    def build(self) -> None:
        sub = self.graph_.subgraph(self.train_ids_)
        self.table_ = WalkTable(sub.indptr, sub.indices, sub.weights)
        weights = self._teleport_weights(sub)
        self.teleport_cum_: np.ndarray | None = None
        if weights is not None and weights.sum() > 0:
            self.teleport_cum_ = np.cumsum(weights, dtype=np.float64)

    def init_state(self) -> None:
        self._place_walkers()
        self.start_ = self.walker_pos_.copy()
        self.steps_ = 0  # walk steps taken so far

    def _place_walkers(self) -> None:
        """Walkers at uniform training nodes (subgraph ids), with an empty history."""
        self.walker_pos_ = self.rng_.integers(0, self.train_ids_.size, size=self.walkers)
        self.history_ = np.full((self.walkers, self.no_return), -1, np.int64)

    def fit_state(self, previous: np.ndarray) -> None:
        """Walkers (and start nodes) left outside a smaller training set are placed anew."""
        n = self.train_ids_.size
        if self.walker_pos_.max(initial=-1) >= n:
            self._place_walkers()
        if self.start_.shape != self.walker_pos_.shape or self.start_.max(initial=-1) >= n:
            self.start_ = self.walker_pos_.copy()

    def reset(self) -> None:
        self.stops_ = np.zeros(0, np.int64)  # stops walked ahead, not yet batched
        self.ahead_ = 1  # batches the next burst walks (see _walk_ahead)
        self.burst_: dict[str, Any] | None = None  # how to undo the last burst (see _rewind)

    def before_graph_change(self) -> None:
        self._rewind()

    def _teleport_weights(self, sub: HyperGraph) -> np.ndarray | None:
        """Teleport probabilities over subgraph nodes (unnormalised); ``None`` for uniform."""
        if self.teleport_to == "degree":
            return np.asarray(sub.weighted_degree(), np.float64)
        return None

    def teleport_targets(self, count: int) -> np.ndarray:
        """``count`` teleport targets (subgraph ids) drawn per ``teleport_to``."""
        cum = self.teleport_cum_
        if cum is None:
            return self.rng_.integers(0, self.train_ids_.size, size=count)
        u = self.rng_.random(count) * cum[-1]
        return np.minimum(np.searchsorted(cum, u, side="right"), self.train_ids_.size - 1)

    def walk(self) -> np.ndarray:
        """Advance every walker one step; returns the new positions (subgraph ids)."""
        rng, pos = self.rng_, self.walker_pos_
        nxt = self.table_.draw(pos, rng, self.history_ if self.no_return > 0 else None)
        jump = (nxt < 0) | (rng.random(pos.size) < self.teleport)
        jumps = int(np.count_nonzero(jump))
        if jumps:
            nxt[jump] = self.teleport_targets(jumps)
        if self.restart > 0:
            back = rng.random(pos.size) < self.restart
            nxt[back] = self.start_[back]
        if self.no_return > 0:
            hist = self.history_.copy() if not self.history_.flags.writeable else self.history_
            hist[:, 1:] = hist[:, :-1]  # shift in place (np.roll allocates and is slow)
            hist[:, 0] = nxt
            self.history_ = hist
        self.walker_pos_ = nxt
        self.steps_ += 1
        return nxt

    def next_batch(self) -> Selection:
        need = self.batch_size_
        if self.stops_.size < need:
            self._walk_ahead(need)
        ids = self.stops_[:need]
        self.stops_ = self.stops_[need:]
        return Selection(self.train_ids_[ids])

    def _walk_ahead(self, need: int) -> None:
        """Walk the steps of several batches in one burst, buffered in ``stops_``.

        Batches are the walkers' stops in step order whether they are walked ahead or one
        batch at a time (same generator draws, same batches): walking in bursts keeps NumPy's
        code in the CPU caches across the small per-step calls, which a training step between
        every two walk steps evicts. A graph change takes back the steps walked ahead (see
        :meth:`_rewind`) and restarts the burst length at one batch; it doubles with every burst
        up to ``WALK_AHEAD`` batches, so a manager that changes the graph often wastes little.
        """
        parts = [self.stops_]
        have = self.stops_.size
        target = need * self.ahead_
        self.ahead_ = min(2 * self.ahead_, WALK_AHEAD)
        burst: dict[str, Any] = {"rng": self.rng_.bit_generator.state, "pos": self.walker_pos_,
                                 "history": self.history_.copy()}
        sizes = []
        while have < target:
            step = self._stops(self.walk())
            parts.append(step)
            sizes.append(step.size)
            have += step.size
        self.stops_ = np.concatenate(parts)
        burst["sizes"] = np.asarray(sizes, np.int64)
        burst["end"] = self.steps_
        self.burst_ = burst

    def _rewind(self) -> None:
        """Take back the walk steps of the last burst that no batch has used yet.

        Called before the graph changes: the walkers, their history and the generator return to
        where one-batch-at-a-time walking would have left them (the steps that produced the
        stops handed out are walked again, on the old graph), so runs whose manager changes
        the graph give the same batches as without walking ahead. A no-op when ``walk`` was
        called from outside since the burst.
        """
        burst = self.burst_
        self.burst_ = None
        if burst is None or burst["end"] != self.steps_:
            return
        sizes = burst["sizes"]
        used = int(sizes.sum()) - self.stops_.size  # stops of the burst handed out
        keep = int(np.searchsorted(np.cumsum(sizes), used, side="left")) + 1 if used > 0 else 0
        if keep >= sizes.size:
            return
        self.rng_.bit_generator.state = burst["rng"]
        self.walker_pos_ = burst["pos"]
        self.history_ = burst["history"].copy()  # the snapshot may live on in a state_dict
        for _ in range(keep):
            self.walk()

    def _stops(self, positions: np.ndarray) -> np.ndarray:
        """Batch entries (subgraph ids) contributed by one step's walker positions."""
        return positions

    def extra_state(self) -> dict[str, Any]:
        return {"pos": self.walker_pos_.copy(), "history": self.history_.copy(),
                "pending": self.stops_.copy(), "start": self.start_.copy(),
                "ahead": self.ahead_, "steps": self.steps_,
                "burst": None if self.burst_ is None else dict(self.burst_)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.walker_pos_ = np.asarray(state["pos"])
        self.history_ = np.asarray(state["history"])
        self.stops_ = np.asarray(state["pending"])
        self.start_ = np.asarray(state.get("start", self.walker_pos_))
        self.ahead_ = int(state.get("ahead", 1))
        self.steps_ = int(state.get("steps", 0))
        burst = state.get("burst")
        self.burst_ = None if burst is None else dict(burst)
