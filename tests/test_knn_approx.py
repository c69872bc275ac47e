"""Approximate kNN (faiss IVF): recall against exact search, auto mode, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from hypergraph.dataloaders import KNNDataloader, knn_recall
from hypergraph.datasets import in_memory
from hypergraph.exceptions import InvalidParameterError


def _mixture(n: int, d: int = 32, clusters: int = 100, latent: int = 8,
             seed: int = 0) -> np.ndarray:
    """Clustered points with low-dimensional local structure (like real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32) * 3
    lab = rng.integers(0, clusters, n)
    basis = rng.standard_normal((clusters, latent, d)).astype(np.float32) / np.sqrt(latent)
    z = rng.standard_normal((n, latent)).astype(np.float32)
    noise = 0.05 * rng.standard_normal((n, d)).astype(np.float32)
    return centres[lab] + np.einsum("nk,nkd->nd", z, basis[lab]) + noise


def _exact_sample(X: np.ndarray, rows: np.ndarray, k: int, metric: str) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(X)
    ids = nn.kneighbors(X[rows], return_distance=False)
    return np.array([[j for j in r if j != i][:k] for i, r in zip(rows, ids, strict=True)])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_approx_recall_at_10_on_50000_points(metric: str) -> None:
    X = _mixture(50_000)
    knn = KNNDataloader(k=10, metric=metric, mode="approx")
    ids, dist = knn.neighbours(X, np.random.default_rng(0))
    assert ids.shape == (50_000, 10) and dist.shape == (50_000, 10)
    assert ids.min() >= 0 and np.all(ids != np.arange(50_000)[:, None])
    rows = np.random.default_rng(123).choice(50_000, 300, replace=False)  # independent sample
    recall = knn_recall(ids[rows], _exact_sample(X, rows, 10, metric))
    assert recall >= 0.95
    assert knn.recall_ is not None and knn.recall_ >= 0.95
    assert knn.nprobe_ is not None and knn.nprobe_ >= 1


def test_approx_distances_are_true_distances() -> None:
    X = _mixture(3000, d=16)
    for metric in ("cosine", "euclidean"):
        ids, dist = KNNDataloader(k=5, metric=metric, mode="approx").neighbours(X)
        a, b = X[:, None, :], X[ids]
        if metric == "euclidean":
            true = np.linalg.norm(a - b, axis=2)
        else:
            na = np.linalg.norm(X, axis=1)
            true = 1 - (a * b).sum(2) / (na[:, None] * na[ids])
        np.testing.assert_allclose(dist, true, atol=2e-3)
        assert np.all(np.diff(dist, axis=1) >= -1e-5)  # nearest first


def test_auto_mode_switches_at_the_threshold() -> None:
    X = _mixture(600, d=8)
    knn = KNNDataloader(k=5, approx_threshold=1000)
    knn.neighbours(X)
    assert knn.recall_ is None  # exact
    knn = KNNDataloader(k=5, approx_threshold=500)
    knn.neighbours(X)
    assert knn.recall_ is not None and knn.recall_ >= 0.95
    assert not KNNDataloader(mode="exact").use_approx(10**9)
    assert KNNDataloader(mode="approx").use_approx(10)


def test_exact_mode_matches_brute_force() -> None:
    X = _mixture(800, d=8)
    for metric in ("cosine", "euclidean"):
        ids, _ = KNNDataloader(k=6, metric=metric, mode="exact").neighbours(X)
        rows = np.arange(0, 800, 7)
        assert knn_recall(ids[rows], _exact_sample(X, rows, 6, metric)) >= 0.99


def test_approx_build_is_deterministic_and_a_valid_graph() -> None:
    X = _mixture(4000, d=16)
    y = np.arange(4000) % 3
    split = (np.arange(4000) % 10 == 0).astype(np.int8)
    bundle = in_memory("mix", X, y, split, "classification", 3)
    g1 = KNNDataloader(k=8, mode="approx").build(bundle, np.random.default_rng(5))
    g2 = KNNDataloader(k=8, mode="approx").build(bundle, np.random.default_rng(5))
    for name in ("indptr", "indices", "weights"):
        np.testing.assert_array_equal(getattr(g1, name), getattr(g2, name))
    assert g1.is_symmetric()
    src, dst, _ = g1.edge_list()
    assert np.all(src != dst)
    assert g1.degree().min() >= 8
    assert g1.nbytes / g1.num_edges <= 16


def test_tiny_inputs_and_bad_mode() -> None:
    X = _mixture(12, d=4)
    ids, _ = KNNDataloader(k=3, mode="approx").neighbours(X)
    assert ids.shape == (12, 3) and ids.min() >= 0
    ids, _ = KNNDataloader(k=3, mode="approx").neighbours(X[:1])
    assert ids.shape == (1, 0)
    with pytest.raises(InvalidParameterError, match="mode"):
        KNNDataloader(mode="fast")


def test_recall_helper() -> None:
    exact = np.array([[1, 2], [3, 4]])
    assert knn_recall(np.array([[2, 1], [3, -1]]), exact) == 0.75
    assert knn_recall(np.zeros((0, 2), int), np.zeros((0, 2), int)) == 1.0
