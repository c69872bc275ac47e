"""Target 2: the cost of a traversal step does not grow with the graph.

Time per step (one batch of 64 from 64 walkers) of ``random_walk`` and ``ivalue`` on random
graphs of 10^4, 10^5 and 10^6 nodes with mean degree 10 (built with ``HyperGraph.from_edges``
from 5 random out-edges per node, symmetrised, random weights in [0.1, 1]). For traversals that
learn from losses (IValue) every step includes ``feedback`` with random losses, so value
propagation (every ``refresh`` steps) is included, amortised. ``ivalue`` is the default
(``engine: stream``); ``ivalue_exact`` the first engine (``engine: exact``), measured in the same
run as its baseline. Sizes are interleaved within each repeat; the ratio largest / smallest is
computed per repeat.

Run alone: ``python benchmarks/bench_traversal.py [--quick]``.
"""

from __future__ import annotations

import time

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
from _common import Row, cli

from hypergraph import registry
from hypergraph.exceptions import UnknownNameError
from hypergraph.graph import HyperGraph
from hypergraph.registry import load_builtins
from hypergraph.traversals import Traversal

load_builtins()  # register every module before names are resolved

WALKERS = 64


def random_graph(n: int, degree: int = 10, seed: int = 0) -> HyperGraph:
    """A random graph with mean degree ``degree`` (``degree / 2`` random out-edges, symmetrised)."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n, dtype=np.int64), degree // 2)
    dst = rng.integers(0, n, src.size)
    w = rng.uniform(0.1, 1.0, src.size).astype(np.float32)
    label = rng.integers(0, 10, n)
    return HyperGraph.from_edges(n, src, dst, w, label=label)


# label -> (registered name, parameters besides walkers); ivalue_exact is IValue's first
# engine (full propagation, ranking and warp table every refresh), the baseline of the default
ARMS: dict[str, tuple[str, dict[str, object]]] = {
    "random_walk": ("random_walk", {}),
    "ivalue": ("ivalue", {}),
    "ivalue_exact": ("ivalue", {"engine": "exact"}),
}


def make_traversal(name: str) -> Traversal | None:
    label, params = ARMS.get(name, (name, {}))
    try:
        cls = registry.resolve("traversal", label)
    except UnknownNameError:
        return None
    return cls(walkers=WALKERS, **params)  # type: ignore[call-arg]


def time_steps(trav: Traversal, steps: int, rng: np.random.Generator,
               budget_s: float = 3.0, min_steps: int = 64) -> float:
    """Microseconds per ``next_batch`` (+ ``feedback`` when the traversal learns).

    Runs ``steps`` steps, or fewer (at least ``min_steps``, a multiple of 16 so that periodic
    work such as IValue's propagation is fully amortised) once ``budget_s`` has passed.
    """
    losses = rng.random(WALKERS).astype(np.float32) + 0.1
    fb = trav.needs_feedback
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        for _ in range(16):
            sel = trav.next_batch()
            if fb:
                trav.feedback(sel.ids, losses[: sel.ids.size])
        done += 16
        if done >= min_steps and time.perf_counter() - t0 > budget_s:
            break
    return (time.perf_counter() - t0) / done * 1e6


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    """Per-step cost at each size and the largest / smallest ratio."""
    sizes = (1_000, 10_000) if quick else (10_000, 100_000, 1_000_000)
    reps = repeats or (2 if quick else 5)
    steps = 100 if quick else 2000
    graphs = {n: random_graph(n) for n in sizes}
    rows: list[Row] = []
    for name in ARMS:
        proto = make_traversal(name)
        if proto is None:
            rows.append(Row(f"2 {name}", "step time ratio", [], "<= 1.3", False, 1.3,
                            note=f"traversal '{name}' not registered"))
            continue
        travs: dict[int, Traversal] = {}
        setup_s: dict[int, float] = {}
        for n, g in graphs.items():
            t = proto.clone()
            t0 = time.perf_counter()
            t.setup(g, WALKERS, np.random.default_rng(1))  # type: ignore[attr-defined]
            setup_s[n] = time.perf_counter() - t0
            time_steps(t, 32, np.random.default_rng(2), budget_s=0.0, min_steps=32)  # warm-up
            travs[n] = t
        per: dict[int, list[float]] = {n: [] for n in sizes}
        rng = np.random.default_rng(3)
        for _ in range(reps):
            for n in sizes:
                per[n].append(time_steps(travs[n], steps, rng))
        for n in sizes:
            rows.append(Row(f"2 {name} n={n:.0e}", "us per step (64 walkers)", per[n],
                            note=f"setup {setup_s[n]:.2f} s, mean degree 10"))
        big, small = sizes[-1], sizes[0]
        ratio = [a / b for a, b in zip(per[big], per[small], strict=True)]
        rows.append(Row(f"2 {name} n={big:.0e} / n={small:.0e}", "step time ratio", ratio,
                        "<= 1.3", False, 1.3, note="per repeat, sizes interleaved"))
    return rows


if __name__ == "__main__":
    cli(run, __doc__)
