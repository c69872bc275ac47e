"""random_walk teleport/restart options and the cluster_hop traversal."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from hypergraph.config import RunConfig
from hypergraph.dataloaders import ClusterDataloader
from hypergraph.datasets import in_memory
from hypergraph.graph import TRAIN, HyperGraph
from hypergraph.run import train
from hypergraph.traversals import ClusterHopTraversal, RandomWalkTraversal, Traversal


def _graph(n: int = 40) -> HyperGraph:
    """A ring with chords; every fifth node is validation, the next test."""
    src = np.concatenate([np.arange(n), np.arange(0, n, 3)])
    dst = np.concatenate([(np.arange(n) + 1) % n, (np.arange(0, n, 3) + 7) % n])
    split = np.zeros(n, np.int8)
    split[np.arange(n) % 5 == 3] = 1
    split[np.arange(n) % 5 == 4] = 2
    return HyperGraph.from_edges(n, src, dst, split=split)


@lru_cache(maxsize=1)
def _cluster_graph() -> HyperGraph:
    """A small cluster graph (built once; traversals do not change it)."""
    gen = np.random.default_rng(0)
    n = 200
    X = gen.normal(size=(n, 4)) + np.repeat(gen.normal(0, 4, size=(4, 4)), n // 4, axis=0)
    split = gen.choice(3, size=n, p=[0.6, 0.2, 0.2]).astype(np.int8)
    b = in_memory("pts", X, np.zeros(n, np.int64), split, "classification", 1)
    return ClusterDataloader(cluster_size=10, k=3).build(b, np.random.default_rng(0))


def _batches(trav: Traversal, count: int) -> np.ndarray:
    return np.stack([trav.next_batch().ids for _ in range(count)])


TRAVERSALS: list[tuple[type[Traversal], dict[str, Any], str]] = [
    (RandomWalkTraversal, {"teleport_to": "degree", "teleport": 0.3}, "points"),
    (RandomWalkTraversal, {"restart": 0.3}, "points"),
    (RandomWalkTraversal, {"restart": 0.2, "teleport_to": "degree"}, "clusters"),
    (ClusterHopTraversal, {}, "clusters"),
    (ClusterHopTraversal, {"teleport_to": "degree", "restart": 0.1, "samples_per_stop": 3},
     "clusters"),
    (ClusterHopTraversal, {"teleport_to": "uniform", "no_return": 0}, "clusters"),
]
IDS = [f"{c.name}-{i}" for i, (c, _, _) in enumerate(TRAVERSALS)]


@pytest.mark.parametrize(("cls", "params", "kind"), TRAVERSALS, ids=IDS)
def test_only_training_ids_and_deterministic(cls: type[Traversal], params: dict[str, Any],
                                            kind: str) -> None:
    g = _graph() if kind == "points" else _cluster_graph()
    runs = []
    for _ in range(2):
        trav = cls(**params)
        trav.setup(g, 12, np.random.default_rng(3))
        runs.append(_batches(trav, 30))
    assert np.array_equal(runs[0], runs[1])
    assert runs[0].shape == (30, 12)
    assert np.all(g.split[runs[0]] == TRAIN)
    other = cls(**params)
    other.setup(g, 12, np.random.default_rng(4))
    assert not np.array_equal(_batches(other, 30), runs[0])


@pytest.mark.parametrize(("cls", "params", "kind"), TRAVERSALS, ids=IDS)
def test_resume_continues_the_same_sequence(cls: type[Traversal], params: dict[str, Any],
                                            kind: str) -> None:
    g = _graph() if kind == "points" else _cluster_graph()
    trav = cls(**params)
    trav.setup(g, 7, np.random.default_rng(1))
    _batches(trav, 5)
    state = trav.state_dict()
    expected = _batches(trav, 10)
    fresh = cls(**params)
    fresh.setup(g, 7, np.random.default_rng(99))
    fresh.load_state_dict(state)
    assert np.array_equal(_batches(fresh, 10), expected)


def test_restart_one_keeps_walkers_at_their_starts() -> None:
    g = _graph()
    trav = RandomWalkTraversal(walkers=5, restart=1.0, teleport=0.0)
    trav.setup(g, 10, np.random.default_rng(0))
    starts = set(trav.train_ids_[trav.start_].tolist())
    assert set(_batches(trav, 20).ravel().tolist()) == starts


def test_degree_teleport_never_lands_on_isolated_nodes() -> None:
    # nodes 0-9 train; 0-4 form a path, 5-9 are isolated
    g = HyperGraph.from_edges(10, [0, 1, 2, 3], [1, 2, 3, 4])
    trav = RandomWalkTraversal(walkers=8, teleport=1.0, teleport_to="degree", no_return=0)
    trav.setup(g, 8, np.random.default_rng(0))
    seen = _batches(trav, 50).ravel()
    assert set(seen.tolist()) == {0, 1, 2, 3, 4}
    # the interior nodes have twice the degree of the ends: drawn about twice as often
    counts = np.bincount(seen, minlength=5)
    assert counts[1:4].min() > counts[[0, 4]].max()
    uniform = RandomWalkTraversal(walkers=8, teleport=1.0, no_return=0)
    uniform.setup(g, 8, np.random.default_rng(0))
    assert set(_batches(uniform, 50).ravel().tolist()) == set(range(10))


def test_cluster_hop_samples_points_from_the_clusters_it_stops_at() -> None:
    g = _cluster_graph()
    trav = ClusterHopTraversal(walkers=4, samples_per_stop=3)
    trav.setup(g, 12, np.random.default_rng(0))
    ids = trav.next_batch().ids
    assert np.all(g.store_row[ids] == -1)  # training nodes are clusters
    assert np.array_equal(ids.reshape(-1, 3), np.repeat(ids[::3], 3).reshape(-1, 3))
    ptr, members = g.members  # type: ignore[misc]
    train_points = int((ptr[g.train_ids() + 1] - ptr[g.train_ids()]).sum())
    assert trav.steps_per_epoch() == int(np.ceil(train_points / 12))
    rows = g.node_rows(ids, np.random.default_rng(0))
    for node, row in zip(ids, rows, strict=True):
        assert row in members[ptr[node]:ptr[node + 1]]
    # size-proportional teleport: every training cluster is reached
    trav = ClusterHopTraversal(walkers=8, teleport=1.0)
    trav.setup(g, 64, np.random.default_rng(0))
    assert set(_batches(trav, 40).ravel().tolist()) == set(g.train_ids().tolist())


@pytest.mark.parametrize(("dataloader", "traversal"), [
    ({"name": "cluster", "params": {"cluster_size": 8}},
     {"name": "cluster_hop", "params": {"restart": 0.1}}),
    ({"name": "knn"}, {"name": "random_walk",
                       "params": {"teleport_to": "degree", "restart": 0.1}}),
])
def test_trains_one_epoch_on_digits(dataloader: dict[str, Any],
                                    traversal: dict[str, Any]) -> None:
    cfg = RunConfig.model_validate({
        "seed": 0, "device": "cpu", "dataloader": dataloader, "traversal": traversal,
        "model": {"name": "mlp", "params": {"width": 32}},
        "trainer": {"name": "standard", "params": {"epochs": 1}}})
    result = train(cfg)
    assert result["epochs"] == 1 and 0.0 <= result["test"]["accuracy"] <= 1.0
