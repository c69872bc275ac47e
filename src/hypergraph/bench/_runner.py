"""The matched-budget benchmark runner: traversals x datasets x seeds.

Every cell of the matrix is one :func:`hypergraph.run.train` run with the same model, graph
builder, batch size and **gradient-step budget**; only the traversal (and the seed) changes.
A :class:`CurveRecorder` callback evaluates validation and test accuracy every ``eval_every``
steps and records the compute spent so far:

* ``train_samples``: samples that went through a training step (forward + backward);
* ``selection_forward``: samples scored forward-only to choose batches (``context.score``);
* ``overhead_fe``: other selection compute (e.g. RHO-LOSS's irreducible-loss model), converted
  to forward passes of the main model by parameter count;
* ``compute`` = ``3 x train_samples + selection_forward + overhead_fe`` in forward-pass
  equivalents (convention: a backward pass costs about two forward passes);
* ``wall_s``: seconds since training began, without the recorder's own evaluations, plus the
  seconds spent building the graph and setting the traversal up (``graph_s`` and ``setup_s``
  of the run's ``timings``, also recorded per cell), so methods that do work before the first
  step (near-duplicate groups, an irreducible-loss model) pay for it.

Every run stops at exactly the budget (the trainer's ``max_steps``), so every arm takes the
same number of gradient steps; methods that plan by the end of training (InfoBatch's
annealing) see the step budget (``TraversalContext.max_steps``). Cells run interleaved: for
each dataset and seed, every method in turn, so slow drifts of the machine hit all arms alike.

Results go to ``results.json`` after every cell; cells already there (same settings) are
skipped, so an interrupted bench resumes where it stopped. A cell of the same arm (dataset,
method key, seed) run with other settings is dropped and run again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypergraph.config import RunConfig
from hypergraph.exceptions import ConfigError, DataError
from hypergraph.graph import TEST, VAL
from hypergraph.logging import get_logger
from hypergraph.runtime import THREADS_ENV, apply_threads
from hypergraph.trainers import Callback, TrainContext, TrainState, write_json_atomic

__all__ = [
    "DATASETS",
    "METHODS",
    "BenchDataset",
    "BenchMethod",
    "BenchSpec",
    "CurveRecorder",
    "run_bench",
    "run_cell",
    "threads_for",
]

logger = get_logger(__name__)


@dataclass(frozen=True)
class BenchDataset:
    """A dataset arm: registered name, parameters and its gradient-step budget."""

    key: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    steps: int = 1200


@dataclass(frozen=True)
class BenchMethod:
    """A traversal arm: registered name and parameters."""

    key: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


#: Dataset presets (``--datasets`` picks by key).
DATASETS: dict[str, BenchDataset] = {
    "noisy": BenchDataset("noisy", "synthetic", {"label_noise": 0.3}, steps=600),
    "redundant": BenchDataset("redundant", "synthetic", {"redundancy": 0.8}, steps=600),
    "clean": BenchDataset("clean", "synthetic", {}, steps=600),
    "digits": BenchDataset("digits", "digits", {}, steps=400),
    "mnist1d": BenchDataset("mnist1d", "mnist1d", {}, steps=800),
    # label noise + near-duplicates + class imbalance + genuinely hard (boundary) points
    "mixture": BenchDataset("mixture", "synthetic", {
        "n_samples": 12_000, "n_classes": 6, "n_informative": 10, "label_noise": 0.2,
        "redundancy": 0.5, "imbalance": 0.3, "hard": 0.15}, steps=2000),
    "mixture_large": BenchDataset("mixture_large", "synthetic", {
        "n_samples": 60_000, "n_classes": 6, "n_informative": 10, "label_noise": 0.2,
        "redundancy": 0.5, "imbalance": 0.3, "hard": 0.15}, steps=5000),
    "mnist1d_large": BenchDataset("mnist1d_large", "mnist1d", {"num_samples": 50_000},
                                  steps=10_000),
}

#: Similarity at or above which training nodes are near-duplicates (IValue's default).
DEDUP = 0.995


def _dedup(name: str, params: dict[str, Any] | None = None, cover: float = 0.0,
           dedup: float = DEDUP) -> tuple[str, dict[str, Any]]:
    return "components", {"inner": name, "inner_params": dict(params or {}), "dedup": dedup,
                          "cover": cover}

#: Method presets (``--methods`` picks by key; ``name:k=v,k=v`` gives ad-hoc variants).
METHODS: dict[str, BenchMethod] = {
    "uniform": BenchMethod("uniform", "uniform"),
    "infobatch": BenchMethod("infobatch", "infobatch"),
    "rho_loss": BenchMethod("rho_loss", "rho_loss"),
    # the paper refreshes every loss with a forward pass between epochs
    "loss_topk": BenchMethod("loss_topk", "loss_topk", {"recompute_every": 1}),
    "comprehensive": BenchMethod("comprehensive", "comprehensive"),
    # every baseline with IValue's components: near-duplicate groups, then coverage too
    "epoch_dedup": BenchMethod("epoch_dedup", *_dedup("comprehensive")),
    "uniform_dedup": BenchMethod("uniform_dedup", *_dedup("uniform")),
    "uniform_dc": BenchMethod("uniform_dc", *_dedup("uniform", cover=0.5)),
    "infobatch_dedup": BenchMethod("infobatch_dedup", *_dedup("infobatch")),
    "infobatch_dc": BenchMethod("infobatch_dc", *_dedup("infobatch", cover=0.5)),
    "rho_loss_dedup": BenchMethod("rho_loss_dedup", *_dedup("rho_loss")),
    "rho_loss_dc": BenchMethod("rho_loss_dc", *_dedup("rho_loss", cover=0.5)),
    "loss_topk_dedup": BenchMethod("loss_topk_dedup",
                                   *_dedup("loss_topk", {"recompute_every": 1})),
    "loss_topk_dc": BenchMethod("loss_topk_dc",
                                *_dedup("loss_topk", {"recompute_every": 1}, cover=0.5)),
    "ivalue": BenchMethod("ivalue", "ivalue"),
    # the ablation of IValue by its own switches (``ivalue`` itself is "all")
    "ivalue_cover": BenchMethod("ivalue_cover", "ivalue", {"sweep": 1.0, "dedup": 0.0}),
    "ivalue_dedup": BenchMethod("ivalue_dedup", "ivalue", {"sweep": 0.0, "pressure": 1.0}),
    "ivalue_value": BenchMethod("ivalue_value", "ivalue", {"sweep": 0.0, "dedup": 0.0}),
    "ivalue_loss": BenchMethod("ivalue_loss", "ivalue", {"signal": "loss"}),
    # uncertainty p (1 - p) instead of the learnable signal (strongest under label noise)
    "ivalue_unc": BenchMethod("ivalue_unc", "ivalue", {"signal": "uncertainty"}),
    # no loss prioritisation; sampling weighted by graph label agreement (a label-noise filter)
    "ivalue_noise": BenchMethod("ivalue_noise", "ivalue", {"pressure": 1.0, "trust": 1.0}),
    # the second iteration's default (no class strata, no near-duplicate groups)
    "ivalue_v2": BenchMethod("ivalue_v2", "ivalue", {
        "signal": "uncertainty", "stratify": "none", "dedup": 0.0, "hops": 1}),
    # the default until 2026-12-03: values also propagated one hop over the graph
    "ivalue_hops1": BenchMethod("ivalue_hops1", "ivalue", {"hops": 1}),
    # the first iteration's default (walkers with local moves, no sweep), for comparison
    "ivalue_v1": BenchMethod("ivalue_v1", "ivalue", {
        "signal": "uncertainty", "stratify": "none", "dedup": 0.0,
        "walkers": 64, "warp": 0.5, "refresh": 4, "hops": 2, "sweep": 0.0}),
}


@dataclass
class BenchSpec:
    """Everything shared by the cells of one bench."""

    datasets: list[BenchDataset]
    methods: list[BenchMethod]
    seeds: list[int]
    #: Seeds used to choose settings (recorded; never among ``seeds``, the report seeds).
    design_seeds: list[int] = field(default_factory=list)
    batch_size: int = 64
    evals: int = 30
    model: dict[str, Any] = field(default_factory=lambda: {
        "name": "mlp", "params": {"width": 128, "depth": 2, "dropout": 0.0, "lr": 1e-3}})
    dataloader: dict[str, Any] = field(default_factory=lambda: {
        "name": "knn", "params": {"k": 10}})
    device: str = "cpu"
    step_scale: float = 1.0
    #: Extra arms per dataset key (``hypergraph bench --tuned``: ``<method>_tuned`` arms with
    #: the settings tuned on design seeds).
    tuned: dict[str, list[BenchMethod]] = field(default_factory=dict)
    #: Where the tuned arms come from (recorded in ``results.json``: file, design seeds,
    #: trials, dataset tuned on).
    tuned_from: dict[str, Any] = field(default_factory=dict)

    def arms(self, dataset: BenchDataset) -> list[BenchMethod]:
        """The methods run on ``dataset``: ``methods`` then its tuned arms."""
        return [*self.methods, *self.tuned.get(dataset.key, [])]

    def __post_init__(self) -> None:
        shared = sorted(set(self.seeds) & set(self.design_seeds))
        if shared:
            raise ConfigError(
                f"Report seeds and design seeds overlap ({', '.join(map(str, shared[:10]))}"
                f"{', ...' if len(shared) > 10 else ''}): a result must be reported on seeds "
                "that were not used to choose its settings. Give disjoint --seeds and "
                "--design-seeds.")

    def budget(self, dataset: BenchDataset) -> int:
        """Gradient steps of every cell on ``dataset``."""
        return max(1, round(dataset.steps * self.step_scale))

    def cell_key(self, dataset: BenchDataset, method: BenchMethod, seed: int) -> str:
        """Stable key of one cell: names, seed and a hash of every setting that shapes it.

        The traversal's parameters are resolved (defaults filled in), so changing a default
        re-runs the cells it affects instead of reusing stale ones.
        """
        from hypergraph import registry

        resolved = registry.resolve("traversal", method.name).from_params(method.params)
        params = {k: list(v) if isinstance(v, tuple) else v
                  for k, v in resolved.get_params().items()}
        blob = json.dumps({"v": 2, "d": asdict(dataset),
                           "m": [method.key, method.name, params],
                           "b": self.batch_size,
                           "e": self.evals, "model": self.model, "dl": self.dataloader,
                           "steps": self.budget(dataset)}, sort_keys=True)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:8]
        return f"{dataset.key}|{method.key}|{seed}|{digest}"


def parse_method(text: str) -> BenchMethod:
    """``"ivalue"`` (a preset or a registered name) or ``"key=name:p=v,p=v"`` for a variant."""
    from hypergraph.config import parse_value

    key, _, rest = text.partition("=") if "=" in text.split(":")[0] else (text, "", text)
    name, _, params_text = rest.partition(":")
    if not params_text and name in METHODS:
        preset = METHODS[name]
        return BenchMethod(key, preset.name, dict(preset.params))
    params: dict[str, Any] = {}
    for item in filter(None, params_text.split(",")):
        if "=" not in item:
            raise ConfigError(f"bench method '{text}': parameters must look like p=v, "
                              f"got '{item}'.")
        p, v = item.split("=", 1)
        params[p.strip()] = parse_value(v.strip())
    return BenchMethod(key if key != text else text, name, params)


def parse_dataset(text: str) -> BenchDataset:
    """A preset key (see :data:`DATASETS`)."""
    if text not in DATASETS:
        from hypergraph.exceptions import UnknownNameError

        raise UnknownNameError("bench dataset", text, sorted(DATASETS))
    return DATASETS[text]


# ---------------------------------------------------------------------------- recording
class CurveRecorder(Callback):
    """Evaluates val/test accuracy every ``eval_every`` steps and stops at ``budget`` steps."""

    def __init__(self, budget: int, eval_every: int) -> None:
        self.budget = budget
        self.eval_every = max(1, eval_every)
        self.curve: list[dict[str, float]] = []
        self.eval_s = 0.0
        self.start = 0.0
        self.extra: dict[str, Any] = {}

    def _data(self, ctx: TrainContext, split: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = ctx.graph.ids_in_split(split)
        rows = ctx.graph.node_rows(ids, np.random.default_rng(0))
        x = torch.from_numpy(np.asarray(ctx.bundle.store.get(rows), np.float32)).to(ctx.device)
        y = torch.from_numpy(ctx.bundle.y[rows].astype(np.int64)).to(ctx.device)
        return x, y

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        self.val = self._data(ctx, VAL)
        self.test = self._data(ctx, TEST)
        self.params = ctx.model.num_parameters() if hasattr(ctx.model, "num_parameters") else 0
        self.before_s = ctx.timings.get("graph_s", 0.0) + ctx.timings.get("setup_s", 0.0)
        self.start = time.perf_counter()
        self._record(ctx, state)

    def _overhead_fe(self, ctx: TrainContext) -> float:
        over = getattr(ctx.traversal, "overhead_", None) or {}
        fwd, params = float(over.get("forward_samples", 0.0)), int(over.get("params", 0))
        if fwd <= 0 or params <= 0 or self.params <= 0:
            return 0.0
        return fwd * params / self.params

    def _record(self, ctx: TrainContext, state: TrainState) -> None:
        t0 = time.perf_counter()
        val = ctx.model.evaluate(*self.val)
        test = ctx.model.evaluate(*self.test)
        over = self._overhead_fe(ctx)
        setup_s = self.before_s
        self.curve.append({
            "step": state.step, "train_samples": state.samples_seen,
            "selection_forward": state.selection_forward, "overhead_fe": over,
            "compute": 3.0 * state.samples_seen + state.selection_forward + over,
            "wall_s": t0 - self.start - self.eval_s + setup_s,
            "val_acc": val.get("accuracy", math.nan), "val_loss": val["loss"],
            "test_acc": test.get("accuracy", math.nan), "test_loss": test["loss"]})
        self.eval_s += time.perf_counter() - t0

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        if state.step <= self.budget and (state.step % self.eval_every == 0
                                          or state.step == self.budget):
            self._record(ctx, state)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        if state.step >= self.budget:
            state.stop = True
            state.stop_reason = "bench budget reached"

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        if self.curve[-1]["step"] < min(state.step, self.budget):
            self._record(ctx, state)
        self.extra = {"n_train": int(ctx.graph.train_ids().size), "params": self.params,
                      "overhead": getattr(ctx.traversal, "overhead_", None),
                      "timings": dict(ctx.timings)}


#: The last datasets loaded: (dataset arm, seed) -> bundle. Bench cells run interleaved (every
#: method of one dataset and seed in turn), so one entry serves them all; a tuning trial runs
#: every design seed in turn, so a few entries are kept.
_DATA_CACHE: dict[tuple[str, str, int], Any] = {}
_DATA_CACHE_SIZE = 8


def _cached_dataset(dataset: BenchDataset, seed: int) -> Any:
    """The dataset module of ``dataset`` whose ``load`` returns the bundle loaded for ``seed``
    the first time (generated data such as mnist1d take seconds to make; every arm of a seed
    sees the same data anyway). Graph building is not cached: it counts in each cell's time."""
    from hypergraph import registry
    from hypergraph.datasets import Dataset
    from hypergraph.rng import RngStreams

    module = registry.resolve("dataset", dataset.name).from_params(dict(dataset.params))
    assert isinstance(module, Dataset)
    key = (dataset.key, json.dumps(dataset.params, sort_keys=True), seed)
    if key not in _DATA_CACHE:
        while len(_DATA_CACHE) >= _DATA_CACHE_SIZE:
            del _DATA_CACHE[next(iter(_DATA_CACHE))]  # the oldest
        _DATA_CACHE[key] = module.load(RngStreams(seed).generator("dataset"))
    bundle = _DATA_CACHE[key]
    module.load = lambda rng: bundle  # type: ignore[method-assign]
    return module


