"""Tiny deterministic data for the contract checks: bundles, graphs, a fake loss oracle.

Everything here is seeded and small (tens of rows), so a check runs in milliseconds. The fixture
data mimics the built-in ``digits`` dataset: 64 features in ``[0, 1]`` (an 8x8 image flattened),
so modules that accept either vector or image-shaped inputs can be exercised on it.
"""

from __future__ import annotations

import numpy as np

from hypergraph.data import ArrayStore, DataStore
from hypergraph.datasets import DatasetBundle, stratified_split
from hypergraph.graph import TRAIN, HyperGraph

__all__ = [
    "BUNDLE_TAGS",
    "GRAPH_VARIANTS",
    "SubsetStore",
    "fixture_graph",
    "fixture_score",
    "knn_graph",
    "subsample_bundle",
    "tiny_bundle",
]

#: Tags the fixture bundle provides (what a fixture "dataset" would declare).
BUNDLE_TAGS: frozenset[str] = frozenset(
    {"task:classification", "task:regression", "features:vector", "features:image",
     "size:small", "data:attributes"})

#: Names of the fixture graphs a traversal is checked on.
GRAPH_VARIANTS: tuple[str, ...] = ("standard", "isolated", "single_node", "disconnected")

FEATURES = 64


def tiny_bundle(task: str = "classification", n: int = 60, num_classes: int = 3,
                seed: int = 0) -> DatasetBundle:
    """A small clustered dataset with non-empty train / validation / test splits.

    Args:
        task: ``"classification"`` (int labels in ``[0, num_classes)``) or ``"regression"``.
        n: Rows.
        num_classes: Classes (also the number of feature clusters for regression).
        seed: Fixes everything.

    Returns:
        A bundle with an in-memory store of ``float32[n, 64]`` features in ``[0, 1]``, a
        categorical attribute ``"group"`` and stratified splits (about 60/20/20).
    """
    rng = np.random.default_rng(seed)
    cls = np.arange(n) % num_classes
    centres = rng.random((num_classes, FEATURES))
    X = np.clip(centres[cls] + 0.15 * rng.standard_normal((n, FEATURES)), 0.0, 1.0)
    split = stratified_split(cls, 0.2, 0.2, rng)
    if task == "classification":
        y: np.ndarray = cls.astype(np.int64)
        k = num_classes
    else:
        y = (X[:, :4].sum(1) + 0.1 * rng.standard_normal(n)).astype(np.float32)
        k = 0
    bundle = DatasetBundle(ArrayStore(X.astype(np.float32)), y, split, task, k, "fixture")
    bundle.attrs = {"group": (np.arange(n) % 4).astype(np.int64)}
    return bundle


