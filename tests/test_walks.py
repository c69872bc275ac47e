"""Walkers: visit frequencies against the stationary distribution, splits, dead ends, batching.

Tolerances: the visit frequency of node i over N = W * T samples of W independent stationary
chains has standard deviation at most sqrt(pi_i (1 - pi_i) * tau / N), where
tau = (1 + lam) / (1 - lam) bounds the integrated autocorrelation time of a reversible chain
whose second largest absolute eigenvalue is lam. We allow 5 such standard deviations (plus a
bias bound for the burn-in), and check that the tolerance is small enough to tell the right
distribution from a wrong one (uniform). Everything is seeded, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hypergraph.graph import HyperGraph
from hypergraph.traversals import (
    ComprehensiveTraversal,
    RandomWalkTraversal,
    UniformTraversal,
    WalkTable,
)
from hypergraph.traversals._random_walk import WALK_AHEAD

# a small weighted, connected, non-bipartite graph (two triangles joined by two bridges)
SRC = [0, 1, 0, 2, 3, 4, 3, 1]
DST = [1, 2, 2, 3, 4, 5, 5, 4]
WEIGHTS = [1.0, 2.0, 0.5, 3.0, 1.0, 2.5, 0.5, 1.5]


def small_graph(split: np.ndarray | None = None) -> HyperGraph:
    return HyperGraph.from_edges(6, SRC, DST, WEIGHTS, split=split)


def transition(g: HyperGraph) -> np.ndarray:
    a = g.to_scipy().toarray().astype(np.float64)
    return a / a.sum(axis=1, keepdims=True)


def stationary(p: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eig(p.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return v / v.sum()


def second_eigenvalue(p: np.ndarray) -> float:
    mags = np.sort(np.abs(np.linalg.eigvals(p)))
    return float(mags[-2])


def visit_frequencies(t: RandomWalkTraversal, g: HyperGraph, walkers: int, steps: int,
                      burn_in: int) -> np.ndarray:
    t.setup(g, batch_size=walkers, rng=np.random.default_rng(12345))
    for _ in range(burn_in):
        t.walk()
    counts = np.zeros(g.num_nodes, np.int64)
    for _ in range(steps):
        counts += np.bincount(t.next_batch().ids, minlength=g.num_nodes)
    return counts / counts.sum()


def tolerance(pi: np.ndarray, lam: float, samples: int, burn_in: int, n: int) -> float:
    tau = (1.0 + lam) / (1.0 - lam)
    sd = np.sqrt(pi * (1.0 - pi) * tau / samples).max()
    bias = math.sqrt(n) * lam ** burn_in  # distance left after burn-in from any start
    return float(5.0 * sd + bias)


def test_visit_frequency_is_proportional_to_weighted_degree() -> None:
    g = small_graph()
    p = transition(g)
    pi = g.weighted_degree() / g.weighted_degree().sum()
    np.testing.assert_allclose(stationary(p), pi, atol=1e-12)  # the textbook fact we rely on
    lam = second_eigenvalue(p)
    assert lam < 1.0  # connected and not bipartite
    walkers, steps, burn_in = 256, 1500, 60
    freq = visit_frequencies(RandomWalkTraversal(walkers=walkers, teleport=0.0, no_return=0),
                             g, walkers, steps, burn_in)
    tol = tolerance(pi, lam, walkers * steps, burn_in, g.num_nodes)
    assert tol < 0.25 * np.abs(pi - 1.0 / g.num_nodes).max()  # the test can see a wrong answer
    assert np.abs(freq - pi).max() < tol, (freq, pi, tol)


def test_visit_frequency_with_teleport() -> None:
    g = small_graph()
    t_prob = 0.3
    p = (1 - t_prob) * transition(g) + t_prob / g.num_nodes
    pi = stationary(p)
    lam = second_eigenvalue(p)
    walkers, steps, burn_in = 256, 1000, 40
    freq = visit_frequencies(RandomWalkTraversal(walkers=walkers, teleport=t_prob, no_return=0),
                             g, walkers, steps, burn_in)
    tol = tolerance(pi, lam, walkers * steps, burn_in, g.num_nodes)
    assert np.abs(freq - pi).max() < tol, (freq, pi, tol)
    # and it differs measurably from the no-teleport distribution
    pi0 = g.weighted_degree() / g.weighted_degree().sum()
    assert np.abs(pi - pi0).max() > 2 * tol


def test_walk_table_draws_in_proportion_to_weight() -> None:
    g = HyperGraph.from_edges(4, [0, 0, 0], [1, 2, 3], [1.0, 2.0, 5.0], symmetric=False)
    table = WalkTable(g.indptr, g.indices, g.weights)
    rng = np.random.default_rng(0)
    draws = table.step(np.zeros(80_000, np.int64), rng.random(80_000))
    freq = np.bincount(draws, minlength=4)[1:] / draws.size
    np.testing.assert_allclose(freq, [1 / 8, 2 / 8, 5 / 8], atol=5 * math.sqrt(0.25 / 80_000))
    # rows without edges are dead ends
    assert (table.step(np.array([1, 2, 3]), np.array([0.0, 0.5, 0.99])) == -1).all()
    zero = HyperGraph.from_edges(3, [0], [1], [0.0], symmetric=False)
    assert WalkTable(zero.indptr, zero.indices, zero.weights).step(
        np.array([0]), np.array([0.3]))[0] == -1
    empty = HyperGraph.from_edges(3, [], [])
    assert (WalkTable(empty.indptr, empty.indices, empty.weights).step(
        np.array([0, 2]), np.array([0.1, 0.9])) == -1).all()


def test_no_return_window_avoids_backtracking() -> None:
    n = 7  # an odd cycle: from each node, one of two neighbours is where the walker came from
    ring = HyperGraph.from_edges(n, list(range(n)), [(i + 1) % n for i in range(n)])

    def backtrack_rate(no_return: int) -> float:
        t = RandomWalkTraversal(walkers=256, teleport=0.0, no_return=no_return)
        t.setup(ring, batch_size=256, rng=np.random.default_rng(1))
        path = np.stack([t.walk() for _ in range(400)])
        return float((path[2:] == path[:-2]).mean())

    samples = 256 * 398
    sd = math.sqrt(0.25 / samples)
    # no window: back with probability 1/2; a window of 2 redraws clashing candidates, so a
    # walker only goes back after several failed draws (each failing with probability 1/2)
    assert abs(backtrack_rate(0) - 0.5) < 5 * sd
    assert backtrack_rate(2) < 0.1


def mixed_split_graph(rng: np.random.Generator, n: int = 80) -> HyperGraph:
    src = rng.integers(0, n, 400)
    dst = rng.integers(0, n, 400)
    split = rng.choice(np.array([0, 1, 2], np.int8), size=n, p=[0.5, 0.25, 0.25])
    return HyperGraph.from_edges(n, src, dst, rng.random(400) + 0.1, split=split)


@pytest.mark.parametrize("teleport", [0.0, 0.05])
def test_random_walk_yields_only_training_nodes(teleport: float) -> None:
    g = mixed_split_graph(np.random.default_rng(3))
    train = set(g.train_ids().tolist())
    assert 0 < len(train) < g.num_nodes
    t = RandomWalkTraversal(walkers=8, teleport=teleport, no_return=2)
    t.setup(g, batch_size=32, rng=np.random.default_rng(0))
    seen: set[int] = set()
    for _ in range(300):
        ids = t.next_batch().ids
        assert ids.size == 32 and set(ids.tolist()) <= train
        seen |= set(ids.tolist())
    assert seen == train  # covers_all: every training node is reached


def test_teleport_handles_isolated_nodes() -> None:
    # nodes 3, 4 and 5 have no edges; node 2's only neighbour is a test node (so within the
    # training subgraph it is isolated too); teleport is 0, so only dead ends make walkers jump
    split = np.array([0, 0, 0, 0, 0, 0, 2], np.int8)
    g = HyperGraph.from_edges(7, [0, 2], [1, 6], split=split)
    t = RandomWalkTraversal(walkers=16, teleport=0.0, no_return=0)
    t.setup(g, batch_size=16, rng=np.random.default_rng(0))
    counts = np.zeros(7, np.int64)
    for _ in range(500):
        ids = t.next_batch().ids
        assert ids.size == 16 and ids.min() >= 0
        counts += np.bincount(ids, minlength=7)
    assert counts[6] == 0
    assert (counts[2:6] > 0).all()  # dead ends are left (and reached) by teleporting
    # a graph without any edge: every step is a uniform jump over the training nodes
    bare = HyperGraph.from_edges(5, [], [])
    t = RandomWalkTraversal(walkers=64, teleport=0.0, no_return=1)
    t.setup(bare, batch_size=64, rng=np.random.default_rng(0))
    freq = np.bincount(np.concatenate([t.next_batch().ids for _ in range(500)]), minlength=5)
    freq = freq / freq.sum()
    assert np.abs(freq - 0.2).max() < 5 * math.sqrt(0.16 / (64 * 500))


@pytest.mark.parametrize(("batch", "walkers"), [(1, 1), (5, 16), (64, 16), (100, 7), (16, 64)])
def test_walkers_move_together(batch: int, walkers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    g = mixed_split_graph(np.random.default_rng(5))
    t = RandomWalkTraversal(walkers=walkers, teleport=0.05, no_return=2)
    t.setup(g, batch_size=batch, rng=np.random.default_rng(0))
    steps: list[np.ndarray] = []
    original = t.walk

    def counted() -> np.ndarray:
        out = original()
        steps.append(out.copy())
        return out

    monkeypatch.setattr(t, "walk", counted)
    batches = 9
    got = [t.next_batch().ids for _ in range(batches)]
    assert all(ids.shape == (batch,) for ids in got)
    # one vectorised call moves all W walkers at once
    assert all(step.shape == (walkers,) for step in steps)
    # B samples from W walkers take ceil(B / W) walker steps, possibly walked ahead: the
    # batches are the walkers' stops in step order, and no step is walked in vain
    need = math.ceil(batches * batch / walkers)
    assert need <= len(steps) <= need + math.ceil(batch * WALK_AHEAD / walkers) + 1
    stream = t.train_ids_[np.concatenate(steps)]
    np.testing.assert_array_equal(np.concatenate(got), stream[: batches * batch])
    np.testing.assert_array_equal(t.train_ids_[t.stops_], stream[batches * batch:])
    assert t.steps_per_epoch() == math.ceil(g.train_ids().size / batch)


def test_walking_ahead_gives_the_same_batches() -> None:
    """Bursts of walk steps give the batches that one burst per batch would give."""
    g = mixed_split_graph(np.random.default_rng(6))
    a = RandomWalkTraversal(walkers=6, teleport=0.2, no_return=2, restart=0.1)
    b = a.clone()
    a.setup(g, batch_size=10, rng=np.random.default_rng(4))
    b.setup(g, batch_size=10, rng=np.random.default_rng(4))
    for _ in range(40):
        b.ahead_ = 1  # never walk more than the next batch needs
        np.testing.assert_array_equal(a.next_batch().ids, b.next_batch().ids)
    assert a.ahead_ == WALK_AHEAD  # the bursts grew to their full length


def test_graph_change_takes_back_the_steps_walked_ahead() -> None:
    """With graph changes between batches, walking ahead still gives the lazy walk's batches."""
    rng = np.random.default_rng(8)
    g = mixed_split_graph(rng)
    n = g.num_nodes
    other = HyperGraph.from_edges(n, rng.integers(0, n, 300), rng.integers(0, n, 300),
                                  rng.random(300) + 0.1, split=g.split)
    a = RandomWalkTraversal(walkers=4, teleport=0.1, no_return=2)
    b = a.clone()
    a.setup(g, batch_size=6, rng=np.random.default_rng(0))
    b.setup(g, batch_size=6, rng=np.random.default_rng(0))
    graphs = [g, other]
    for i in range(60):
        if i % 7 == 6:  # a manager changed the graph
            change = graphs[(i // 7) % 2]
            a.on_graph_change(change)
            b.on_graph_change(change)
            assert a.stops_.size == 0 and a.ahead_ == 1
        b.ahead_ = 1
        np.testing.assert_array_equal(a.next_batch().ids, b.next_batch().ids)
    # a resumed copy takes back the same steps at the next change
    c = a.clone()
    c.setup(g, batch_size=6, rng=np.random.default_rng(1))
    c.on_graph_change(a.graph_)
    c.load_state_dict(a.state_dict())
    a.on_graph_change(other)
    c.on_graph_change(other)
    for _ in range(5):
        np.testing.assert_array_equal(a.next_batch().ids, c.next_batch().ids)


def test_random_walk_resume_is_exact() -> None:
    g = mixed_split_graph(np.random.default_rng(7))
    a = RandomWalkTraversal(walkers=5, teleport=0.1, no_return=3)
    a.setup(g, batch_size=12, rng=np.random.default_rng(0))
    for _ in range(4):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch().ids for _ in range(5)]
    b = RandomWalkTraversal(walkers=5, teleport=0.1, no_return=3)
    b.setup(g, batch_size=12, rng=np.random.default_rng(99))
    b.load_state_dict(state)
    for want in expected:
        np.testing.assert_array_equal(b.next_batch().ids, want)


@pytest.mark.parametrize("cls", [ComprehensiveTraversal, UniformTraversal, RandomWalkTraversal])
def test_core_traversals_contract(cls: type) -> None:
    g = mixed_split_graph(np.random.default_rng(11))
    train = g.train_ids()

    def run(seed: int) -> list[np.ndarray]:
        t = cls()
        t.setup(g, batch_size=10, rng=np.random.default_rng(seed))
        out = []
        for epoch in range(2):
            t.on_epoch_start(epoch)
            out += [t.next_batch().ids for _ in range(t.steps_per_epoch())]
        return out

    first, again, other = run(0), run(0), run(1)
    for ids in first:
        assert 0 < ids.size <= 10 and np.isin(ids, train).all()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    if cls is ComprehensiveTraversal:  # each epoch is a permutation of the training nodes
        per_epoch = len(first) // 2
        for e in range(2):
            seen = np.concatenate(first[e * per_epoch:(e + 1) * per_epoch])
            np.testing.assert_array_equal(np.sort(seen), train)


@pytest.mark.parametrize("drop_last", [False, True])
def test_comprehensive_last_batch_is_partial_or_dropped(drop_last: bool) -> None:
    # 23 training nodes, batches of 10: epochs of 10 + 10 + 3, or 10 + 10 with drop_last
    n = 23
    g = HyperGraph.from_edges(n, np.arange(n - 1), np.arange(1, n))
    t = ComprehensiveTraversal(drop_last=drop_last)
    t.setup(g, batch_size=10, rng=np.random.default_rng(0))
    assert t.steps_per_epoch() == (2 if drop_last else 3)
    for epoch in range(3):
        t.on_epoch_start(epoch)
        sizes = [t.next_batch().ids.size for _ in range(t.steps_per_epoch())]
        assert sizes == ([10, 10] if drop_last else [10, 10, 3])
    # without epoch starts (a trainer with a step limit only): a new pass once too few are left
    t = ComprehensiveTraversal(drop_last=drop_last)
    t.setup(g, batch_size=10, rng=np.random.default_rng(0))
    sizes = [t.next_batch().ids.size for _ in range(6)]
    assert sizes == ([10] * 6 if drop_last else [10, 10, 3, 10, 10, 3])