def run_cell(spec: BenchSpec, dataset: BenchDataset, method: BenchMethod, seed: int,
             ) -> dict[str, Any]:
    """Train one cell and return its record (curve, totals, settings)."""
    from hypergraph.run import train

    budget = spec.budget(dataset)
    data = _cached_dataset(dataset, seed)
    cfg = RunConfig.model_validate({
        "seed": seed, "device": spec.device,
        "dataset": {"name": dataset.name, "params": dict(dataset.params)},
        "dataloader": spec.dataloader, "model": spec.model,
        "traversal": {"name": method.name, "params": dict(method.params)},
        "trainer": {"name": "standard", "params": {
            "epochs": 100_000, "max_steps": budget, "patience": 0,
            "batch_size": spec.batch_size}},
    })
    recorder = CurveRecorder(budget, max(1, budget // max(1, spec.evals)))
    t0 = time.perf_counter()
    result = train(cfg, None, callbacks=[recorder], dataset=data)
    return {"dataset": dataset.key, "method": method.key, "seed": seed,
            "traversal": method.name, "traversal_params": method.params, "budget": budget,
            "curve": recorder.curve, "steps_run": result["steps"],
            "run_wall_s": time.perf_counter() - t0, **recorder.extra}


def load_results(path: Path) -> dict[str, Any]:
    """``results.json`` as a dict (an empty skeleton when absent)."""
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, expected the bench's results file; give "
                        "another --out.")
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"'{path}' is not a readable results file ({err}); it is damaged. "
                            "Move it away to start the bench over, or give another --out."
                            ) from None
        if not isinstance(data, dict) or not isinstance(data.setdefault("cells", {}), dict):
            raise DataError(f"'{path}' does not hold bench results (a JSON object with "
                            "'cells'); move it away or give another --out.")
        return data
    return {"cells": {}}