def fixture_score(ids: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for ``TraversalContext.score``: a fixed pseudo-loss per node."""
    ids = np.asarray(ids, dtype=np.int64)
    return (((ids * 2654435761) % 1000) / 1000.0 + 0.01).astype(np.float32)


def knn_graph(bundle: DatasetBundle, k: int = 4) -> HyperGraph:
    """A symmetric Euclidean kNN graph over every row of ``bundle`` (point nodes, store set)."""
    X = bundle.features().reshape(len(bundle), -1).astype(np.float64)
    d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    k = min(k, len(bundle) - 1)
    nbrs = np.argsort(d, axis=1, kind="stable")[:, :k]
    src = np.repeat(np.arange(len(bundle)), k)
    w = np.exp(-d[src, nbrs.ravel()] / max(float(np.median(d[np.isfinite(d)])), 1e-12))
    g = HyperGraph.from_edges(len(bundle), src, nbrs.ravel(), np.maximum(w, 1e-6),
                              split=bundle.split, label=bundle.y)
    g.store = bundle.store
    return g


def _ring(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ids, np.roll(ids, -1)


def fixture_graph(variant: str = "standard", cluster: bool = False,
                  seed: int = 0, task: str = "classification") -> HyperGraph:
    """A tiny graph for traversal checks.

    Variants:
        ``standard``: 30 nodes, a ring plus chords, mixed splits, a few hyperedges.
        ``isolated``: like ``standard`` but five training nodes have no edges at all.
        ``single_node``: one training node and no edges.
        ``disconnected``: two rings with no edge between them plus three isolated nodes.

    Args:
        variant: One of :data:`GRAPH_VARIANTS`.
        cluster: Make every node a cluster holding three data rows (``store_row == -1`` and
            ``members`` set), for modules that require ``node:cluster``.
        seed: Fixes weights and chords.
        task: ``"classification"`` (int labels 0..2) or ``"regression"`` (float labels).
    """
    rng = np.random.default_rng(seed)
    if variant == "single_node":
        n = 1
        src = dst = np.zeros(0, np.int64)
        split = np.zeros(1, np.int8)
    elif variant in ("standard", "isolated"):
        n = 30
        s1, d1 = _ring(np.arange(n))
        chords = rng.integers(0, n, size=(12, 2))
        src = np.concatenate([s1, chords[:, 0]])
        dst = np.concatenate([d1, chords[:, 1]])
        split = np.array([TRAIN, TRAIN, TRAIN, 1, 2] * 6, np.int8)
        if variant == "isolated":
            lonely = np.array([0, 5, 10, 15, 20])  # training nodes
            keep = ~(np.isin(src, lonely) | np.isin(dst, lonely))
            src, dst = src[keep], dst[keep]
    elif variant == "disconnected":
        n = 23
        a_s, a_d = _ring(np.arange(10))
        b_s, b_d = _ring(np.arange(10, 20))
        src = np.concatenate([a_s, b_s])
        dst = np.concatenate([a_d, b_d])
        split = np.array(([TRAIN, TRAIN, 1, TRAIN, 2] * 5)[:n], np.int8)
    else:
        raise ValueError(f"Unknown fixture graph variant '{variant}'; valid: {GRAPH_VARIANTS}.")
    w = rng.uniform(0.1, 1.0, size=src.size).astype(np.float32)
    label: np.ndarray = (np.arange(n) % 3).astype(np.int64)
    if task == "regression":
        label = rng.normal(size=n).astype(np.float32)
    per = 3 if cluster else 1
    rows = n * per
    X = rng.random((rows, FEATURES)).astype(np.float32)
    hyper = [list(range(i, min(i + 4, n))) for i in range(0, n, 4)] if n > 1 else None
    g = HyperGraph.from_edges(n, src, dst, w, split=split, label=label, hyperedges=hyper)
    if cluster:
        g.store_row = np.full(n, -1, np.int64)
        g.members = (np.arange(n + 1, dtype=np.int64) * per, np.arange(rows, dtype=np.int64))
    g.store = ArrayStore(X)
    g.attrs = {"row_label": label.copy()}
    return g


class SubsetStore(DataStore):
    """A read-only view of some rows of another store (for shrinking a dataset to tiny size)."""

    def __init__(self, base: DataStore, rows: np.ndarray) -> None:
        self.base = base
        self.rows = rows

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def item_shape(self) -> tuple[int, ...]:
        return self.base.item_shape

    def get(self, rows: np.ndarray) -> np.ndarray:
        return self.base.get(self.rows[np.asarray(rows, dtype=np.int64)])

    def as_array(self) -> np.ndarray | None:
        return None


def subsample_bundle(bundle: DatasetBundle, max_rows: int, rng: np.random.Generator,
                     ) -> DatasetBundle:
    """At most ``max_rows`` rows of ``bundle`` keeping every split non-empty (and its shares).

    In-memory stores are copied into a smaller array; other stores are wrapped in a
    :class:`SubsetStore` so that nothing is read until asked for.
    """
    n = len(bundle)
    if n <= max_rows:
        return bundle
    keep: list[np.ndarray] = []
    for code in (0, 1, 2):
        idx = np.flatnonzero(bundle.split == code)
        take = max(1, round(max_rows * idx.size / n)) if idx.size else 0
        keep.append(rng.choice(idx, size=min(take, idx.size), replace=False))
    rows = np.sort(np.concatenate(keep))
    arr = bundle.store.as_array()
    store: DataStore = ArrayStore(arr[rows]) if arr is not None else SubsetStore(bundle.store,
                                                                                 rows)
    return DatasetBundle(store, bundle.y[rows], bundle.split[rows], bundle.task,
                         bundle.num_classes, bundle.name,
                         {k: v[rows] for k, v in bundle.attrs.items()})
