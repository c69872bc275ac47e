"""Baselines follow their papers' rules on hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypergraph.graph import HyperGraph
from hypergraph.traversals import (
    InfoBatchTraversal,
    LossTopKTraversal,
    RhoLossTraversal,
    TraversalContext,
)
from hypergraph.traversals._baselines import (
    graph_irreducible_losses,
    infobatch_plan,
    nodes_at_ranks,
    rank_probabilities,
    rho_select,
)


class _FixedUniforms:
    """A stand-in generator whose ``random`` returns given numbers."""

    def __init__(self, values: list[float]) -> None:
        self.values = np.asarray(values)

    def random(self, n: int) -> np.ndarray:
        return self.values[:n]


def _ring(n: int = 12, split: np.ndarray | None = None) -> HyperGraph:
    src = np.arange(n)
    g = HyperGraph.from_edges(n, src, (src + 1) % n, split=split,
                              label=np.arange(n) % 2)
    return g


def test_infobatch_rule_hand_case() -> None:
    scores = np.array([0.1, 0.2, 0.9, 1.0, 0.3])  # mean 0.5: rows 0, 1, 4 are well learned
    kept, weights = infobatch_plan(scores, 0.5, _FixedUniforms([0.1, 0.9, 0.3, 0.2, 0.8]))
    # row 0 (u=0.1 < 0.5) is pruned; rows 1 and 4 survive and are up-weighted by 1/(1-0.5)
    np.testing.assert_array_equal(kept, [1, 2, 3, 4])
    np.testing.assert_allclose(weights, [2.0, 1.0, 1.0, 2.0])


def test_infobatch_first_epoch_full_then_pruned_then_annealed() -> None:
    split = np.zeros(40, np.int8)
    split[-8:] = 1
    g = _ring(40, split)
    t = InfoBatchTraversal(prune_ratio=0.5, delta=0.5)
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(epochs=4))
    t.on_epoch_start(0)
    assert t.steps_per_epoch() == 4  # all scores equal: nothing below the mean
    seen = []
    for _ in range(t.steps_per_epoch()):
        sel = t.next_batch()
        assert sel.weights is not None and np.all(sel.weights == 1.0)
        seen.append(sel.ids)
        t.feedback(sel.ids, np.where(sel.ids < 16, 0.1, 1.0))  # ids < 16 are well learned
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(32))
    t.on_epoch_start(1)
    ids = np.concatenate([t.next_batch().ids for _ in range(t.steps_per_epoch())])
    wts = t.weights_
    assert ids.size < 32 and set(range(16, 32)) <= set(ids.tolist())  # hard rows all kept
    assert np.all(wts[t.scores_[t.order_] < t.scores_.mean()] == 2.0)
    t.on_epoch_start(2)  # epoch 2 >= delta * epochs: full data, weight 1
    assert t.order_.size == 32 and np.all(t.weights_ == 1.0)


def test_rho_select_hand_case() -> None:
    losses = np.array([1.0, 2.0, 3.0, 0.5])
    irreducible = np.array([0.9, 0.1, 2.9, 0.0])  # reducible: 0.1, 1.9, 0.1, 0.5
    np.testing.assert_array_equal(rho_select(losses, irreducible, 2), [1, 3])


def test_rho_loss_scores_a_big_batch_and_keeps_the_top() -> None:
    split = np.zeros(200, np.int8)
    split[150:] = 2
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    g = _ring(200, split)
    from hypergraph.data import ArrayStore

    g.store = ArrayStore(X)
    scored: list[np.ndarray] = []

    def score(ids: np.ndarray) -> np.ndarray:
        scored.append(ids)
        return ids.astype(np.float64)  # loss = node id

    t = RhoLossTraversal(big_batch_factor=5, il_epochs=1, il_width=0)
    t.setup(g, 4, np.random.default_rng(1), TraversalContext(score=score))
    t.irreducible_ = np.zeros(150)  # make the rule checkable: reducible loss = node id
    sel = t.next_batch()
    assert scored[0].size == 20 and np.all(scored[0] < 150)
    np.testing.assert_array_equal(np.sort(sel.ids), np.sort(scored[0])[-4:])
    assert t.overhead_["forward_samples"] > 0 and t.overhead_["params"] == 4 * 2 + 2


def test_rank_probabilities_follow_the_pressure() -> None:
    p = rank_probabilities(100, 100.0)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(np.diff(p) < 0)
    assert p[0] / p[-1] == pytest.approx(math.exp(math.log(100.0) * 99 / 100))


def test_loss_topk_prefers_high_recent_losses() -> None:
    g = _ring(20)
    t = LossTopKTraversal(pressure=1e8)
    t.setup(g, 3, np.random.default_rng(0))
    t.feedback(np.arange(20), np.arange(20) / 20.0)
    picks = np.concatenate([t.next_batch().ids for _ in range(20)])
    # with pressure 1e8 the top-ranked (highest loss) nodes dominate
    assert np.mean(np.isin(picks, [17, 18, 19])) > 0.6
    t2 = LossTopKTraversal()
    t2.setup(g, 5, np.random.default_rng(0))
    t2.feedback(np.arange(10), np.zeros(10))
    assert np.isin(t2.next_batch().ids, np.arange(10, 20)).mean() >= 0.6  # unseen rank first


def test_graph_irreducible_loss_hand_case() -> None:
    # path 0 - 1 - 2 with labels 0, 0, 1 and unit weights
    g = HyperGraph.from_edges(3, [0, 1], [1, 2], label=np.array([0, 0, 1]))
    il = graph_irreducible_losses(g, smoothing=1.0, num_classes=2)
    # node 0: one agreeing neighbour -> p = (1 + .5) / (1 + 1); node 1: one of two agree
    # -> p = (1 + .5) / (2 + 1); node 2: its only neighbour disagrees -> p = .5 / 2
    np.testing.assert_allclose(il, -np.log([0.75, 0.5, 0.25]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-np.inf, -3.0, -1.5, -0.0, 0.0, 0.25, 2.0, np.inf]) |
                st.floats(-5, 5), min_size=1, max_size=60),
       st.integers(0, 2**32 - 1))
def test_nodes_at_ranks_is_the_full_lexsort_at_those_ranks(keys: list[float], seed: int) -> None:
    """loss_topk's selection reads a few ranks of (loss, random tie) order: identical to
    ``np.lexsort`` on every input, repeated values and infinities included."""
    rng = np.random.default_rng(seed)
    key = np.asarray(keys, np.float64)
    tie = rng.random(key.size)
    ranks = rng.choice(key.size, size=rng.integers(1, key.size + 1), replace=False)
    expected = np.lexsort((tie, key))[ranks]
    assert np.array_equal(nodes_at_ranks(key, tie, ranks), expected)


def test_nodes_at_ranks_with_nan_keys_falls_back_to_lexsort() -> None:
    key = np.array([1.0, np.nan, 0.5, 1.0])
    tie = np.array([0.9, 0.1, 0.5, 0.2])
    ranks = np.array([3, 0, 1])
    assert np.array_equal(nodes_at_ranks(key, tie, ranks), np.lexsort((tie, key))[ranks])