def run_bench(spec: BenchSpec, out_dir: str | Path,
              on_cell: Callable[[str, bool], None] | None = None,
              threads: int | None = 1) -> dict[str, Any]:
    """Run every missing cell of ``spec``, saving ``results.json`` after each; returns results.

    Args:
        spec: The matrix and shared settings.
        out_dir: Folder of ``results.json`` (created).
        on_cell: Called as ``on_cell(key, skipped)`` after each cell (progress display).
        threads: torch intra-op threads for the runs (small models run best on one).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file in the way, no permission...
        raise DataError(f"Cannot create the bench folder '{out}': {err.strerror or err}. "
                        "Give another --out.") from None
    path = out / "results.json"
    results = load_results(path)
    results["spec"] = {"batch_size": spec.batch_size, "evals": spec.evals, "model": spec.model,
                       "dataloader": spec.dataloader, "device": spec.device,
                       "datasets": [asdict(d) | {"budget": spec.budget(d)}
                                    for d in spec.datasets],
                       "methods": [asdict(m) for m in spec.methods], "seeds": spec.seeds,
                       "design_seeds": spec.design_seeds}
    if spec.tuned:
        results["spec"]["tuned"] = {**spec.tuned_from, "arms": {
            d: [asdict(m) for m in arms] for d, arms in spec.tuned.items()}}
    with threads_for(threads):
        for dataset, method, seed in _cells(spec):
            key = spec.cell_key(dataset, method, seed)
            arm = key.rsplit("|", 1)[0]
            for stale in [k for k in results["cells"] if k.rsplit("|", 1)[0] == arm and k != key]:
                del results["cells"][stale]  # the arm's settings changed: its old cell is void
            if key in results["cells"]:
                if on_cell:
                    on_cell(key, True)
                continue
            logger.info("bench cell %s", key)
            results["cells"][key] = run_cell(spec, dataset, method, seed)
            write_json_atomic(path, results, compact=True)
            if on_cell:
                on_cell(key, False)
    write_json_atomic(path, results, compact=True)
    return results


@contextmanager
def threads_for(threads: int | None) -> Iterator[None]:
    """Runs inside use ``threads`` torch intra-op threads (``None``: leave as is); restored
    after."""
    old_threads, old_env = torch.get_num_threads(), os.environ.get(THREADS_ENV)
    if threads:  # every run applies $HYPERGRAPH_THREADS when it is prepared
        os.environ[THREADS_ENV] = str(threads)
        apply_threads()
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = old_env
        torch.set_num_threads(old_threads)


def _cells(spec: BenchSpec) -> list[tuple[BenchDataset, BenchMethod, int]]:
    return [(d, m, s) for d in spec.datasets for s in spec.seeds for m in spec.arms(d)]
