"""Profiles behind the missed performance targets (cProfile; prints the top functions).

* ``trainer``: one epoch of HyperGraph's trainer (``random_walk`` or another traversal,
  logreg model so that the framework's share is visible) on 40,000 rows: where the time
  of a training step goes.
* ``interleave``: the cost of one ``random_walk`` batch alone, and when every batch is followed
  by a training step (CPU caches and branch predictors then hold the model's code, not NumPy's).
* ``walk_ahead``: ``random_walk`` batches per burst of walk steps (``WALK_AHEAD``) against the
  cost of a batch inside a loop of training steps; and, for bursts of 16, the time of each walk
  step of a burst and of each training step after it (where the cold-cache penalty falls).
* ``ivalue``: IValue's ``next_batch`` + ``feedback`` on a 10^5-node graph (value propagation
  included): which parts grow with the graph.
* ``ivalue_loop``: IValue's parts per batch (microseconds of thread CPU time) on the 40,000-row
  graph of ``bench_train``, alone and with an MLP 256x2 training step after every batch (as in
  the trainer): what the per-batch overhead against the hand loop is made of.
* ``ivalue_after``: IValue's ``next_batch`` + ``feedback`` (thread CPU per batch, same graph,
  random losses) when each batch follows nothing, a write over 4 MB of memory, 20 matrix
  products of 64x256 by 256x256 in torch, or an MLP 256x2 training step, arms interleaved:
  whether the cost added by the training step comes from evicted data or from running after
  torch's kernels.

Run: ``python benchmarks/profile_hot_paths.py
[trainer|interleave|walk_ahead|ivalue|ivalue_loop|ivalue_after] [--top N]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
import torch

from hypergraph import registry
from hypergraph.registry import load_builtins

load_builtins()  # register every module before names are resolved


def _stats(prof: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _step_setup(model_name: str) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    """``(graph, model, x, y)``: the kNN graph of ``bench_train``'s 40,000 rows, a set-up
    model, and one fixed batch to train on between traversal calls (1 torch thread)."""
    import bench_train as bt

    from hypergraph.dataloaders import KNNDataloader

    torch.set_num_threads(1)
    bundle = bt.make_data(40_000, 32, 10)
    graph = KNNDataloader(k=10).build(bundle, np.random.default_rng(0))
    model = bt.new_model((32,), 10, model_name)
    return graph, model, torch.randn(bt.BATCH, 32), torch.randint(0, 10, (bt.BATCH,))


def trainer(top: int, traversal: str = "random_walk") -> None:
    import bench_train as bt

    from hypergraph.dataloaders import KNNDataloader

    torch.set_num_threads(1)
    bundle = bt.make_data(40_000, 32, 10)
    graph = KNNDataloader(k=10).build(bundle, np.random.default_rng(0))
    params = {"walkers": bt.BATCH} if traversal == "random_walk" else {}
    trav = registry.resolve("traversal", traversal)(**params)
    bt.hypergraph_loop(bundle, graph, trav.clone(), 1, "logreg")  # warm-up
    prof = cProfile.Profile()
    prof.enable()
    bt.hypergraph_loop(bundle, graph, trav.clone(), 1, "logreg")
    prof.disable()
    print(f"# trainer, traversal {traversal}, logreg, 40,000 rows, 1 epoch\n")
    print(_stats(prof, top))


def interleave(top: int) -> None:
    import bench_train as bt

    from hypergraph.dataloaders import KNNDataloader
    from hypergraph.trainers import BatchGatherer

    del top
    torch.set_num_threads(1)
    bundle = bt.make_data(40_000, 32, 10)
    graph = KNNDataloader(k=10).build(bundle, np.random.default_rng(0))
    trav = registry.resolve("traversal", "random_walk")(walkers=bt.BATCH)
    trav.setup(graph, bt.BATCH, np.random.default_rng(1))
    model = bt.new_model((32,), 10, "logreg")
    gather = BatchGatherer(graph, bundle, torch.device("cpu"), np.random.default_rng(0))
    x, y = torch.randn(bt.BATCH, 32), torch.randint(0, 10, (bt.BATCH,))
    print("# random_walk next_batch (64 walkers), microseconds per call\n")
    for mode in ("alone", "+ gather", "+ train step", "+ gather + train step"):
        spent, steps = 0.0, 2000
        for _ in range(steps):
            t0 = time.perf_counter()
            sel = trav.next_batch()
            spent += time.perf_counter() - t0
            if "gather" in mode:
                gather(sel.ids)
            if "train" in mode:
                model.train_step(x, y)
        print(f"- next_batch {mode}: {spent / steps * 1e6:.1f} us")


def walk_ahead(top: int) -> None:
    import bench_train as bt

    import hypergraph.traversals._random_walk as rw

    del top
    graph, model, x, y = _step_setup("logreg")
    default = rw.WALK_AHEAD
    print("# random_walk (64 walkers, batch 64), logreg train step after every batch\n")
    try:
        for ahead in (1, 4, 8, 16, 32, 64):
            rw.WALK_AHEAD = ahead
            trav = rw.RandomWalkTraversal(walkers=bt.BATCH)
            trav.setup(graph, bt.BATCH, np.random.default_rng(1))
            spent, steps = 0.0, 2048
            for _ in range(steps):
                t0 = time.perf_counter()
                trav.next_batch()
                spent += time.perf_counter() - t0
                model.train_step(x, y)
            print(f"- WALK_AHEAD {ahead:2d}: next_batch {spent / steps * 1e6:.1f} us per batch")
    finally:
        rw.WALK_AHEAD = default
    trav = rw.RandomWalkTraversal(walkers=bt.BATCH)
    trav.setup(graph, bt.BATCH, np.random.default_rng(1))
    walk = np.zeros(16)
    train = np.zeros(16)
    rounds = 100
    for _ in range(rounds):
        for k in range(16):
            t0 = time.perf_counter()
            trav.walk()
            walk[k] += time.perf_counter() - t0
        for k in range(16):
            t0 = time.perf_counter()
            model.train_step(x, y)
            train[k] += time.perf_counter() - t0
    print("\n# bursts of 16 walk steps, then 16 train steps (us, by position in the burst)\n")
    print("- walk step:  " + " ".join(f"{v / rounds * 1e6:.0f}" for v in walk))
    print("- train step: " + " ".join(f"{v / rounds * 1e6:.0f}" for v in train))


def ivalue(top: int) -> None:
    import bench_traversal as bt

    graph = bt.random_graph(100_000)
    trav = bt.make_traversal("ivalue")
    if trav is None:
        print("traversal 'ivalue' is not registered")
        return
    trav.setup(graph, bt.WALKERS, np.random.default_rng(1))
    bt.time_steps(trav, 32, np.random.default_rng(2), budget_s=0.0, min_steps=32)
    prof = cProfile.Profile()
    prof.enable()
    bt.time_steps(trav, 400, np.random.default_rng(2), budget_s=1e9)
    prof.disable()
    print("# ivalue, 10^5 nodes, 400 steps of next_batch + feedback\n")
    print(_stats(prof, top))


def ivalue_loop(top: int, steps: int = 800) -> None:
    import bench_train as bt

    from hypergraph.traversals import TraversalContext

    del top
    graph, model, x, y = _step_setup("mlp")
    from hypergraph.traversals.ivalue import _draws, _engines, _signals, _traversal

    cls = registry.resolve("traversal", "ivalue")
    # (where the name is looked up, name): methods of the traversal, its stream engine and its
    # gain moments; module functions of the draws where their callers look them up
    parts: list[tuple[object, str]] = [
        (cls, "next_batch"), (cls, "_plan"), (_traversal, "quotas"), (_draws, "value_draw"),
        (cls, "feedback"), (cls, "_ingest"), (_signals.GainMoments, "_fold"),
        (cls, "_refresh"), (_engines.StreamEngine, "_observe"),
        (_engines.StreamEngine, "_resketch")]
    spent: dict[str, float] = {}
    originals = {(owner, name): getattr(owner, name) for owner, name in parts
                 if hasattr(owner, name)}

    def timed(name: str, inner: object) -> object:
        def call(*args: object, **kwargs: object) -> object:
            t0 = time.thread_time()
            try:
                return inner(*args, **kwargs)  # type: ignore[operator]
            finally:
                spent[name] = spent.get(name, 0.0) + time.thread_time() - t0
        return call

    print("# ivalue (defaults) on 40,000 rows, kNN k=10, batch 64: us of CPU per batch "
          "(nested parts are included in their callers)\n")
    try:
        for (owner, name), inner in originals.items():
            setattr(owner, name, timed(name, inner))
        for train in (False, True):
            trav = cls()
            trav.setup(graph, bt.BATCH, np.random.default_rng(0), TraversalContext(epochs=1))
            spent.clear()
            for _ in range(steps):
                sel = trav.next_batch()
                losses = model.train_step(x, y) if train else torch.rand(bt.BATCH)
                trav.feedback(sel.ids, losses.float().cpu().numpy())
            label = "with a training step after each batch" if train else "alone"
            print(f"- {label}: " + ", ".join(f"{k} {v / steps * 1e6:.0f}"
                                            for k, v in spent.items()))
    finally:
        for (owner, name), inner in originals.items():
            setattr(owner, name, inner)


def ivalue_after(top: int, steps: int = 80, repeats: int = 8) -> None:
    import statistics

    import bench_train as bt

    from hypergraph.traversals import TraversalContext

    del top
    graph, model, x, y = _step_setup("mlp")
    memory = np.ones(4_000_000 // 8)
    a, b = torch.randn(256, 256), torch.randn(bt.BATCH, 256)

    def matmuls() -> None:
        for _ in range(20):
            b @ a

    between: dict[str, Any] = {
        "nothing": lambda: None, "4 MB written": lambda: memory.__iadd__(1.0),
        "20 matmuls": matmuls, "MLP training step": lambda: model.train_step(x, y)}
    cls = registry.resolve("traversal", "ivalue")
    travs = {}
    for name in between:
        travs[name] = cls()
        travs[name].setup(graph, bt.BATCH, np.random.default_rng(0), TraversalContext(epochs=1))
    rng = np.random.default_rng(1)
    spent: dict[str, list[float]] = {name: [] for name in between}
    for _ in range(repeats):
        for name, work in between.items():
            trav, total = travs[name], 0.0
            for _ in range(steps):
                t0 = time.thread_time()
                sel = trav.next_batch()
                total += time.thread_time() - t0
                work()
                losses = rng.random(bt.BATCH)
                t0 = time.thread_time()
                trav.feedback(sel.ids, losses)
                total += time.thread_time() - t0
            spent[name].append(total / steps * 1e6)
    print(f"# ivalue (defaults), 40,000 rows: us of CPU per batch (next_batch + feedback), "
          f"median of {repeats} x {steps} batches, by what runs between batches\n")
    for name, values in spent.items():
        print(f"- after {name}: {statistics.median(values):.0f} us "
              f"(min {min(values):.0f}, max {max(values):.0f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all",
                        choices=("all", "trainer", "interleave", "walk_ahead", "ivalue",
                                 "ivalue_loop", "ivalue_after"))
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--traversal", default="random_walk", help="for 'trainer'")
    args = parser.parse_args()
    if args.what in ("all", "trainer"):
        trainer(args.top, args.traversal)
    if args.what in ("all", "interleave"):
        interleave(args.top)
    if args.what in ("all", "walk_ahead"):
        walk_ahead(args.top)
    if args.what in ("all", "ivalue"):
        ivalue(args.top)
    if args.what in ("all", "ivalue_loop"):
        ivalue_loop(args.top)
    if args.what in ("all", "ivalue_after"):
        ivalue_after(args.top)
