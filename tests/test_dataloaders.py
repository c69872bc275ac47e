"""Graph builders: threshold, cluster (hypernodes) and attribute hyperedges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

import hypergraph.dataloaders._threshold as threshold_mod
from hypergraph import registry
from hypergraph.config import RunConfig
from hypergraph.dataloaders import (
    AttributeDataloader,
    ClusterDataloader,
    ThresholdDataloader,
    attribute_incidence,
    builder_vectors,
    random_projection,
    threshold_edges,
    threshold_edges_knn,
)
from hypergraph.datasets import Dataset, DatasetBundle, in_memory
from hypergraph.exceptions import DataError
from hypergraph.graph import TRAIN, ClusterNode, HyperGraph
from hypergraph.run import train


def _bundle(n: int = 240, d: int = 6, seed: int = 0, attrs: bool = True) -> DatasetBundle:
    gen = np.random.default_rng(seed)
    centres = gen.normal(0, 3, size=(4, d))
    y = gen.integers(0, 4, size=n)
    X = centres[y] + gen.normal(0, 1, size=(n, d))
    split = gen.choice(3, size=n, p=[0.6, 0.2, 0.2]).astype(np.int8)
    b = in_memory("blobs", X, y.astype(np.int64), split, "classification", 4)
    if attrs:
        b.attrs = {"group": (np.arange(n) % 7).astype(np.int64),
                   "kind": np.array(["a", "b", "c"])[np.arange(n) % 3]}
    return b


def _scrambled(b: DatasetBundle, seed: int = 1) -> DatasetBundle:
    """The same bundle with every validation/test label replaced by a random one."""
    y = b.y.copy()
    held = b.split != TRAIN
    y[held] = np.random.default_rng(seed).integers(0, b.num_classes, size=int(held.sum()))
    return DatasetBundle(b.store, y, b.split, b.task, b.num_classes, b.name, dict(b.attrs))


BUILDERS: list[tuple[str, dict[str, Any]]] = [
    ("threshold", {"threshold": 0.3}),
    ("threshold", {"threshold": 0.3, "metric": "euclidean", "symmetrize": "mutual"}),
    ("cluster", {"cluster_size": 8}),
    ("cluster", {"cluster_size": 8, "eval_nodes": "cluster", "metric": "euclidean"}),
    ("attribute", {}),
    ("attribute", {"pairwise": "comembers", "k": 3}),
]


def _build(name: str, params: dict[str, Any], features: str, b: DatasetBundle,
           seed: int = 0) -> HyperGraph:
    cls = registry.resolve("dataloader", name)
    return cls(**params, features=features, embed_dim=4).build(b, np.random.default_rng(seed))


def _members_by_node(g: HyperGraph) -> list[np.ndarray]:
    return [g.node(i).rows for i in range(g.num_nodes)]


@pytest.mark.parametrize("features", ["raw", "random_projection"])
@pytest.mark.parametrize(("name", "params"), BUILDERS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(BUILDERS)])
def test_builder_valid_symmetric_preserves_splits(name: str, params: dict[str, Any],
                                                  features: str) -> None:
    b = _bundle()
    g = _build(name, params, features, b)
    g.validate()
    cls = registry.resolve("dataloader", name)
    if "graph:symmetric" in cls.tags:
        assert g.is_symmetric()
    assert g.num_edges > 0
    if "node:cluster" in cls.tags:
        rows = np.concatenate(_members_by_node(g))
        assert np.array_equal(np.sort(rows), np.arange(len(b)))  # every row exactly once
        for i, r in enumerate(_members_by_node(g)):
            assert np.all(b.split[r] == g.split[i]), f"node {i} mixes splits"
        assert np.all(g.store_row[g.split == TRAIN] == -1)
        if params.get("eval_nodes", "point") == "point":
            held = g.split != TRAIN
            assert np.array_equal(np.sort(g.store_row[held]), np.flatnonzero(b.split != TRAIN))
    else:
        assert g.num_nodes == len(b)
        assert np.array_equal(g.split, b.split)
        assert np.array_equal(g.label, b.y)
        assert np.array_equal(g.store_row, np.arange(len(b)))
    assert g.store is b.store


@pytest.mark.parametrize(("name", "params"), BUILDERS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(BUILDERS)])
@pytest.mark.parametrize("features", ["raw", "random_projection"])
def test_no_label_leak(name: str, params: dict[str, Any], features: str) -> None:
    b = _bundle()
    g1 = _build(name, params, features, b)
    g2 = _build(name, params, features, _scrambled(b))
    for attr in ("indptr", "indices", "weights", "split", "store_row"):
        assert np.array_equal(getattr(g1, attr), getattr(g2, attr)), attr
    train = g1.split == TRAIN
    assert np.array_equal(g1.label[train], g2.label[train])
    if g1.incidence is not None:
        assert g2.incidence is not None
        assert (g1.incidence != g2.incidence).nnz == 0
    if g1.members is not None:
        assert g2.members is not None
        assert all(np.array_equal(a, c) for a, c in zip(g1.members, g2.members, strict=True))


def test_builders_are_deterministic_under_seed() -> None:
    b = _bundle()
    for name, params in BUILDERS:
        g1 = _build(name, params, "random_projection", b, seed=5)
        g2 = _build(name, params, "random_projection", b, seed=5)
        assert np.array_equal(g1.indices, g2.indices) and np.array_equal(g1.weights, g2.weights)


# ---------------------------------------------------------------------------- threshold
def _edge_set(src: np.ndarray, dst: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(c)) for a, c in zip(src, dst, strict=True)}


def test_threshold_cosine_by_hand(rng: np.random.Generator) -> None:
    X = np.array([[1, 0], [1, 0.1], [0, 1], [-1, 0]], np.float32)
    # cos(0,1)=0.995, cos(1,2)=0.0995, cos(0,2)=cos(2,3)=0, cos(0,3)=-1, cos(1,3)=-0.995
    src, dst, w = threshold_edges(X, 0.5, 5, "cosine", rng)
    assert _edge_set(src, dst) == {(0, 1), (1, 0)}
    assert np.allclose(w, 1 / np.sqrt(1.01), atol=1e-6)
    src, dst, _ = threshold_edges(X, 0.05, 5, "cosine", rng)
    assert _edge_set(src, dst) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    # degree cap 1: 0->1, 1->0 (0.995 beats 0.0995), 2->1, 3: none
    src, dst, _ = threshold_edges(X, 0.05, 1, "cosine", rng)
    assert _edge_set(src, dst) == {(0, 1), (1, 0), (2, 1)}
    src, dst, _ = threshold_edges(X, 0.05, 1, "cosine", rng, symmetrize="mutual")
    assert _edge_set(src, dst) == {(0, 1), (1, 0)}


def test_threshold_euclidean_by_hand(rng: np.random.Generator) -> None:
    X = np.array([[0.0], [1.0], [3.0]], np.float32)
    # squared distances 1, 9, 4 -> median 4; similarities exp(-1/4), exp(-9/4), exp(-1)
    src, dst, w = threshold_edges(X, 0.3, 5, "euclidean", rng)
    got = {(int(a), int(c)): float(x) for a, c, x in zip(src, dst, w, strict=True)}
    assert set(got) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert got[(0, 1)] == pytest.approx(np.exp(-0.25), rel=1e-5)
    assert got[(1, 2)] == pytest.approx(np.exp(-1.0), rel=1e-5)


def test_threshold_graph_of_a_tiny_bundle_by_hand() -> None:
    X = np.array([[1, 0], [1, 0.1], [0, 1], [-1, 0]], np.float32)
    b = in_memory("tiny", X, np.zeros(4, np.int64), np.array([0, 0, 1, 2], np.int8),
                  "classification", 1)
    g = ThresholdDataloader(threshold=0.05).build(b, np.random.default_rng(0))
    assert g.indptr.tolist() == [0, 1, 3, 4, 4]
    assert g.indices.tolist() == [1, 0, 2, 1]
    assert g.is_symmetric()


def test_threshold_blocks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.random.default_rng(3).normal(size=(97, 5)).astype(np.float32)
    for metric in ("cosine", "euclidean"):
        full = threshold_edges(X, 0.2, 6, metric, np.random.default_rng(0))
        with monkeypatch.context() as m:
            m.setattr(threshold_mod, "_BLOCK_ENTRIES", 97 * 7)  # blocks of 7 rows
            blocked = threshold_edges(X, 0.2, 6, metric, np.random.default_rng(0))
        assert _edge_set(full[0], full[1]) == _edge_set(blocked[0], blocked[1])
        assert np.allclose(np.sort(full[2]), np.sort(blocked[2]))


def test_threshold_degree_cap() -> None:
    b = _bundle(attrs=False)
    g = ThresholdDataloader(threshold=0.0, max_degree=3, symmetrize="mutual").build(
        b, np.random.default_rng(0))
    assert g.degree().max() <= 3
    g = ThresholdDataloader(threshold=0.99999, max_degree=3).build(b, np.random.default_rng(0))
    assert g.num_edges == 0  # nothing passes: isolated nodes, still a valid graph
    g.validate()


# ---------------------------------------------------------------------------- cluster
def test_cluster_nodes_never_mix_splits_and_sample_members() -> None:
    b = _bundle()
    g = ClusterDataloader(cluster_size=10).build(b, np.random.default_rng(0))
    cluster_ids = np.flatnonzero(g.store_row < 0)
    assert 1 < cluster_ids.size <= int(np.ceil(np.sum(b.split == TRAIN) / 10))
    node = g.node(int(cluster_ids[0]))
    assert isinstance(node, ClusterNode) and node.size == node.rows.size > 0
    assert not isinstance(g.node(int(np.flatnonzero(g.store_row >= 0)[0])), ClusterNode)
    ids = np.repeat(cluster_ids, 50)
    rows = g.node_rows(ids, np.random.default_rng(0))
    ptr, members = g.members  # type: ignore[misc]
    for cid in cluster_ids[:10]:
        got = set(rows[ids == cid].tolist())
        allowed = set(members[ptr[cid]:ptr[cid + 1]].tolist())
        assert got <= allowed
        assert len(allowed) == 1 or len(got) > 1  # 50 draws reach several members
    assert np.all(b.split[rows] == TRAIN)
    point_ids = np.flatnonzero(g.store_row >= 0)
    assert np.array_equal(g.node_rows(point_ids), g.store_row[point_ids])


def test_cluster_edges_join_only_training_clusters() -> None:
    g = ClusterDataloader(cluster_size=8, k=4).build(_bundle(), np.random.default_rng(0))
    src, dst, _ = g.edge_list()
    # every edge has a training cluster at one end at least; eval points never link each other
    assert np.all((g.split[src] == TRAIN) | (g.split[dst] == TRAIN))
    sub = g.split_subgraph("train")
    assert sub.num_edges > 0


def test_cluster_graph_round_trips_through_save(tmp_path: Any) -> None:
    g = ClusterDataloader(cluster_size=8).build(_bundle(), np.random.default_rng(0))
    g.save(tmp_path / "g.npz")
    h = HyperGraph.load(tmp_path / "g.npz")
    assert h.members is not None and np.array_equal(h.members[1], g.members[1])  # type: ignore[index]


# ---------------------------------------------------------------------------- attribute
def test_attribute_incidence_by_hand() -> None:
    attrs = {"city": np.array([0, 0, 1, 1, 1, -1]),
             "kind": np.array(["a", "b", "a", "a", "", "b"])}
    inc, names = attribute_incidence(attrs, ["city", "kind"], 6)
    groups = {name: sorted(inc[i].indices.tolist()) for i, name in enumerate(names)}
    assert groups == {("city", 0): [0, 1], ("city", 1): [2, 3, 4], ("kind", "a"): [0, 2, 3],
                      ("kind", "b"): [1, 5]}
    inc, names = attribute_incidence(attrs, ["city", "kind"], 6, min_size=3)
    assert names == [("city", 1), ("kind", "a")]


def test_attribute_graph_hyperedges_and_pairwise() -> None:
    b = _bundle(n=60)
    g = AttributeDataloader(pairwise="none").build(b, np.random.default_rng(0))
    assert g.num_edges == 0 and g.num_hyperedges == 7 + 3
    he = g.hyperedge(0)
    assert np.all(b.attrs["group"][he.members] == b.attrs["group"][he.members[0]])
    g = AttributeDataloader(pairwise="comembers", k=2, columns=("kind",)).build(
        b, np.random.default_rng(0))
    src, dst, _ = g.edge_list()
    assert g.num_hyperedges == 3 and np.all(b.attrs["kind"][src] == b.attrs["kind"][dst])
    g = AttributeDataloader(columns="group").build(b, np.random.default_rng(0))
    assert g.num_hyperedges == 7 and g.num_edges > 0 and g.version == 0


def test_attribute_errors_name_the_problem() -> None:
    with pytest.raises(DataError, match="no categorical attributes"):
        AttributeDataloader().build(_bundle(attrs=False), np.random.default_rng(0))
    with pytest.raises(DataError, match="'columns' parameter names \\['colour'\\]"):
        AttributeDataloader(columns=("colour",)).build(_bundle(), np.random.default_rng(0))


# ---------------------------------------------------------------------------- embeddings
def test_random_projection_fixed_by_seed() -> None:
    X = np.random.default_rng(0).normal(size=(20, 10)).astype(np.float32)
    a = random_projection(X, 4, np.random.default_rng(7))
    c = random_projection(X, 4, np.random.default_rng(7))
    assert a.shape == (20, 4) and np.array_equal(a, c)
    b = _bundle(attrs=False)
    assert builder_vectors(b, "raw", 4, np.random.default_rng(0)).shape == (len(b), 6)
    assert builder_vectors(b, "random_projection", 3, np.random.default_rng(0)).shape == (
        len(b), 3)


# ---------------------------------------------------------------------------- end to end
def _one_epoch(**choices: Any) -> dict[str, Any]:
    cfg = RunConfig.model_validate({"seed": 0, "device": "cpu",
                                    "model": {"name": "mlp", "params": {"width": 32}},
                                    "trainer": {"name": "standard",
                                                "params": {"epochs": 1, "batch_size": 64}},
                                    **choices})
    return train(cfg)


@pytest.mark.parametrize(("dataloader", "traversal"), [
    ({"name": "threshold", "params": {"features": "random_projection"}}, "random_walk"),
    ({"name": "threshold"}, "comprehensive"),
    ({"name": "cluster"}, "cluster_hop"),
    ({"name": "cluster", "params": {"eval_nodes": "cluster"}}, "comprehensive"),
])
def test_trains_one_epoch_on_digits(dataloader: dict[str, Any], traversal: str) -> None:
    result = _one_epoch(dataloader=dataloader, traversal=traversal)
    assert result["epochs"] == 1 and result["steps"] >= 1
    assert 0.0 <= result["test"]["accuracy"] <= 1.0


@pytest.fixture
def digits_with_attributes() -> Iterator[str]:
    """A digits dataset that provides categorical attributes (registered for one test)."""
    base = registry.resolve("dataset", "digits")

    class DigitsWithAttributes(Dataset):
        tags: ClassVar[frozenset[str]] = base.tags | {"data:attributes"}

        def __init__(self) -> None:
            pass

        def load(self, rng: np.random.Generator) -> DatasetBundle:
            b = base().load(rng)  # type: ignore[attr-defined]
            X = b.features()
            b.attrs = {"ink": np.digitize(X.mean(axis=1), [0.2, 0.3, 0.4]).astype(np.int64)}
            return b

    registry.register("dataset", "test_digits_attrs")(DigitsWithAttributes)
    try:
        yield "test_digits_attrs"
    finally:
        registry.unregister("dataset", "test_digits_attrs")


def test_attribute_trains_one_epoch(digits_with_attributes: str) -> None:
    result = _one_epoch(dataset=digits_with_attributes, dataloader="attribute",
                        traversal="random_walk")
    assert result["epochs"] == 1


def test_threshold_through_knn_search_matches_blockwise() -> None:
    X = np.random.default_rng(0).normal(size=(1500, 8)).astype(np.float32)
    X[:, 0] += 1.5
    for metric in ("cosine", "euclidean"):
        a = threshold_edges(X, 0.4, 8, metric, np.random.default_rng(0))
        b = threshold_edges_knn(X, 0.4, 8, metric, np.random.default_rng(0), mode="exact")
        assert _edge_set(a[0], a[1]) == _edge_set(b[0], b[1])
        c = threshold_edges_knn(X, 0.4, 8, metric, np.random.default_rng(0), mode="approx")
        found = _edge_set(c[0], c[1])
        exact = _edge_set(a[0], a[1])
        assert len(found & exact) / len(exact) >= 0.9
        assert found <= _edge_set(*threshold_edges(X, 0.4, 1499, metric,
                                                   np.random.default_rng(0))[:2])
    g = ThresholdDataloader(mode="approx", threshold=0.4).build(
        in_memory("x", X, np.zeros(1500, np.int64), np.zeros(1500, np.int8), "classification",
                  1), np.random.default_rng(0))
    g.validate()
    assert g.is_symmetric() and g.num_edges > 0
