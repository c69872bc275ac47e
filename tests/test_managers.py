"""Graph managers: reembed, reweight and reduction keep the graph valid and do what they say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hypergraph.config import RunConfig
from hypergraph.data import ArrayStore
from hypergraph.dataloaders import KNNDataloader
from hypergraph.datasets import in_memory
from hypergraph.exceptions import DataError
from hypergraph.graph import TRAIN, HyperGraph
from hypergraph.managers import ReductionManager, ReembedManager, ReweightManager, reverse_positions
from hypergraph.run import resume, train
from hypergraph.trainers import Callback, TrainContext, TrainState
from hypergraph.traversals import (
    ComprehensiveTraversal,
    RandomWalkTraversal,
    UniformTraversal,
)
from results import without_timings


class FixedEmbedding:
    """A stand-in model whose embedding is a fixed linear map (no training)."""

    device = torch.device("cpu")

    def __init__(self, W: np.ndarray) -> None:
        self.W = torch.from_numpy(W.astype(np.float32))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W


def _path_graph(n: int = 3) -> HyperGraph:
    return HyperGraph.from_edges(n, np.arange(n - 1), np.arange(1, n))


def _knn_graph(n: int = 40, seed: int = 0) -> tuple[HyperGraph, np.ndarray]:
    gen = np.random.default_rng(seed)
    X = gen.normal(size=(n, 3)).astype(np.float32)
    split = np.where(np.arange(n) % 5 == 3, 1, np.where(np.arange(n) % 5 == 4, 2, 0))
    b = in_memory("pts", X, np.zeros(n, np.int64), split.astype(np.int8), "classification", 1)
    g = KNNDataloader(k=3).build(b, np.random.default_rng(0))
    return g, X


# ---------------------------------------------------------------------------- reembed
def test_reembed_rebuilds_from_the_embedding_every_k_epochs() -> None:
    g, X = _knn_graph()
    split_before = g.split.copy()
    W = np.array([[1.0], [0.0], [0.0]])  # embedding: the first coordinate only
    model = FixedEmbedding(W)
    m = ReembedManager(every=2, k=2, metric="euclidean")
    m.setup(g, np.random.default_rng(0))
    before = g.indices.copy()
    assert m.on_epoch_end(g, model, 0) is False  # type: ignore[arg-type]
    assert np.array_equal(g.indices, before)
    assert m.on_epoch_end(g, model, 1) is True  # type: ignore[arg-type]
    g.validate()
    assert g.is_symmetric() and np.array_equal(g.split, split_before)
    # the new edges are the symmetrised 2-NN of the embedding
    ids, _ = KNNDataloader(k=2, metric="euclidean").neighbours(X @ W.astype(np.float32))
    expected = {(i, int(j)) for i in range(X.shape[0]) for j in ids[i]}
    expected |= {(j, i) for i, j in expected}
    src, dst, _ = g.edge_list()
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == expected


def test_reembed_threshold_method_and_cluster_refusal() -> None:
    g, _ = _knn_graph()
    m = ReembedManager(every=1, method="threshold", k=4, threshold=0.2)
    m.setup(g, np.random.default_rng(0))
    assert m.on_epoch_end(g, FixedEmbedding(np.eye(3)), 0)  # type: ignore[arg-type]
    g.validate()
    assert g.is_symmetric() and g.num_edges > 0
    c = HyperGraph.from_edges(2, [0], [1])
    c.store_row = np.array([-1, 0])
    c.members = (np.array([0, 2, 3]), np.array([1, 2, 0]))
    c.store = ArrayStore(np.zeros((3, 2), np.float32))
    with pytest.raises(DataError, match="cluster nodes"):
        ReembedManager().setup(c, np.random.default_rng(0))


# ---------------------------------------------------------------------------- reweight
def test_reweight_rule_by_hand() -> None:
    g = _path_graph(3)  # 0 - 1 - 2, weights 1
    m = ReweightManager(rate=1.0, strength=0.5, scale=1.0, update_every=1)
    m.setup(g, np.random.default_rng(0))
    assert m.on_step(g, None, np.array([0]), np.array([2.0])) is False  # type: ignore[arg-type]
    assert m.on_step(g, None, np.array([1]), np.array([1.0])) is False  # type: ignore[arg-type]
    # node 0 again: its loss fell by 0.5 and neighbour 1 was trained in between
    assert m.on_step(g, None, np.array([0]), np.array([1.5])) is True  # type: ignore[arg-type]
    g.validate()
    w = 1 + 0.5 * np.tanh(0.5)
    assert g.weights.tolist() == pytest.approx([w, w, 1.0, 1.0])  # 0->1, 1->0, 1->2, 2->1
    assert g.is_symmetric()
    # node 2 trained in the same batch as 1 earns nothing; node 1's loss rose 1.0 -> 2.0 and
    # its neighbour 0 was trained in between, so edge {0, 1} moves to -1.0 (rate 1)
    m.on_step(g, None, np.array([1, 2]), np.array([2.0, 3.0]))  # type: ignore[arg-type]
    assert g.weights.tolist() == pytest.approx([1 + 0.5 * np.tanh(-1.0)] * 2 + [1.0, 1.0])


def test_reweight_moving_average_and_stale_neighbours() -> None:
    g = _path_graph(3)
    m = ReweightManager(rate=0.5, strength=0.5, scale=1.0, update_every=100)
    m.setup(g, np.random.default_rng(0))
    m.on_step(g, None, np.array([2]), np.array([1.0]))  # type: ignore[arg-type]  # t=1
    m.on_step(g, None, np.array([1]), np.array([4.0]))  # type: ignore[arg-type]  # t=2
    m.on_step(g, None, np.array([1]), np.array([3.0]))  # type: ignore[arg-type]  # t=3
    # node 2 was trained before node 1's previous visit (t=1 < t0=2): no credit
    assert np.all(m.score_ == 0)
    m.on_step(g, None, np.array([2]), np.array([0.0]))  # type: ignore[arg-type]  # t=4
    # node 2 fell by 1.0; neighbour 1 trained at t=2 and 3, inside (1, 4): s = 0.5 * 1.0
    assert g.weights.tolist() == [1.0, 1.0, 1.0, 1.0]  # not written yet (update_every)
    assert m.on_epoch_end(g, None, 0) is True  # type: ignore[arg-type]
    assert g.weights.tolist() == pytest.approx([1.0, 1.0] + [1 + 0.5 * np.tanh(0.5)] * 2)
    assert m.on_epoch_end(g, None, 1) is False  # type: ignore[arg-type]


def test_reweight_keeps_a_real_graph_valid_and_resumes() -> None:
    g, _ = _knn_graph(60)
    m = ReweightManager(update_every=3)
    m.setup(g, np.random.default_rng(0))
    gen = np.random.default_rng(1)
    train_ids = g.train_ids()
    for _ in range(10):
        ids = gen.choice(train_ids, 8)
        m.on_step(g, None, ids, gen.random(8))  # type: ignore[arg-type]
        g.validate()
        assert g.is_symmetric() and g.weights.min() > 0
    state = m.state_dict()
    m2 = ReweightManager(update_every=3)
    m2.setup(_knn_graph(60)[0], np.random.default_rng(0))
    m2.load_state_dict(state)
    assert np.array_equal(m2.weights(), m.weights())


def test_reverse_positions() -> None:
    g = HyperGraph.from_edges(3, [0, 1], [1, 2], symmetric=False)
    g.add_edges([1], [0], symmetric=False)
    rev = reverse_positions(g)
    src, dst, _ = g.edge_list()
    for e, r in enumerate(rev):
        if r >= 0:
            assert (src[r], dst[r]) == (dst[e], src[e])
        else:
            assert not g.has_edge(int(dst[e]), int(src[e]))


# ---------------------------------------------------------------------------- reduction
def test_reduction_withdraws_and_restores() -> None:
    n = 30
    split = np.where(np.arange(n) >= 20, np.where(np.arange(n) >= 25, 2, 1), 0)
    g = HyperGraph.from_edges(n, np.arange(n - 1), np.arange(1, n), split=split)
    m = ReductionManager(fraction=0.25, rest_epochs=2, every=1, min_active=0.3)
    m.setup(g, np.random.default_rng(0))
    train = np.arange(20)
    m.on_step(g, None, train, train.astype(float))  # type: ignore[arg-type]  # loss = id
    assert m.on_epoch_end(g, None, 0) is True  # type: ignore[arg-type]
    g.validate()
    assert set(m.withdrawn().tolist()) == {0, 1, 2, 3, 4}  # lowest 25% of 20 active
    assert np.array_equal(g.train_ids(), np.arange(5, 20))
    assert np.array_equal(g.split, split)  # splits untouched; val/test stay
    # traversals see the change after on_graph_change
    for trav in (ComprehensiveTraversal(), UniformTraversal(), RandomWalkTraversal(walkers=4)):
        trav.setup(g, 8, np.random.default_rng(0))
        seen = np.concatenate([trav.next_batch().ids for _ in range(20)])
        assert not np.isin(seen, np.arange(5)).any() and np.all(g.split[seen] == TRAIN)
    # epoch 1: withdraw the lowest 25% of the 15 active (3 nodes: 5, 6, 7)
    assert m.on_epoch_end(g, None, 1) is True  # type: ignore[arg-type]
    assert set(m.withdrawn().tolist()) == set(range(8))
    # epoch 2 ends: nodes 0-4 return (rested 2 epochs) without a loss record, so they are not
    # eligible; 17 active -> budget int(0.25 * 17) = 4: nodes 8-11 leave
    assert m.on_epoch_end(g, None, 2) is True  # type: ignore[arg-type]
    assert set(m.withdrawn().tolist()) == set(range(5, 12))
    assert np.isin(np.arange(5), g.train_ids()).all()
    g.validate()


def test_reduction_keeps_min_active_and_state_round_trip() -> None:
    n = 10
    g = HyperGraph.from_edges(n, np.arange(n - 1), np.arange(1, n))
    m = ReductionManager(fraction=0.9, rest_epochs=5, min_active=0.5)
    m.setup(g, np.random.default_rng(0))
    m.on_step(g, None, np.arange(n), np.arange(n, dtype=float))  # type: ignore[arg-type]
    m.on_epoch_end(g, None, 0)  # type: ignore[arg-type]
    assert g.train_ids().size == 5
    state = m.state_dict()
    g2 = HyperGraph.from_edges(n, np.arange(n - 1), np.arange(1, n))
    m2 = ReductionManager(fraction=0.9, rest_epochs=5, min_active=0.5)
    m2.setup(g2, np.random.default_rng(0))
    m2.load_state_dict(state)
    assert np.array_equal(g2.train_ids(), g.train_ids())
    m.on_epoch_end(g, None, 1)  # type: ignore[arg-type]  # min_active reached: no change
    assert g.train_ids().size == 5


def test_graph_active_mask_is_validated() -> None:
    g = _path_graph(4)
    with pytest.raises(DataError, match="boolean"):
        g.set_active(np.ones(4, np.int64))
    g.set_active(np.array([True, False, True, True]))
    assert g.train_ids().tolist() == [0, 2, 3]
    g.set_active(None)
    assert g.train_ids().tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------------- end to end
@pytest.mark.parametrize(("manager", "traversal"), [
    ({"name": "reembed", "params": {"every": 1}}, "random_walk"),
    ({"name": "reweight", "params": {"update_every": 5}}, "random_walk"),
    ({"name": "reduction"}, "comprehensive"),
])
def test_manager_trains_on_digits(manager: dict[str, Any], traversal: str) -> None:
    cfg = RunConfig.model_validate({
        "seed": 0, "device": "cpu", "dataloader": {"name": "knn", "params": {"k": 5}},
        "model": {"name": "mlp", "params": {"width": 32}}, "traversal": traversal,
        "manager": manager, "trainer": {"name": "standard", "params": {"epochs": 2}}})
    result = train(cfg)
    assert result["epochs"] == 2 and 0.0 <= result["test"]["accuracy"] <= 1.0


class _KilledError(Exception):
    """Stands in for a kill in the middle of a run."""


class _KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        if state.step == self.step:
            raise _KilledError


@pytest.mark.parametrize(("dataloader", "traversal", "manager"), [
    ("knn", {"name": "random_walk", "params": {"restart": 0.1, "teleport_to": "degree"}},
     {"name": "reduction"}),
    ("cluster", {"name": "cluster_hop"}, {"name": "reweight", "params": {"update_every": 3}}),
])
def test_resume_mid_epoch_gives_the_same_run(dataloader: str, traversal: dict[str, Any],
                                             manager: dict[str, Any], tmp_path: Path) -> None:
    cfg = RunConfig.model_validate({
        "seed": 1, "device": "cpu", "dataloader": dataloader, "traversal": traversal,
        "manager": manager, "model": {"name": "mlp", "params": {"width": 16}},
        "trainer": {"name": "standard", "params": {"epochs": 3, "batch_size": 64,
                                                   "patience": 0, "checkpoint_every": 5}}})
    ref = train(cfg, tmp_path / "ref")
    with pytest.raises(_KilledError):  # 19 steps per epoch: killed in epoch 2, after a change
        train(cfg, tmp_path / "run", callbacks=[_KillAt(27)])
    got = resume(tmp_path / "run")
    assert without_timings(got) == without_timings(ref)
