"""Two custom modules, registered on import.

* ``traversal:stride`` - walks the training nodes in a shuffled ring, taking every ``stride``-th
  one, so that consecutive batches spread over the data; visits every training node.
* ``model:linear_probe`` - a single linear layer (a plain softmax / linear regression).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from torch import nn

from hypergraph.models import TorchModel
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int
from hypergraph.traversals import Selection, Traversal


@register("traversal", "stride")
class StrideTraversal(Traversal):
    """Every ``stride``-th node of a shuffled ring of training nodes, batch after batch.

    A whole traversal: the base class keeps ``graph_``, ``rng_``, ``batch_size_``,
    ``train_ids_`` and ``position_`` current and calls ``reset`` at setup and after every graph
    change. A traversal with per-node state would also override ``init_state`` (made once),
    caches ``build`` (rebuilt with the graph) and, with ``needs_feedback``, ``feedback``.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:epoch"})
    space = {"stride": Int(low=1, high=1000, help="ring positions skipped per pick")}

    def __init__(self, stride: int = 7) -> None:
        self.stride = stride

    def reset(self) -> None:  # at setup and after every graph change: a new ring
        self.ring_ = self.rng_.permutation(self.train_ids_)
        self.cursor_ = 0

    def next_batch(self) -> Selection:
        n = self.ring_.size
        step = self.stride if math.gcd(self.stride, n) == 1 else 1
        pos = (self.cursor_ + step * np.arange(min(self.batch_size_, n))) % n
        self.cursor_ = int((pos[-1] + step) % n)
        return Selection(self.ring_[pos])

    def extra_state(self) -> dict[str, Any]:
        return {"ring": self.ring_.copy(), "cursor": self.cursor_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.ring_ = np.asarray(state["ring"])
        self.cursor_ = int(state["cursor"])


class _Linear(nn.Module):
    def __init__(self, size: int, outputs: int) -> None:
        super().__init__()
        self.body = nn.Flatten()
        self.head = nn.Linear(size, outputs)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(self.body(x))


@register("model", "linear_probe")
class LinearProbeModel(TorchModel):
    """One linear layer on the flattened input, for classification or regression."""

    tags: ClassVar[frozenset[str]] = TorchModel.tags | {"task:classification",
                                                       "task:regression"}
    requires: ClassVar[frozenset[str]] = frozenset({"features:vector"})
    space = {
        "lr": Float(low=1e-5, high=1.0, log=True, help="learning rate"),
        "weight_decay": Float(low=0.0, high=0.1, help="L2 penalty"),
        "optimizer": Categorical(choices=("adam", "adamw", "sgd"),
                                 help="optimiser"),
    }

    def __init__(self, lr: float = 0.01, weight_decay: float = 0.0,
                 optimizer: str = "adam") -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer

    def build_network(self, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
        return _Linear(math.prod(input_shape), num_outputs)
