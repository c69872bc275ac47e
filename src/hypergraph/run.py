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

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypergraph import registry, rundir
from hypergraph._io import atomic_path, write_json_atomic
from hypergraph.base import Module
from hypergraph.config import (
    DEFAULTS,
    FALLBACK_TRAVERSAL,
    RUN_KINDS,
    ModuleChoice,
    RunConfig,
    load_config,
)
from hypergraph.data import StorePolicy
from hypergraph.dataloaders import Dataloader
from hypergraph.datasets import Dataset
from hypergraph.exceptions import ConfigError, DataError, RunInterrupted, Terminated
from hypergraph.logging import get_logger
from hypergraph.managers import GraphManager
from hypergraph.models import Model, resolve_device
from hypergraph.rng import RngStreams
from hypergraph.runtime import apply_threads
from hypergraph.tags import check_combination, problems
from hypergraph.trainers import Callback, TrainContext, Trainer
from hypergraph.traversals import Traversal

__all__ = ["RunModules", "build", "resolved_config", "resume", "train"]

logger = get_logger(__name__)


@dataclass
class RunModules:
    """The instantiated modules of one run, one per run kind (not yet set up)."""

    dataset: Dataset
    store: StorePolicy
    dataloader: Dataloader
    model: Model
    traversal: Traversal
    manager: GraphManager
    trainer: Trainer


def build(config: RunConfig, *, dataset: Dataset | None = None,
          model: Model | None = None) -> RunModules:
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
    return RunModules(**instances)  # type: ignore[arg-type]


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


def resolved_config(config: RunConfig, modules: RunModules) -> RunConfig:
    """``config`` with every hyperparameter filled in from the built modules."""
    data = config.model_dump()
    for kind in RUN_KINDS:
        module: Module = getattr(modules, kind)
        params = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in module.get_params().items()}
        data[kind] = ModuleChoice(name=module.name, params=params).model_dump()
    return RunConfig.model_validate(data)


def prepare(config: RunConfig, modules: RunModules) -> TrainContext:
    """Load the data, build the graph and set the model up (no training yet)."""
    apply_threads()  # $HYPERGRAPH_THREADS (the CLI's --threads); unset: torch's own setting
    streams = RngStreams(config.seed)
    device = resolve_device(config.device)
    t0 = time.perf_counter()
    bundle = modules.store.apply(modules.dataset.load(streams.generator("dataset")))
    bundle.check()
    t1 = time.perf_counter()
    graph = modules.dataloader.build(bundle, streams.generator("dataloader"))
    graph.validate()
    t2 = time.perf_counter()
    logger.info("Built %r in %.2fs", graph, t2 - t0)
    modules.model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task,
                        device=str(device), seed=streams.torch_seed("model"))
    timings = {"data_s": t1 - t0, "graph_s": t2 - t1, "model_s": time.perf_counter() - t2}
    return TrainContext(bundle=bundle, graph=graph, model=modules.model,
                        traversal=modules.traversal, manager=modules.manager, streams=streams,
                        device=device, timings=timings)


