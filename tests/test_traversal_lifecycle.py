"""The traversal life cycle: which hooks run, in which order, with what the base keeps current."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hypergraph.testing import fixture_graph
from hypergraph.traversals import Selection, Traversal


class _Recorder(Traversal):
    """Records every hook call with the number of training nodes it saw."""

    def __init__(self) -> None:
        self.calls_: list[tuple[str, int]] = []  # a test probe, not a hyperparameter

    def _note(self, hook: str) -> None:
        self.calls_.append((hook, int(self.train_ids_.size)))

    def build(self) -> None:
        self._note("build")

    def init_state(self) -> None:
        self._note("init_state")
        self.seen_ = np.zeros(self.train_ids_.size, np.int64)

    def reset(self) -> None:
        self._note("reset")

    def before_graph_change(self) -> None:
        self._note("before_graph_change")

    def next_batch(self) -> Selection:
        ids = self.train_ids_[:self.batch_size_]
        self.seen_[self.position_[ids]] += 1
        return Selection(ids)

    def extra_state(self) -> dict[str, Any]:
        return {"seen": self.seen_.copy()}


def test_hooks_run_in_the_documented_order() -> None:
    g = fixture_graph("standard")
    t = _Recorder()
    t.setup(g, 4, np.random.default_rng(0))
    n = g.train_ids().size
    assert t.calls_ == [("build", n), ("init_state", n), ("reset", n)]
    assert np.array_equal(t.position_[t.train_ids_], np.arange(n))
    assert (np.delete(t.position_, t.train_ids_) == -1).all()
    t.next_batch()

    t.calls_ = []
    src, dst, _ = g.edge_list()
    g.remove_edges(src[:4], dst[:4])
    t.on_graph_change(g)  # same training nodes: the state is kept
    assert t.calls_ == [("before_graph_change", n), ("build", n), ("reset", n)]
    assert t.seen_.sum() == 4

    t.calls_ = []
    mask = np.ones(g.num_nodes, bool)
    mask[g.train_ids()[:3]] = False
    g.set_active(mask)
    t.on_graph_change(g)  # fewer training nodes: the state is made anew, after build
    assert t.calls_ == [("before_graph_change", n), ("build", n - 3), ("init_state", n - 3),
                        ("reset", n - 3)]
    assert t.seen_.sum() == 0 and t.position_[g.train_ids()[0]] == 0


def test_a_traversal_written_for_the_single_build_hook_still_works() -> None:
    with pytest.warns(DeprecationWarning, match="_build is deprecated"):

        class Old(Traversal):
            def __init__(self) -> None:
                pass

            def _build(self) -> None:
                self.order_ = self.rng_.permutation(self.train_ids_)

            def next_batch(self) -> Selection:
                return Selection(self.order_[:self.batch_size_])

    t = Old()
    t.setup(fixture_graph("standard"), 4, np.random.default_rng(0))
    first = t.order_
    t.on_graph_change(t.graph_)
    assert t.next_batch().ids.size == 4 and not np.array_equal(first, t.order_)
