"""The staged smoke run behind ``hypergraph test``: each stage of a run on tiny data, timed.

Stages: ``load`` (dataset, shrunk to ``max_rows``), ``build graph``, ``traverse`` (one epoch of
batches, checked to hold only training ids), ``train`` (a few gradient steps with the manager's
hooks), ``validate`` and ``test``. A failing stage stops the run; later stages are not run.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hypergraph.config import RunConfig
from hypergraph.exceptions import InvalidParameterError
from hypergraph.graph import TEST, VAL
from hypergraph.logging import get_logger
from hypergraph.rng import RngStreams
from hypergraph.testing._checks import graph_problems
from hypergraph.testing._fixtures import subsample_bundle

__all__ = ["STAGES", "StageResult", "run_stages"]

logger = get_logger(__name__)

STAGES: tuple[str, ...] = ("load", "build graph", "traverse", "train", "validate", "test")


@dataclass
class StageResult:
    """Outcome of one stage: ``status`` is pass, fail or not run."""

    stage: str
    status: str
    seconds: float = 0.0
    detail: str = ""
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"stage": self.stage, "status": self.status, "seconds": round(self.seconds, 4),
                "detail": self.detail, "error": self.error}


def run_stages(config: RunConfig, max_rows: int = 300, steps: int = 5,
               on_stage: Callable[[StageResult], None] | None = None) -> list[StageResult]:
    """Run each stage of ``config`` on tiny data and report pass/fail and time per stage.

    Modules are built and tag-checked first (:func:`hypergraph.run.build`); errors there are
    raised (they are input errors, exit code 2 in the CLI), not reported as a stage.

    Raises:
        InvalidParameterError: ``max_rows < 3`` (one row per split) or ``steps < 1``.
    """
    from hypergraph.models import resolve_device
    from hypergraph.run import build
    from hypergraph.trainers import BatchGatherer
    from hypergraph.traversals import TraversalContext

    if max_rows < 3:
        raise InvalidParameterError(f"max_rows must be >= 3 (one row per split: train, "
                                    f"validation and test); got {max_rows}.")
    if steps < 1:
        raise InvalidParameterError(f"steps must be >= 1; got {steps}.")
    mods = build(config)
    streams = RngStreams(config.seed)
    device = resolve_device(config.device)
    state: dict[str, Any] = {}
    results: list[StageResult] = []
    batch_size = int(getattr(mods.trainer, "batch_size", 32))

    def load() -> str:
        bundle = mods.store.apply(mods.dataset.load(streams.generator("dataset")))
        bundle.check()
        full = len(bundle)
        rng = np.random.default_rng(config.seed & 0xFFFFFFFF)  # negative run seeds too
        bundle = subsample_bundle(bundle, max_rows, rng)
        state["bundle"] = bundle
        counts = [int((bundle.split == c).sum()) for c in (0, 1, 2)]
        return (f"{len(bundle)} of {full} rows (train/val/test {counts[0]}/{counts[1]}/"
                f"{counts[2]}), item shape {bundle.store.item_shape}, {bundle.task}")

    def graph() -> str:
        g = mods.dataloader.build(state["bundle"], streams.generator("dataloader"))
        found = graph_problems(g)
        if found:
            raise AssertionError("invalid graph: " + "; ".join(found))
        state["graph"] = g
        return repr(g)

    def traverse() -> str:
        g, bundle = state["graph"], state["bundle"]
        model = mods.model
        model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task,
                    device=str(device), seed=streams.torch_seed("model"))
        gather = BatchGatherer(g, bundle, device, streams.generator("gather"))
        state["gather"] = gather

        def score(ids: np.ndarray) -> np.ndarray:
            x, y = gather(ids)
            return model.losses(x, y).float().cpu().numpy()

        t = mods.traversal
        t.setup(g, batch_size, streams.generator("traversal"),
                TraversalContext(score=score, epochs=1))
        t.on_epoch_start(0)
        train = np.zeros(g.num_nodes, bool)
        train[g.train_ids()] = True
        seen: set[int] = set()
        n_steps = t.steps_per_epoch()
        for i in range(n_steps):
            sel = t.next_batch()
            ids = np.asarray(sel.ids)
            if ids.size == 0 or ids.size > batch_size:
                raise AssertionError(f"batch {i} holds {ids.size} ids (batch size {batch_size})")
            if not train[ids].all():
                raise AssertionError(f"batch {i} yielded non-training nodes "
                                     f"{ids[~train[ids]][:5].tolist()}")
            if t.needs_feedback:
                x, y = gather(ids)
                t.feedback(ids, model.losses(x, y).float().cpu().numpy())
            seen.update(ids.tolist())
        return (f"{n_steps} batches of <= {batch_size}; visited {len(seen)} of "
                f"{int(train.sum())} training nodes")

    def train_steps() -> str:
        g, model, gather, t = state["graph"], mods.model, state["gather"], mods.traversal
        mods.manager.setup(g, streams.generator("manager"))
        losses_seen = []
        changes = 0
        for _ in range(steps):
            sel = t.next_batch()
            x, y = gather(sel.ids)
            w = None if sel.weights is None else torch.from_numpy(
                np.asarray(sel.weights, np.float32)).to(device)
            losses = model.train_step(x, y, w)
            host = losses.float().cpu().numpy()
            if not np.all(np.isfinite(host)):
                raise AssertionError("non-finite training loss")
            losses_seen.append(float(host.mean()))
            if t.needs_feedback:
                t.feedback(sel.ids, host)
            if mods.manager.on_step(g, model, sel.ids, host):
                changes += 1
                t.on_graph_change(g)
        if mods.manager.on_epoch_end(g, model, 0):
            changes += 1
            t.on_graph_change(g)
        found = graph_problems(g)
        if found:
            raise AssertionError("the manager left an invalid graph: " + "; ".join(found))
        return (f"{steps} steps, loss {losses_seen[0]:.4f} -> {losses_seen[-1]:.4f}; manager "
                f"changed the graph {changes}x")

    def evaluate(split: int) -> Callable[[], str]:
        def run() -> str:
            g, gather = state["graph"], state["gather"]
            ids = g.ids_in_split(split)
            rows = g.node_rows(ids, streams.generator(f"eval-{split}"))
            x, y = gather.gather_rows(rows)
            metrics = mods.model.evaluate(x, y)
            return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())

        return run

    plan: list[tuple[str, Callable[[], str]]] = [
        ("load", load), ("build graph", graph), ("traverse", traverse), ("train", train_steps),
        ("validate", evaluate(VAL)), ("test", evaluate(TEST))]
    failed = False
    for name, func in plan:
        if failed:
            results.append(StageResult(name, "not run"))
            continue
        t0 = time.perf_counter()
        try:
            detail = func()
            res = StageResult(name, "pass", time.perf_counter() - t0, detail)
        except Exception as err:  # every stage failure is reported with its error
            logger.debug("stage %s failed:\n%s", name, traceback.format_exc())
            res = StageResult(name, "fail", time.perf_counter() - t0, "",
                              f"{type(err).__name__}: {err}")
            failed = True
        results.append(res)
        if on_stage:
            on_stage(res)
    return results