def train(config: RunConfig, out_dir: str | Path | None = None,
          callbacks: list[Callback] | None = None, resume: bool = False, *,
          dataset: Dataset | None = None, model: Model | None = None,
          overwrite: bool = False) -> dict[str, Any]:
    """Run one training and return its metrics (also written to ``out_dir`` if given).

    The run folder's guarantees (see ``docs/runs.md`` and :mod:`hypergraph.rundir`):

    * the folder is locked (an OS lock) for the run's whole life; a second writer is refused
      with the holder's pid;
    * a folder that holds a run, or files that are not a run's, is refused unless
      ``overwrite`` (which then removes the old run's files only, and only after the new run
      has been validated and its data loaded: a failing run changes nothing);
    * ``run.json`` records fingerprints of the config and the data, and resume verifies both;
    * ``metrics.json`` is written last, so its presence marks a finished run.

    Args:
        config: The run.
        out_dir: Run folder (``None``: keep nothing on disk).
        callbacks: Extra trainer callbacks (after the loggers of ``config.loggers``).
        resume: Continue from ``out_dir/last.pt`` instead of starting over (see :func:`resume`);
            ``config`` must be the run's own. Without a ``last.pt`` the run starts from the
            beginning in the same folder.
        dataset: A dataset instance used instead of ``config.dataset`` (data that lives in
            Python, see :func:`hypergraph.from_arrays`).
        model: A model instance used instead of ``config.model`` (e.g. a wrapped user
            ``nn.Module``). With either, the written ``config.yaml`` names the module but
            cannot rebuild it.
        overwrite: Replace a run that ``out_dir`` already holds (never a running one).

    Raises:
        HyperGraphError: bad input of any kind, a busy or occupied folder, a resume that does
            not verify. Nothing in ``out_dir`` has changed then.
        RunInterrupted: SIGINT or SIGTERM stopped the run (a :class:`KeyboardInterrupt`); its
            folder is marked ``interrupted`` and can be resumed.
    """
    from hypergraph.loggers import check_logger_names

    check_logger_names(config.loggers)
    modules = build(config, dataset=dataset, model=model)
    resolved = resolved_config(config, modules)
    resolve_device(config.device)  # a bad --device is an input error: fail before the folder
    if out_dir is None:
        if resume:
            raise ConfigError("Resuming needs the run folder to resume (out_dir).")
        return _fit(resolved, modules, None, callbacks, None, None)
    out = Path(out_dir)
    why = rundir.forbidden_out(out)
    if why is not None:
        raise ConfigError(f"Refusing to use '{out}' as a run folder: {why}, and a run writes "
                          "and replaces files there. Give the run a folder of its own, e.g. "
                          "--out runs/my-run.")
    with rundir.RunLock(out) as lock:
        if resume:
            manifest = _check_resume(out, resolved)
            resume_state = _load_checkpoint(out / "last.pt", manifest)
        else:
            _check_fresh(out, overwrite)
            manifest, resume_state = None, None
        ctx = prepare(resolved, modules)  # the data are loaded; the folder is still untouched
        data = rundir.data_fingerprint(ctx.bundle)
        if manifest is not None:
            rundir.verify_data(out, manifest, data)
        lock.keep()
        if not resume:
            rundir.clear_run_files(out)  # only the files of an old run (--overwrite)
            text = resolved.to_yaml()
            manifest = rundir.new_manifest(text, data)
            with atomic_path(out / "config.yaml") as tmp:
                tmp.write_text(text)
            write_json_atomic(out / rundir.MANIFEST, manifest)
        elif resume_state is None:  # resumed before its first checkpoint: start over
            for name in ("history.jsonl", "history.csv", "best.pt", "visits.npy",
                         "learning_curve.png"):
                (out / name).unlink(missing_ok=True)
        return _fit(resolved, modules, out, callbacks, ctx, resume_state,
                    run_id=None if manifest is None else manifest["run_id"])


def _check_fresh(out: Path, overwrite: bool) -> None:
    """Refuse a folder that holds a run or foreign files, unless ``overwrite``."""
    info = rundir.inspect(out, probe_lock=False)  # we hold the lock ourselves
    if info.state == "empty" or overwrite:
        return
    if info.state == "not a run":
        shown = ", ".join(info.files[:5]) + (", ..." if len(info.files) > 5 else "")
        raise ConfigError(f"The folder '{out}' holds files that are not a HyperGraph run "
                          f"({shown}); refusing to write a run into it. Give an empty or new "
                          "folder with --out, or pass --overwrite to write the run beside "
                          "those files (they are kept).")
    best = _best_text(info.best)
    hint = (f" Resume it with `hypergraph train --resume {out}`," if info.resumable
            else "")
    raise ConfigError(f"The folder '{out}' already holds a run ({info.describe()}{best}); "
                      f"refusing to overwrite it.{hint} Give another folder with --out, or "
                      "pass --overwrite to replace it.")


def _best_text(best: dict[str, float]) -> str:
    key = "accuracy" if "accuracy" in best else ("loss" if "loss" in best else None)
    return "" if key is None else f", best val {key} {best[key]:.4f}"


