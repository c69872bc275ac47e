"""Selection cost per batch of IValue's settings against uniform and the first IValue design.

Times ``next_batch`` + ``feedback`` (random losses, so value propagation every ``refresh``
batches is included, amortised) per batch of 64 on a random graph of mean degree 10, for
``uniform``, ``loss_topk``, IValue's first-iteration default (``ivalue_v1``: 64 walkers, warp
0.5, refresh 4, hops 2, no sweep), the current default and the current default with the exact
engine (``ivalue_exact``: full propagation, ranking and warp table every refresh). Arms are
interleaved within each repeat; ratios to ``ivalue_v1`` are computed per repeat and reported
as min / median / max. The training step itself is not included (see ``hypergraph bench`` for
wall time per step).

Run: ``python benchmarks/ivalue_step_cost.py [--nodes 2800] [--repeats 5] [--steps 400]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np

from hypergraph import registry
from hypergraph.graph import HyperGraph
from hypergraph.registry import load_builtins
from hypergraph.traversals import TraversalContext

load_builtins()  # register every module before names are resolved

ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("uniform", {}),
    "loss_topk": ("loss_topk", {}),
    "ivalue_v1": ("ivalue", {"walkers": 64, "warp": 0.5, "refresh": 4, "hops": 2,
                             "sweep": 0.0}),
    "ivalue": ("ivalue", {}),
    "ivalue_exact": ("ivalue", {"engine": "exact"}),
}


def random_graph(n: int, degree: int = 10, seed: int = 0) -> HyperGraph:
    """Random graph, ``degree / 2`` random out-edges per node, symmetrised, 4 classes."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.int64), degree // 2)
    dst = rng.integers(0, n, src.size)
    w = rng.uniform(0.1, 1.0, src.size).astype(np.float32)
    return HyperGraph.from_edges(n, src, dst, w, label=rng.integers(0, 4, n))


def ms_per_batch(name: str, params: dict[str, Any], graph: HyperGraph, steps: int) -> float:
    """Milliseconds per batch of 64 (selection + feedback), after setup."""
    t = registry.resolve("traversal", name).from_params(params)
    t.setup(graph, 64, np.random.default_rng(0), TraversalContext(epochs=50))
    rng = np.random.default_rng(1)
    feedback = bool(getattr(t, "needs_feedback", False))
    t0 = time.perf_counter()
    for _ in range(steps):
        sel = t.next_batch()
        if feedback:
            t.feedback(sel.ids, rng.random(sel.ids.size) * 2.0)
    return (time.perf_counter() - t0) / steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=2800)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    graph = random_graph(args.nodes)
    times: dict[str, list[float]] = {k: [] for k in ARMS}
    for _ in range(args.repeats):
        for key, (name, params) in ARMS.items():
            times[key].append(ms_per_batch(name, params, graph, args.steps))
    print(f"nodes {args.nodes}, batch 64, {args.steps} batches x {args.repeats} repeats")
    print("| arm | ms per batch (min / median / max) | ratio to ivalue_v1 (min / median / max) |")
    print("|---|---|---|")
    for key, vals in times.items():
        ratios = [v / b for v, b in zip(vals, times["ivalue_v1"], strict=True)]
        print(f"| {key} | {min(vals):.3f} / {statistics.median(vals):.3f} / {max(vals):.3f} | "
              f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f} |")


if __name__ == "__main__":
    main()
