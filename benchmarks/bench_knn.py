"""Target 3: approximate kNN graph construction at 10^6 points, its memory, save and load.

Builds the ``knn`` graph (k=10, cosine, ``mode="approx"``: faiss IVF with ``nprobe`` tuned to
recall@10 >= 0.95 on a sample) of ``n`` points in 32 dimensions with the registered
dataloader's code path, end to end (index, search, symmetrising into CSR). The data is
clustered with a low-dimensional local structure, like learned embeddings: 1000 Gaussian
clusters in 32-d, each spread along its own 8-d subspace, plus isotropic noise. Recall@10 is
then checked against exact search (faiss brute force, inner product of unit rows) on 1000
random rows (an independent sample). Also reported: bytes per directed edge
(``HyperGraph.nbytes / num_edges``) and the time to save and load the graph
(``HyperGraph.save`` / ``load``, one ``.npz``).

Run alone: ``python benchmarks/bench_knn.py [--quick] [--n N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
from _common import Row, table

from hypergraph.dataloaders import KNNDataloader, graph_from_pairs, knn_recall, similarity_weights
from hypergraph.datasets import in_memory
from hypergraph.graph import HyperGraph


def clustered(n: int, d: int = 32, clusters: int = 1000, latent: int = 8,
              seed: int = 0) -> np.ndarray:
    """``n`` points: Gaussian clusters, each along its own ``latent``-d subspace, plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32) * 2
    basis = rng.standard_normal((clusters, latent, d)).astype(np.float32) / np.sqrt(latent)
    X = np.empty((n, d), np.float32)
    chunk = 100_000
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        lab = rng.integers(0, clusters, m)
        z = rng.standard_normal((m, latent)).astype(np.float32)
        X[lo:lo + m] = (centres[lab] + np.einsum("nk,nkd->nd", z, basis[lab])
                        + 0.1 * rng.standard_normal((m, d)).astype(np.float32))
    return X


def exact_sample(X: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine neighbours of ``rows`` (self excluded) by brute force."""
    import faiss

    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    flat = faiss.IndexFlatIP(X.shape[1])
    flat.add(np.ascontiguousarray(Xn, np.float32))
    _, ids = flat.search(np.ascontiguousarray(Xn[rows], np.float32), k + 1)
    return np.array([[j for j in r if j != i][:k] for i, r in zip(rows, ids, strict=True)])


def run(quick: bool = False, repeats: int | None = None, n: int | None = None,
        data: str = "clustered") -> list[Row]:
    """Build time, recall, bytes per edge, save/load time (one build: it is the costly one)."""
    import faiss

    n = n or (5_000 if quick else 1_000_000)
    # every core (another suite may have lowered the shared OpenMP thread count)
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                              else (os.cpu_count() or 1))
    k = 10
    X = clustered(n) if data == "clustered" else np.random.default_rng(0).standard_normal(
        (n, 32), dtype=np.float32)
    y = np.zeros(n, np.int64)
    split = np.zeros(n, np.int8)
    bundle = in_memory("clustered", X, y, split, "classification", 1)
    knn = KNNDataloader(k=k, metric="cosine", mode="approx")
    # Exactly what KNNDataloader.build does (features="raw"), timed as one, keeping the
    # builder's k-neighbour lists (before symmetrising) to measure recall on.
    t0 = time.perf_counter()
    ids, dist = knn.neighbours(X, np.random.default_rng(0))
    src = np.repeat(np.arange(n), ids.shape[1])
    graph = graph_from_pairs(bundle, src, ids.ravel(), similarity_weights(dist.ravel(),
                                                                          "cosine"))
    build_s = time.perf_counter() - t0
    del src, dist
    rows = np.random.default_rng(99).choice(n, size=min(n, 1000), replace=False)
    recall = knn_recall(ids[rows], exact_sample(X, rows, k))
    per_edge = graph.nbytes / graph.num_edges
    saves, loads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.npz"
        for _ in range(repeats or (1 if quick else 3)):
            t0 = time.perf_counter()
            graph.save(path)
            saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            HyperGraph.load(path)
            loads.append(time.perf_counter() - t0)
        size_mib = path.stat().st_size / 2**20
    threads = faiss.omp_get_max_threads()
    note = (f"{data} data, n={n:,} d=32 k={k} cosine, {threads} threads, nprobe "
            f"{knn.nprobe_}")
    return [
        Row("3 kNN build", "seconds (build to CSR)", [build_s], "< 300 (at 1e6)", False,
            300.0 if n >= 1_000_000 else None, note=note + "; one build"),
        Row("3 kNN recall@10", "vs exact, 1000 unseen rows", [recall], ">= 0.9", True, 0.9,
            note=f"builder's own sample estimate {knn.recall_:.3f}"),
        Row("3 graph memory", "bytes per directed edge", [per_edge], "<= 16", False, 16.0,
            note=f"{graph.num_edges:,} edges, nbytes {graph.nbytes / 2**20:.0f} MiB"),
        Row("3 graph save", "seconds", saves, "< 5", False, 5.0, note=f".npz {size_mib:.0f} MiB"),
        Row("3 graph load", "seconds", loads, "< 5", False, 5.0, note="includes validate()"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small size (smoke run)")
    parser.add_argument("--n", type=int, default=None, help="points (default 1e6, quick 2e4)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--data", choices=("clustered", "gaussian"), default="clustered",
                        help="clustered (default) or i.i.d. Gaussian (no structure: hardest)")
    args = parser.parse_args()
    print(table(run(args.quick, args.repeats, args.n, args.data)))