def _check_resume(out: Path, resolved: RunConfig) -> dict[str, Any] | None:
    """Verify that ``out`` can be resumed with ``resolved``; its manifest (``None``: legacy)."""
    if (out / "metrics.json").is_file():
        raise ConfigError(f"Cannot resume '{out}': the run already completed (metrics.json "
                          f"exists). Start a new run with -c {out / 'config.yaml'}.")
    manifest = rundir.read_manifest(out)
    if manifest is None:
        logger.warning("'%s' has no %s (written by an older HyperGraph): its config and data "
                       "cannot be verified before resuming.", out, rundir.MANIFEST)
        return None
    rundir.verify_config_file(out, manifest)
    # Compared in value, not byte for byte: a run started before a kind existed (no `store:`
    # section) reads back with that kind's default filled in, and is still its own config.
    if load_config(out / "config.yaml").to_yaml() != resolved.to_yaml():
        raise ConfigError(f"Cannot resume '{out}' with a config other than the run's own "
                          "config.yaml. Use `hypergraph train --resume` (or "
                          "hypergraph.run.resume), or start a new run.")
    return manifest


def _fit(resolved: RunConfig, modules: RunModules, out: Path | None,
         callbacks: list[Callback] | None, ctx: TrainContext | None,
         resume_state: dict[str, Any] | None, run_id: str | None = None) -> dict[str, Any]:
    """Train with the prepared context (or prepare it now) and write the run's files."""
    from hypergraph.loggers import make_loggers

    if out is not None:
        write_json_atomic(out / "status.json", {
            "state": "running", "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed": resume_state is not None})
    try:
        if ctx is None:
            ctx = prepare(resolved, modules)
        ctx.out_dir = out
        ctx.resume_state = resume_state
        ctx.run_id = run_id
        ctx.callbacks = [*make_loggers(resolved.loggers, out, resolved.model_dump(mode="json")),
                         *(callbacks or [])]
        result = modules.trainer.fit(ctx)
    except KeyboardInterrupt as err:
        if out is None:
            raise
        name = "SIGTERM" if isinstance(err, Terminated) else "SIGINT"
        write_json_atomic(out / "status.json", {"state": "interrupted", "signal": name})
        raise RunInterrupted(out, name) from err
    except Exception as err:
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
    uninterrupted run (``wall_s`` aside) and ``history.jsonl`` holds each epoch once. Before
    anything is loaded, the run's ``config.yaml``, data and ``last.pt`` are checked against the
    fingerprints in ``run.json``.

    Raises:
        ConfigError: ``run_dir`` is not a run folder, the run already completed, it is in use,
            or its config was edited.
        DataError: the data changed, or ``last.pt`` is corrupt or belongs to another run.
    """
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"Cannot resume '{run}': it holds no config.yaml, so it is not a run "
                          "folder written by `hypergraph train`.")
    if (run / "metrics.json").is_file():
        raise ConfigError(f"Cannot resume '{run}': the run already completed (metrics.json "
                          "exists). Start a new run with -c " f"{run / 'config.yaml'}.")
    manifest = rundir.read_manifest(run)
    if manifest is not None:  # before parsing: a truncated file would parse with defaults
        rundir.verify_config_file(run, manifest)
    config = load_config(run / "config.yaml")
    if not (run / "last.pt").is_file():
        logger.warning("'%s' holds no last.pt; the run starts again from the beginning.", run)
    return train(config, run, callbacks=callbacks, resume=True)


def _load_checkpoint(path: Path, manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The payload of ``last.pt`` (``None`` when the file does not exist), verified to belong
    to the run of ``manifest``."""
    import torch

    if not path.is_file():
        return None
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive; anything else is not ours
        raise DataError(f"Cannot resume from '{path}': it is not a readable HyperGraph "
                        "checkpoint (not a torch zip archive). Delete it to start the run "
                        "again from the beginning, or start a new run.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch.load raises many types on foreign or damaged bytes
        raise DataError(f"Cannot resume from '{path}': it is not a readable HyperGraph "
                        f"checkpoint ({type(err).__name__}: {err}). Delete it to start the run "
                        "again from the beginning, or start a new run.") from err
    if not isinstance(payload, dict) or "state" not in payload or "model" not in payload:
        raise DataError(f"Cannot resume from '{path}': it is a torch file but not a HyperGraph "
                        "checkpoint (last.pt of a run). Delete it to start the run again from "
                        "the beginning, or start a new run.")
    if manifest is not None and payload.get("run_id") != manifest["run_id"]:
        raise DataError(f"Cannot resume from '{path}': the checkpoint belongs to another run "
                        f"(run id {payload.get('run_id')!r}, this folder's is "
                        f"{manifest['run_id']!r} in {rundir.MANIFEST}). Put the run's own "
                        "last.pt back, or delete it to start again from the beginning.")
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
