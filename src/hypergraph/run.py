"""One training run, end to end: build the modules, check the combination, train, write files.

:func:`build` turns a :class:`~hypergraph.config.RunConfig` into module instances and checks their
tags before any work; :func:`train` runs it and, given ``out_dir``, writes the run folder:

* ``config.yaml`` - the resolved config (every hyperparameter); ``-c`` re-runs the same run.
* ``status.json`` - ``running``, ``failed`` (with the error) or ``completed``.
* ``history.jsonl`` - one line per epoch.
* ``metrics.json`` - written last, only when the run completed.
* ``learning_curve.png``, ``best.pt`` (best-on-validation model), ``last.pt`` (resume point).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypergraph import registry
from hypergraph.base import Module
from hypergraph.config import RUN_KINDS, ModuleChoice, RunConfig
from hypergraph.dataloaders import Dataloader
from hypergraph.datasets import Dataset
from hypergraph.exceptions import HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.managers import GraphManager
from hypergraph.models import Model, resolve_device
from hypergraph.rng import RngStreams
from hypergraph.tags import check_combination
from hypergraph.trainers import (
    Callback,
    HistoryWriter,
    TrainContext,
    Trainer,
    write_json_atomic,
)
from hypergraph.traversals import Traversal

__all__ = ["Modules", "build", "resolved_config", "train"]

logger = get_logger(__name__)


@dataclass
class Modules:
    """The instantiated modules of one run (not yet set up)."""

    dataset: Dataset
    dataloader: Dataloader
    model: Model
    traversal: Traversal
    manager: GraphManager
    trainer: Trainer


def build(config: RunConfig) -> Modules:
    """Resolve, construct and tag-check the modules of ``config``.

    Raises:
        HyperGraphError: unknown names, invalid hyperparameters or an incompatible combination.
    """
    registry.load_plugins(config.plugins)
    classes = {kind: registry.resolve(kind, config.choice(kind).name) for kind in RUN_KINDS}
    check_combination(classes)
    instances: dict[str, Module] = {
        kind: cls.from_params(config.choice(kind).params) for kind, cls in classes.items()
    }
    return Modules(**instances)  # type: ignore[arg-type]


def resolved_config(config: RunConfig, modules: Modules) -> RunConfig:
    """``config`` with every hyperparameter filled in from the built modules."""
    data = config.model_dump()
    for kind in RUN_KINDS:
        module: Module = getattr(modules, kind)
        params = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in module.get_params().items()}
        data[kind] = ModuleChoice(name=module.name, params=params).model_dump()
    return RunConfig.model_validate(data)


def prepare(config: RunConfig, modules: Modules) -> TrainContext:
    """Load the data, build the graph and set the model up (no training yet)."""
    streams = RngStreams(config.seed)
    device = resolve_device(config.device)
    t0 = time.perf_counter()
    bundle = modules.dataset.load(streams.generator("dataset"))
    bundle.check()
    graph = modules.dataloader.build(bundle, streams.generator("dataloader"))
    graph.validate()
    logger.info("Built %r in %.2fs", graph, time.perf_counter() - t0)
    modules.model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task,
                        device=str(device), seed=streams.torch_seed("model"))
    return TrainContext(bundle=bundle, graph=graph, model=modules.model,
                        traversal=modules.traversal, manager=modules.manager, streams=streams,
                        device=device)


def train(config: RunConfig, out_dir: str | Path | None = None,
          callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Run one training and return its metrics (also written to ``out_dir`` if given).

    The run folder is only created once the config has been validated, so bad input leaves
    nothing behind; ``metrics.json`` is written last, so its presence marks a finished run.
    """
    modules = build(config)
    resolved = resolved_config(config, modules)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("metrics.json", "history.jsonl", "learning_curve.png", "best.pt",
                      "last.pt"):
            (out / stale).unlink(missing_ok=True)
        (out / "config.yaml").write_text(resolved.to_yaml())
        write_json_atomic(out / "status.json", {"state": "running"})
    try:
        ctx = prepare(resolved, modules)
        ctx.out_dir = out
        ctx.callbacks = list(callbacks or [])
        if out is not None:
            ctx.callbacks.insert(0, HistoryWriter(out / "history.jsonl"))
        result = modules.trainer.fit(ctx)
    except (HyperGraphError, KeyboardInterrupt) as err:
        if out is not None:
            write_json_atomic(out / "status.json", {"state": "failed", "error": str(err)
                                                    or type(err).__name__})
        raise
    result = {"val": result["val"], "test": result["test"], **{
        k: v for k, v in result.items() if k not in ("val", "test")}}
    if out is not None:
        _finish(out, result)
    return result


def _finish(out: Path, result: dict[str, Any]) -> None:
    import json

    from hypergraph.plots import plot_learning_curves

    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()
               if line.strip()]
    metric = "accuracy" if "accuracy" in result["test"] else "r2"
    plot_learning_curves([(out.name, history)], out / "learning_curve.png", metric=metric)
    write_json_atomic(out / "metrics.json", result)
    write_json_atomic(out / "status.json", {"state": "completed"})


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    """``runs/<date>-<time>-<dataset>-<traversal>-s<seed>`` (unique)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{config.dataset.name}-{config.traversal.name}-s{config.seed}"
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{i}")
        i += 1
    return path
