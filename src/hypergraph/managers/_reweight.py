"""Edge weights that follow how much training on a neighbour reduced a node's loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hypergraph.graph import HyperGraph
from hypergraph.managers._base import GraphManager
from hypergraph.registry import register
from hypergraph.spaces import Float, Int

if TYPE_CHECKING:
    from hypergraph.models import Model

__all__ = ["ReweightManager", "reverse_positions"]


def reverse_positions(graph: HyperGraph) -> np.ndarray:
    """For each CSR entry ``u -> v``, the position of ``v -> u`` (``-1`` when absent)."""
    n = graph.num_nodes
    src, dst, _ = graph.edge_list()
    key = src * n + dst  # sorted: CSR rows in order, indices sorted within each row
    rkey = dst * n + src
    pos = np.searchsorted(key, rkey)
    pos_c = np.minimum(pos, max(key.size - 1, 0))
    found = (pos < key.size) & (key[pos_c] == rkey) if key.size else np.zeros(0, bool)
    return np.where(found, pos_c, -1).astype(np.int64)


@register("manager", "reweight")
class ReweightManager(GraphManager):
    """Edge weights follow how much training on a neighbour reduced a node's loss.

    The rule (all array operations over the batch's CSR rows):

    * When node ``v`` is trained at step ``t`` with loss ``l_v(t)`` and was last trained at step
      ``t0`` with loss ``l_v(t0)``, its loss fell by ``d = l_v(t0) - l_v(t)``.
    * Every neighbour ``u`` of ``v`` trained strictly between ``t0`` and ``t`` gets the credit:
      the score of edge ``{v, u}`` moves to ``s <- (1 - rate) * s + rate * mean(d)`` (mean over
      the credits the edge received in this step; both directions share one score).
    * Every ``update_every`` steps (and at each epoch end) the weights become
      ``w = w0 * (1 + strength * tanh(s / scale))``, with ``w0`` the weights as built, so
      weights stay positive and within ``w0 * [1 - strength, 1 + strength]``.

    Only weights change; the edges, node arrays and splits stay as built.
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"manager:dynamic"})
    requires: ClassVar[frozenset[str]] = frozenset({"per_sample_loss", "graph:pairwise"})
    space = {
        "rate": Float(low=1e-4, high=1.0, log=True,
                      help="step of the moving average of credited loss reductions"),
        "strength": Float(low=0.0, high=0.99,
                          help="largest relative change of an edge weight"),
        "scale": Float(low=1e-6, high=100.0, log=True,
                       help="loss reduction that moves a weight by ~76% of strength"),
        "update_every": Int(low=1, high=1_000_000, log=True,
                            help="steps between writes of the weights to the graph"),
    }

    def __init__(self, rate: float = 0.2, strength: float = 0.9, scale: float = 0.1,
                 update_every: int = 50) -> None:
        self.rate = rate
        self.strength = strength
        self.scale = scale
        self.update_every = update_every

    def setup(self, graph: HyperGraph, rng: np.random.Generator) -> None:
        super().setup(graph, rng)
        n = graph.num_nodes
        self.base_ = graph.weights.astype(np.float64).copy()
        rev = reverse_positions(graph)
        pos = np.arange(graph.num_edges, dtype=np.int64)
        self.canon_ = np.where(rev >= 0, np.minimum(pos, rev), pos)
        self.score_ = np.zeros(graph.num_edges, np.float64)
        self.last_loss_ = np.full(n, np.nan, np.float64)
        self.last_step_ = np.full(n, -1, np.int64)
        self.step_ = 0
        self.dirty_ = False

    def credit(self, graph: HyperGraph, ids: np.ndarray, losses: np.ndarray) -> None:
        """Apply the credit rule for one trained batch (no write to the graph)."""
        t = self.step_ + 1
        ids = np.asarray(ids, np.int64)
        losses = np.asarray(losses, np.float64)
        uniq, first = np.unique(ids, return_index=True)
        loss_now = losses[first]
        prev_step, prev_loss = self.last_step_[uniq], self.last_loss_[uniq]
        known = (prev_step >= 0) & np.isfinite(prev_loss)
        v, t0, d = uniq[known], prev_step[known], prev_loss[known] - loss_now[known]
        if v.size:
            lo, hi = graph.indptr[v], graph.indptr[v + 1]
            deg = hi - lo
            owner = np.repeat(np.arange(v.size), deg)
            pos = np.repeat(lo - np.cumsum(deg) + deg, deg) + np.arange(int(deg.sum()))
            nbr = graph.indices[pos].astype(np.int64)
            trained = self.last_step_[nbr]
            hit = (trained > t0[owner]) & (trained < t)
            if hit.any():
                edge, inv = np.unique(self.canon_[pos[hit]], return_inverse=True)
                total = np.bincount(inv, weights=d[owner[hit]], minlength=edge.size)
                count = np.bincount(inv, minlength=edge.size)
                self.score_[edge] = ((1.0 - self.rate) * self.score_[edge]
                                     + self.rate * total / count)
                self.dirty_ = True
        self.last_loss_[uniq] = loss_now
        self.last_step_[uniq] = t
        self.step_ = t

    def weights(self) -> np.ndarray:
        """The weights the current scores give (same order as ``graph.indices``)."""
        factor = 1.0 + self.strength * np.tanh(self.score_[self.canon_] / self.scale)
        return (self.base_ * factor).astype(np.float32)

    def _write(self, graph: HyperGraph) -> bool:
        if not self.dirty_ or graph.num_edges != self.base_.size:
            return False
        graph.set_weights(self.weights())
        self.dirty_ = False
        return True

    def on_step(self, graph: HyperGraph, model: Model, ids: np.ndarray,
                losses: np.ndarray | None) -> bool:
        if losses is None:
            return False
        self.credit(graph, ids, losses)
        if self.step_ % self.update_every == 0:
            return self._write(graph)
        return False

    def on_epoch_end(self, graph: HyperGraph, model: Model, epoch: int) -> bool:
        return self._write(graph)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "score": self.score_.copy(),
                "last_loss": self.last_loss_.copy(), "last_step": self.last_step_.copy(),
                "step": self.step_, "dirty": self.dirty_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.score_ = np.asarray(state["score"], np.float64)
        self.last_loss_ = np.asarray(state["last_loss"], np.float64)
        self.last_step_ = np.asarray(state["last_step"], np.int64)
        self.step_ = int(state["step"])
        self.dirty_ = bool(state["dirty"])
