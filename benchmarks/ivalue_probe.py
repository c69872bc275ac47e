"""Probes behind the fourth IValue iteration (issue 4) and its cost (issue 6).

* ``similarity``: kNN edge weights of the bench graphs (seed 0): quantiles, and the share of
  training nodes with a neighbour above 0.99 / 0.995 (why ``dedup: 0.995`` groups only the
  near-duplicates of ``redundant``).
* ``class-mix``: class histogram of the first picks of ``uniform`` and of IValue with and
  without class strata on ``digits`` (the imbalance that ``stratify: label`` removes).
* ``table-draws``: IValue's CPU time per batch (``next_batch`` + ``feedback``, random losses)
  on the ``digits`` and ``mnist1d`` bench graphs with rejection draws (the default) and with
  the cumulative-table draws forced (a possible speed-up for small graphs; it changes the
  selection sequence).

Run: ``python benchmarks/ivalue_probe.py [similarity|class-mix|table-draws]``.
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
import torch

import hypergraph.traversals.ivalue._engines as engines_module
from hypergraph.config import RunConfig
from hypergraph.graph import HyperGraph
from hypergraph.run import build, prepare, train
from hypergraph.trainers import Callback, TrainContext, TrainState
from hypergraph.traversals import IValueTraversal, TraversalContext

BENCH_DATA = {"redundant": ("synthetic", {"redundancy": 0.8}),
              "noisy": ("synthetic", {"label_noise": 0.3}),
              "digits": ("digits", {}), "mnist1d": ("mnist1d", {})}


def bench_graph(key: str) -> HyperGraph:
    """The kNN graph (k=10) of a bench dataset preset, seed 0."""
    name, params = BENCH_DATA[key]
    cfg = RunConfig.model_validate({"seed": 0, "dataset": {"name": name, "params": params},
                                    "dataloader": {"name": "knn", "params": {"k": 10}}})
    return prepare(cfg, build(cfg)).graph


def similarity() -> None:
    for key in BENCH_DATA:
        graph = bench_graph(key)
        sub = graph.subgraph(graph.train_ids())
        rows = np.repeat(np.arange(sub.num_nodes), np.diff(sub.indptr))
        q = np.quantile(sub.weights, [0.01, 0.5, 0.99])
        shares = [float(np.mean(np.bincount(rows, sub.weights >= t, sub.num_nodes) > 0))
                  for t in (0.99, 0.995)]
        print(f"{key}: {sub.num_nodes} training nodes, edge weight quantiles 1/50/99% "
              f"{q[0]:.4f} / {q[1]:.4f} / {q[2]:.4f}; nodes with an edge >= 0.99: "
              f"{shares[0]:.3f}, >= 0.995: {shares[1]:.3f}")


class _Picks(Callback):
    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.ids: list[np.ndarray] = []

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        self.ids.append(ids.copy())
        self.labels = ctx.graph.label
        if state.step >= self.steps:
            state.stop = True


def class_mix(steps: int = 26) -> None:
    torch.set_num_threads(1)
    arms = {"uniform": ("uniform", {}),
            "ivalue, no strata (second default)": (
                "ivalue", {"signal": "uncertainty", "stratify": "none", "dedup": 0.0}),
            "ivalue (default: strata)": ("ivalue", {})}
    for label, (name, params) in arms.items():
        cfg = RunConfig.model_validate({
            "seed": 0, "dataset": "digits", "dataloader": {"name": "knn", "params": {"k": 10}},
            "model": {"name": "mlp", "params": {"width": 128, "depth": 2, "dropout": 0.0}},
            "traversal": {"name": name, "params": params},
            "trainer": {"name": "standard", "params": {"epochs": 5, "patience": 0}}})
        rec = _Picks(steps)
        train(cfg, None, callbacks=[rec])
        ids = np.concatenate(rec.ids)
        hist = np.bincount(rec.labels[ids].astype(np.int64), minlength=10)
        print(f"{label}: first {ids.size} picks, per class min {hist.min()} max {hist.max()}: "
              f"{hist.tolist()}")


def table_draws(batches: int = 800, rounds: int = 2) -> None:
    default = engines_module._MIN_ACCEPT
    try:
        for key in ("digits", "mnist1d"):
            graph = bench_graph(key)
            for _ in range(rounds):
                for mode, threshold in (("rejection", default), ("table", 1.1)):
                    engines_module._MIN_ACCEPT = threshold  # >= 1: always the table path
                    t = IValueTraversal()
                    t.setup(graph, 64, np.random.default_rng(0), TraversalContext(epochs=20))
                    rng = np.random.default_rng(1)
                    t0 = time.thread_time()
                    for _ in range(batches):
                        ids = t.next_batch().ids
                        t.feedback(ids, rng.random(ids.size) * 2)
                    us = (time.thread_time() - t0) / batches * 1e6
                    print(f"{key} {mode}: {us:.0f} us per batch")
    finally:
        engines_module._MIN_ACCEPT = default


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("similarity", "class-mix", "table-draws"))
    what = parser.parse_args().what
    {"similarity": similarity, "class-mix": class_mix, "table-draws": table_draws}[what]()
