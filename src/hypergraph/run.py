"""One training run, end to end: build the modules, check the combination, train, write files.

:func:`build` turns a :class:`~hypergraph.config.RunConfig` into module instances and checks their
tags before any work; :func:`train` runs it and, given ``out_dir``, writes the run folder:

* ``config.yaml`` - the resolved config (every hyperparameter); ``-c`` re-runs the same run.
* ``status.json`` - ``running``, ``failed`` (with the error) or ``completed``.
* ``history.jsonl`` - one line per epoch.
* ``metrics.json`` - written last, only when the run completed.
* ``learning_curve.png``, ``best.pt`` (best-on-validation model), ``last.pt`` (resume point).
* ``visits.npy`` - training visits per graph node; ``history.csv`` and ``wandb/`` when those
  loggers are chosen (``RunConfig.loggers``).

:func:`resume` continues a killed run from its ``last.pt`` with the run's ``config.yaml`` and
ends with the same ``metrics.json`` (timings aside) as an uninterrupted run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypergraph import registry
from hypergraph.base import Module
from hypergraph.config import DEFAULTS, FALLBACK_TRAVERSAL, RUN_KINDS, ModuleChoice, RunConfig
from hypergraph.dataloaders import Dataloader
from hypergraph.datasets import Dataset
from hypergraph.exceptions import ConfigError, DataError, HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.managers import GraphManager
from hypergraph.models import Model, resolve_device
from hypergraph.rng import RngStreams
from hypergraph.tags import check_combination, problems
from hypergraph.trainers import (
    Callback,
    TrainContext,
    Trainer,
    write_json_atomic,
)
from hypergraph.traversals import Traversal

__all__ = ["Modules", "build", "resolved_config", "resume", "train"]

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


def build(config: RunConfig, *, dataset: Dataset | None = None,
          model: Model | None = None) -> Modules:
    """Resolve, construct and tag-check the modules of ``config``.

    Args:
        config: The run config.
        dataset: A ready dataset instance (e.g. :func:`hypergraph.from_arrays`) used instead
            of ``config.dataset``.
        model: A ready model instance (e.g. a wrapped user ``nn.Module``) used instead of
            ``config.model``.

    Raises:
        HyperGraphError: unknown names, invalid hyperparameters or an incompatible combination.
    """
    registry.load_plugins(config.plugins)
    given: dict[str, Module] = {k: v for k, v in (("dataset", dataset), ("model", model))
                                if v is not None}
    classes = {kind: type(given[kind]) if kind in given
               else registry.resolve(kind, config.choice(kind).name) for kind in RUN_KINDS}
    classes = _default_traversal_fallback(config, classes)
    check_combination(classes)
    instances: dict[str, Module] = {
        kind: given[kind] if kind in given else cls.from_params(config.choice(kind).params)
        for kind, cls in classes.items()
    }
    return Modules(**instances)  # type: ignore[arg-type]


def _default_traversal_fallback(config: RunConfig, classes: dict[str, type[Module]],
                                ) -> dict[str, type[Module]]:
    """The default traversal (``ivalue``) needs pairwise edges and per-sample losses; when it
    was left at its default (same name, no parameters) and the other modules do not provide
    what it needs, use :data:`~hypergraph.config.FALLBACK_TRAVERSAL` (which works with every
    combination) and say so. A traversal named with parameters is never replaced."""
    if config.traversal != ModuleChoice(name=DEFAULTS["traversal"]):
        return classes
    found = problems(classes)
    if not found:
        return classes
    alt = {**classes, "traversal": registry.resolve("traversal", FALLBACK_TRAVERSAL)}
    if problems(alt):
        return classes  # the fallback does not help: report the original problem
    logger.warning("The default traversal '%s' does not fit this combination (%s); training "
                   "with '%s' instead. Name a traversal (--traversal) to choose another.",
                   DEFAULTS["traversal"], " ".join(found), FALLBACK_TRAVERSAL)
    return alt


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
          callbacks: list[Callback] | None = None, resume: bool = False, *,
          dataset: Dataset | None = None, model: Model | None = None) -> dict[str, Any]:
    """Run one training and return its metrics (also written to ``out_dir`` if given).

    The run folder is only created once the config has been validated, so bad input leaves
    nothing behind; ``metrics.json`` is written last, so its presence marks a finished run.

    Args:
        config: The run.
        out_dir: Run folder (``None``: keep nothing on disk).
        callbacks: Extra trainer callbacks (after the loggers of ``config.loggers``).
        resume: Continue from ``out_dir/last.pt`` instead of starting over (see :func:`resume`);
            without a ``last.pt`` the run starts from the beginning in the same folder.
        dataset: A dataset instance used instead of ``config.dataset`` (data that lives in
            Python, see :func:`hypergraph.from_arrays`).
        model: A model instance used instead of ``config.model`` (e.g. a wrapped user
            ``nn.Module``). With either, the written ``config.yaml`` names the module but
            cannot rebuild it.
    """
    from hypergraph.loggers import check_logger_names, make_loggers

    check_logger_names(config.loggers)
    modules = build(config, dataset=dataset, model=model)
    resolved = resolved_config(config, modules)
    resolve_device(config.device)  # a bad --device is an input error: fail before the folder
    out = Path(out_dir) if out_dir is not None else None
    resume_state: dict[str, Any] | None = None
    if resume:
        if out is None:
            raise ConfigError("Resuming needs the run folder to resume (out_dir).")
        resume_state = _load_checkpoint(out / "last.pt")
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # an existing file, a file as parent, no permission...
            raise ConfigError(f"Cannot create the run folder '{out}': {err.strerror or err}. "
                              "Give another path with --out.") from None
        stale = ["metrics.json", "learning_curve.png"]
        if resume_state is None:
            stale += ["history.jsonl", "history.csv", "best.pt", "last.pt", "visits.npy"]
        for name in stale:
            (out / name).unlink(missing_ok=True)
        (out / "config.yaml").write_text(resolved.to_yaml())
        write_json_atomic(out / "status.json", {"state": "running"})
    try:
        ctx = prepare(resolved, modules)
        ctx.out_dir = out
        ctx.resume_state = resume_state
        ctx.callbacks = [*make_loggers(resolved.loggers, out, resolved.model_dump(mode="json")),
                         *(callbacks or [])]
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


def resume(run_dir: str | Path, callbacks: list[Callback] | None = None) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its last checkpoint, with its own ``config.yaml``.

    Model, optimiser, traversal and manager state, the graph (if a manager changed it) and
    every random stream are restored, so the finished run's ``metrics.json`` equals that of an
    uninterrupted run (``wall_s`` aside) and ``history.jsonl`` holds each epoch once.

    Raises:
        ConfigError: ``run_dir`` is not a run folder, or the run already completed.
    """
    from hypergraph.config import load_config

    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"Cannot resume '{run}': it holds no config.yaml, so it is not a run "
                          "folder written by `hypergraph train`.")
    if (run / "metrics.json").is_file():
        raise ConfigError(f"Cannot resume '{run}': the run already completed (metrics.json "
                          "exists). Start a new run with -c " f"{run / 'config.yaml'}.")
    config = load_config(run / "config.yaml")
    if not (run / "last.pt").is_file():
        logger.warning("'%s' holds no last.pt; the run starts again from the beginning.", run)
    return train(config, run, callbacks=callbacks, resume=True)


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The payload of ``last.pt`` (``None`` when the file does not exist)."""
    import torch

    if not path.is_file():
        return None
    try:
        payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise DataError(f"Could not read the checkpoint '{path}' to resume from: {err}") from err
    return payload


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
