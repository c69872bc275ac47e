"""Threshold graph builder: blockwise similarity vs one dense n x n similarity matrix.

Both arms compute the same graph (similarity >= threshold, top-``max_degree`` per row, cosine)
over the same random points; the baseline holds the full ``n x n`` matrix at once. Peak memory
(tracemalloc, which sees NumPy allocations) and wall time are measured per repeat with the arms
interleaved; the script prints min / median / max and the ratios.

With ``--approx`` the second arm is instead the approximate path (kNN candidates from the
``knn`` builder's faiss index, filtered by the threshold) and the script prints its edge recall
against the exact blockwise graph; no dense matrix is built then, so large ``n`` is fine.

Usage: ``.venv/bin/python benchmarks/threshold_graph.py [--n 6000] [--dim 32] [--repeats 3]
[--approx]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from hypergraph.dataloaders import threshold_edges, threshold_edges_knn


def dense_baseline(X: np.ndarray, threshold: float, k: int,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same edges from one dense similarity matrix (the n x n approach)."""
    Y = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    S = Y @ Y.T
    np.fill_diagonal(S, -np.inf)
    n = S.shape[0]
    idx = np.argpartition(S, n - k, axis=1)[:, n - k:]
    vals = np.take_along_axis(S, idx, axis=1)
    keep = vals >= threshold
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    return rows[keep], idx[keep], vals[keep]


def measure(fn: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]],
            ) -> tuple[float, float, int]:
    """``(seconds, peak MiB, edges)`` of one call."""
    tracemalloc.start()
    t0 = time.perf_counter()
    src, _, _ = fn()
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return dt, peak / 2**20, int(src.size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--max-degree", type=int, default=20)
    ap.add_argument("--approx", action="store_true", help="compare with the approximate path")
    args = ap.parse_args()
    if args.approx:
        approx_main(args)
        return
    X = np.random.default_rng(0).normal(size=(args.n, args.dim)).astype(np.float32)
    X[:, 0] += 2.0  # shared direction: many pairs pass the threshold
    res: dict[str, list[tuple[float, float, int]]] = {"blockwise": [], "dense": []}
    for _ in range(args.repeats):
        res["blockwise"].append(measure(lambda: threshold_edges(
            X, args.threshold, args.max_degree, "cosine", np.random.default_rng(0))))
        res["dense"].append(measure(lambda: dense_baseline(X, args.threshold, args.max_degree)))
    print(f"n={args.n} dim={args.dim} threshold={args.threshold} max_degree={args.max_degree} "
          f"repeats={args.repeats}")
    for arm, vals in res.items():
        t = [v[0] for v in vals]
        m = [v[1] for v in vals]
        print(f"{arm:9s} time s min/med/max {min(t):.3f}/{statistics.median(t):.3f}/"
              f"{max(t):.3f}  peak MiB {min(m):.1f}/{statistics.median(m):.1f}/{max(m):.1f}  "
              f"edges {vals[0][2]}")
    mem = [d[1] / b[1] for b, d in zip(res["blockwise"], res["dense"], strict=True)]
    tim = [b[0] / d[0] for b, d in zip(res["blockwise"], res["dense"], strict=True)]
    print(f"peak memory dense/blockwise min/med/max {min(mem):.2f}/{statistics.median(mem):.2f}/"
          f"{max(mem):.2f}")
    print(f"time blockwise/dense min/med/max {min(tim):.2f}/{statistics.median(tim):.2f}/"
          f"{max(tim):.2f}")
    if res["blockwise"][0][2] != res["dense"][0][2]:
        print("WARNING: the arms found different edge counts")


def approx_main(args: argparse.Namespace) -> None:
    """Blockwise exact vs approximate (kNN candidates) threshold graphs: time and recall."""
    X = np.random.default_rng(0).normal(size=(args.n, args.dim)).astype(np.float32)
    X[:, 0] += 2.0
    times: dict[str, list[float]] = {"blockwise": [], "approx": []}
    recalls = []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        ex = threshold_edges(X, args.threshold, args.max_degree, "cosine",
                             np.random.default_rng(rep))
        times["blockwise"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ap = threshold_edges_knn(X, args.threshold, args.max_degree, "cosine",
                                 np.random.default_rng(rep), mode="approx")
        times["approx"].append(time.perf_counter() - t0)
        n = args.n
        exact = np.unique(ex[0] * n + ex[1])
        found = np.unique(ap[0] * n + ap[1])
        recalls.append(float(np.isin(exact, found).mean()))
    print(f"n={args.n} dim={args.dim} threshold={args.threshold} max_degree={args.max_degree} "
          f"repeats={args.repeats} (approx)")
    for arm, t in times.items():
        print(f"{arm:9s} time s min/med/max {min(t):.3f}/{statistics.median(t):.3f}/{max(t):.3f}")
    ratio = [a / b for a, b in zip(times["approx"], times["blockwise"], strict=True)]
    print(f"time approx/blockwise min/med/max {min(ratio):.2f}/{statistics.median(ratio):.2f}/"
          f"{max(ratio):.2f}")
    print(f"edge recall of approx vs exact min/med/max {min(recalls):.4f}/"
          f"{statistics.median(recalls):.4f}/{max(recalls):.4f}")


if __name__ == "__main__":
    main()
