"""Whether IValue of the working tree selects exactly as IValue of another revision.

For several settings (both engines, walks, every kind of signal) on random graphs of 300 and
20,000 nodes (the stream engine's rank sketch samples above 4,096), runs 150 batches with
feedback and a checkpoint round trip at batch 70, and compares a SHA-256 over the selections,
``values()``, ``moments_``, ``gain_correlation()`` and ``model_agreement()``: the working tree
against itself, and a checkpoint written by the revision loaded into the working tree, each
against the revision alone. Loads the revision as ``ivalue_ab.class_at`` does.

Run: ``python benchmarks/ivalue_same.py [--against main]`` (exit code 1 when any differ).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import bench_traversal as btr
import numpy as np
from ivalue_ab import class_at

from hypergraph import registry
from hypergraph.graph import HyperGraph
from hypergraph.traversals import Traversal

SETTINGS: list[dict[str, Any]] = [
    {}, {"engine": "exact"}, {"warp": 0.3, "contra": 2.0, "refresh": 5},
    {"signal": "gain", "transform": "z", "return_delay": 0.3},
    {"signal": "reducible", "hops": 2, "self_weight": 0.5, "engine": "exact"},
    {"signal": "uncertainty", "peak": 0.7, "pressure": 1e6, "explore": 0.0},
    {"signal": "variance", "warp": 0.5}, {"signal": "gated", "trust": 1.0}]


def digest(first: type[Traversal], second: type[Traversal], graph: HyperGraph,
           params: dict[str, Any], steps: int = 150, resume: int = 70) -> str:
    """SHA-256 of a run of ``first``, resumed from its checkpoint into ``second``."""
    t: Any = first(**params)
    t.setup(graph, 64, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    h = hashlib.sha256()
    for i in range(steps):
        if i == resume:
            state = t.state_dict()
            t = second(**params)
            t.setup(graph, 64, np.random.default_rng(9))
            t.load_state_dict(state)
        sel = t.next_batch()
        h.update(sel.ids.tobytes())
        t.feedback(sel.ids, rng.random(sel.ids.size) * 3)
    values = t.values()
    for key in ("value", "uncertainty", "visits"):
        h.update(np.asarray(values[key]).tobytes())
    h.update(np.asarray(t.moments_).tobytes())
    h.update(np.float64(t.gain_correlation()).tobytes())
    h.update(np.asarray(t.model_agreement()).tobytes())
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="main")
    args = parser.parse_args()
    old = class_at(args.against)
    new = registry.resolve("traversal", "ivalue")
    differ = 0
    for n in (300, 20_000):
        graph = btr.random_graph(n)
        for params in SETTINGS:
            ref = digest(old, old, graph, params)
            same = digest(new, new, graph, params) == ref
            resumed = digest(old, new, graph, params) == ref
            differ += not (same and resumed)
            print(f"n={n} {params}: same run {same}, checkpoint of {args.against} loaded now "
                  f"{resumed}", flush=True)
    print("all the same" if not differ else f"{differ} settings differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
