"""Graph manager base class: updates the graph while training goes on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hypergraph.base import Module
from hypergraph.graph import HyperGraph

if TYPE_CHECKING:
    from hypergraph.models import Model

__all__ = ["GraphManager"]


class GraphManager(Module):
    """Base of graph managers.

    Contract: after every hook the graph stays valid (CSR invariants, node arrays untouched in
    length, splits unchanged). A hook returns ``True`` when it changed the graph, so that the
    trainer tells the traversal (``Traversal.on_graph_change``). Managers that need per-sample
    losses set ``needs_feedback``.
    """

    needs_feedback: ClassVar[bool] = False

    def setup(self, graph: HyperGraph, rng: np.random.Generator) -> None:
        """Prepare for ``graph``."""
        self.rng_ = rng

    def on_step(self, graph: HyperGraph, model: Model, ids: np.ndarray,
                losses: np.ndarray | None) -> bool:
        """After each training step; returns whether the graph changed."""
        return False

    def on_epoch_end(self, graph: HyperGraph, model: Model, epoch: int) -> bool:
        """After each epoch; returns whether the graph changed."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """Resumable state."""
        return {"rng": self.rng_.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rng_.bit_generator.state = state["rng"]
