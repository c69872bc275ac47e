"""An equal tuning budget for every bench arm (``hypergraph bench --tune N``).

Each method arm gets one Optuna study per dataset with **exactly** ``N`` complete trials over its
tuning space, on the design seeds only; the objective is the mean over those seeds of the best
**validation** accuracy reached within the dataset's full step budget (test accuracy is never
read). Trial 0 of every study is the method's current setting (its preset or the traversal's
defaults), so a tuned arm is the best of its default and ``N - 1`` proposals of a seeded
:class:`~optuna.samplers.TPESampler` (the first ``N // 2`` trials are its random start-up
draws). A method whose tuning space is empty runs its default once and says so.

**Tuning spaces.** :data:`TUNE_SPACES` names, per traversal, the parameters it is tuned over and
their ranges: the method's main knobs from its declared ``space``, with ranges narrowed to values
a run can afford (the declared spaces admit, e.g., RHO-LOSS with 100x large batches and 1,000
epochs of its irreducible-loss model); :func:`tune_space` checks that every range lies inside the
declared space. A ``components`` arm (``epoch_dedup``, ``infobatch_dedup``) is tuned over its
inner traversal's space (``inner.<name>``) plus the near-duplicate threshold ``dedup``.

**Resuming.** Studies live in ``tune.db`` (SQLite) in the output folder, named by dataset,
method and a hash of every setting that shapes a trial, so a changed setting starts a new
study instead of reusing stale trials. Each proposal comes from a sampler seeded by the
study's name and the number of trials already complete, and a trial left unfinished (Ctrl-C,
a killed process) is marked failed and not counted: a resumed tuning proposes exactly what an
uninterrupted one would have, and stops at ``N`` complete trials.

The result is ``tuned.json``: per dataset and method the chosen parameters, their score, the
default's score and the number of trials (:func:`load_tuned` reads it back for
``hypergraph bench --tuned``, :func:`tuned_arms` turns it into ``<method>_tuned`` arms).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypergraph.bench._runner import BenchDataset, BenchMethod, BenchSpec, run_cell, threads_for
from hypergraph.exceptions import ConfigError, DataError, HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.spaces import Categorical, Float, Int, Param, space_to_wandb
from hypergraph.trainers import write_json_atomic

if TYPE_CHECKING:
    import optuna

__all__ = ["TUNED_SUFFIX", "TUNE_SPACES", "apply_params", "current_params", "load_tuned",
           "run_tune", "tune_space", "tuned_arms"]

logger = get_logger(__name__)

#: Key suffix of an arm run with tuned settings (``ivalue`` -> ``ivalue_tuned``).
TUNED_SUFFIX = "_tuned"
#: Format version of ``tuned.json``.
TUNED_VERSION = 1

#: Per traversal, the parameters a tuning searches and their ranges (each inside the declared
#: space; see the module docstring). Traversals not listed (uniform, comprehensive, ...) have an
#: empty tuning space.
TUNE_SPACES: dict[str, dict[str, Param]] = {
    "infobatch": {"prune_ratio": Float(low=0.1, high=0.9),
                  "delta": Float(low=0.5, high=1.0)},
    "loss_topk": {"pressure": Float(low=1.5, high=1000.0, log=True)},
    "rho_loss": {"big_batch_factor": Int(low=2, high=16),
                 "il_width": Int(low=16, high=128, log=True),
                 "il_epochs": Int(low=10, high=80, log=True)},
    "ivalue": {"signal": Categorical(choices=("learnable", "uncertainty", "loss")),
               "sweep": Float(low=0.0, high=1.0),
               "pressure": Float(low=3.0, high=1000.0, log=True),
               "temperature": Float(low=0.1, high=2.0, log=True),
               "dedup": Float(low=0.98, high=0.999)},
    # the wrapper's own knob; its inner traversal's space is added as inner.<name>
    "components": {"dedup": Float(low=0.98, high=0.999)},
}

#: Objective of every study, as recorded in ``tuned.json``.
OBJECTIVE = ("mean over the design seeds of the best validation accuracy within the dataset's "
             "full step budget (test accuracy is not read)")


# ---------------------------------------------------------------------------- spaces
def _inside(declared: Param, mine: Param, owner: str, name: str) -> None:
    """Raise unless the tuning range ``mine`` lies inside the declared parameter."""
    if not declared.searchable:
        raise ConfigError(f"Tuning space of {owner}: '{name}' is not searchable.")
    if isinstance(mine, Categorical):
        values: Iterable[Any] = mine.choices
    elif isinstance(mine, Int | Float):
        values = (mine.low, mine.high)
    else:
        raise ConfigError(f"Tuning space of {owner}: '{name}' must be Int, Float or "
                          "Categorical.")
    for value in values:  # raises the validator's message when outside
        declared.validate(value, owner, name)


def tune_space(method: BenchMethod) -> dict[str, Param]:
    """The searched parameters of ``method``: Optuna name -> range (empty: nothing to tune).

    ``components`` arms search their own ``dedup`` and their inner traversal's space under
    ``inner.<name>``. Every range is checked against the declared space.
    """
    from hypergraph import registry

    cls = registry.resolve("traversal", method.name)
    space: dict[str, Param] = {}
    for name, param in TUNE_SPACES.get(method.name, {}).items():
        _inside(cls.space[name], param, cls.__name__, name)
        space[name] = param
    if method.name == "components":
        inner = str(method.params.get("inner", cls.space["inner"].default))
        inner_cls = registry.resolve("traversal", inner)
        for name, param in TUNE_SPACES.get(inner, {}).items():
            _inside(inner_cls.space[name], param, inner_cls.__name__, name)
            space[f"inner.{name}"] = param
    return space


def current_params(method: BenchMethod, space: Mapping[str, Param]) -> dict[str, Any]:
    """The values ``method`` runs with today for every parameter of ``space`` (its preset's,
    else the traversal's defaults): trial 0 of its study."""
    from hypergraph import registry

    resolved = registry.resolve("traversal", method.name).from_params(dict(method.params))
    params = resolved.get_params()
    out: dict[str, Any] = {}
    for name in space:
        if name.startswith("inner."):
            inner = registry.resolve("traversal", str(params["inner"])).from_params(
                dict(params.get("inner_params") or {}))
            out[name] = inner.get_params()[name.removeprefix("inner.")]
        else:
            out[name] = params[name]
    return out


def apply_params(method: BenchMethod, values: Mapping[str, Any], key: str | None = None,
                 ) -> BenchMethod:
    """``method`` with the searched ``values`` set (``inner.<name>`` into ``inner_params``)."""
    params = dict(method.params)
    inner = dict(params.get("inner_params") or {})
    for name, value in values.items():
        if name.startswith("inner."):
            inner[name.removeprefix("inner.")] = value
        else:
            params[name] = value
    if inner or "inner_params" in params:
        params["inner_params"] = inner
    return BenchMethod(key or method.key, method.name, params)


# ---------------------------------------------------------------------------- studies
def _study_name(spec: BenchSpec, dataset: BenchDataset, method: BenchMethod,
                space: Mapping[str, Param], trials: int, sampler_seed: int) -> str:
    """``dataset|method|hash``: the hash covers everything that shapes a trial's score."""
    blob = json.dumps({"cell": spec.cell_key(dataset, method, 0), "space": space_to_wandb(space),
                       "seeds": spec.seeds, "trials": trials, "sampler": sampler_seed},
                      sort_keys=True, default=str)
    return f"{dataset.key}|{method.key}|{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def _fail_unfinished(study: optuna.Study) -> None:
    """Mark trials left RUNNING by an interrupted tuning as failed (one tuner per folder)."""
    from optuna.trial import TrialState

    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _suggest(trial: optuna.Trial, name: str, param: Param) -> Any:
    if isinstance(param, Int):
        return trial.suggest_int(name, param.low, param.high, log=param.log,
                                 step=1 if param.log else param.step)
    if isinstance(param, Float):
        return trial.suggest_float(name, param.low, param.high, log=param.log,
                                   step=None if param.log else param.step)
    assert isinstance(param, Categorical)
    return trial.suggest_categorical(name, list(param.choices))


def _objective(spec: BenchSpec, dataset: BenchDataset, method: BenchMethod,
               space: Mapping[str, Param], on_cell: Callable[[str], None] | None,
               ) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        values = {name: _suggest(trial, name, param) for name, param in space.items()}
        arm = apply_params(method, values)
        scores, t0 = [], time.perf_counter()
        for seed in spec.seeds:
            try:
                cell = run_cell(spec, dataset, arm, seed)
            except (HyperGraphError, ValueError, RuntimeError, FloatingPointError) as err:
                # a setting that cannot train is a bad setting, not a broken tuning
                logger.warning("tuning %s on %s: %s failed on seed %d (%s); scored 0",
                               method.key, dataset.key, values, seed, err)
                trial.set_user_attr("error", f"seed {seed}: {err}")
                scores.append(0.0)
            else:
                best = max((p["val_acc"] for p in cell["curve"]
                            if math.isfinite(p["val_acc"])), default=0.0)
                scores.append(float(best))
            if on_cell:
                on_cell(f"{dataset.key}|{method.key}|trial {trial.number}|seed {seed}")
        trial.set_user_attr("val_per_seed", scores)
        trial.set_user_attr("params", arm.params)
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        return float(sum(scores) / len(scores))

    return objective


def _tune_one(spec: BenchSpec, dataset: BenchDataset, method: BenchMethod, trials: int,
              storage: str, sampler_seed: int, on_cell: Callable[[str], None] | None,
              ) -> dict[str, Any]:
    import optuna

    space = tune_space(method)
    budget = trials if space else 1
    name = _study_name(spec, dataset, method, space, budget, sampler_seed)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                load_if_exists=True)
    _fail_unfinished(study)
    objective = _objective(spec, dataset, method, space, on_cell)
    default = current_params(method, space)
    while (done := len(_complete(study))) < budget:
        waiting = study.get_trials(deepcopy=False,
                                   states=(optuna.trial.TrialState.WAITING,))
        if done == 0 and not waiting:
            study.enqueue_trial(default, skip_if_exists=False)
        seed = zlib.crc32(f"{name}|{sampler_seed}|{done}".encode())
        study.sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=max(1, budget // 2))
        study.optimize(objective, n_trials=1, catch=())
    complete = sorted(_complete(study), key=lambda t: t.number)[:budget]
    best = max(complete, key=lambda t: (t.value, -t.number))
    first = complete[0]
    return {"traversal": method.name, "params": best.user_attrs["params"],
            "tuned": dict(best.params), "score": best.value,
            "val_per_seed": best.user_attrs.get("val_per_seed"),
            "default_score": first.value, "default": default, "trials": len(complete),
            "best_trial": best.number, "space": space_to_wandb(space), "study": name,
            "note": ("" if space else "empty tuning space: its default ran once")}


def run_tune(spec: BenchSpec, trials: int, out_dir: str | Path,
             on_cell: Callable[[str], None] | None = None, sampler_seed: int = 0,
             threads: int | None = 1) -> dict[str, Any]:
    """Tune every method of ``spec`` on every dataset with ``trials`` trials each.

    Args:
        spec: The datasets, methods and shared settings; ``spec.seeds`` are the **design**
            seeds the studies run on (never report seeds).
        trials: Complete trials per method and dataset (methods with an empty tuning space
            run once).
        out_dir: Folder of ``tune.db`` (the studies) and ``tuned.json`` (the result).
        on_cell: Called with a description after each training run (progress display).
        sampler_seed: Seed of every study's samplers.
        threads: torch intra-op threads for the runs.

    Returns:
        The content written to ``tuned.json``.
    """
    if trials < 1:
        raise ConfigError(f"--tune must be at least 1 trial per method, got {trials}.")
    if not spec.seeds:
        raise ConfigError("Tuning needs design seeds (--design-seeds), none were given.")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"Cannot create the tuning folder '{out}': {err.strerror or err}. "
                        "Give another --out.") from None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{(out / 'tune.db').resolve()}"
    path = out / "tuned.json"
    result: dict[str, Any] = {
        "version": TUNED_VERSION, "design_seeds": list(spec.seeds), "trials": trials,
        "sampler": "TPESampler", "sampler_seed": sampler_seed,
        "start_up_trials": max(1, trials // 2), "objective": OBJECTIVE, "storage": "tune.db",
        "spec": {"batch_size": spec.batch_size, "evals": spec.evals, "model": spec.model,
                 "dataloader": spec.dataloader, "step_scale": spec.step_scale},
        "datasets": {}}
    with threads_for(threads):
        for dataset in spec.datasets:
            block = result["datasets"].setdefault(
                dataset.key, {"dataset": asdict(dataset), "budget": spec.budget(dataset),
                              "methods": {}})
            for method in spec.methods:
                block["methods"][method.key] = _tune_one(
                    spec, dataset, method, trials, storage, sampler_seed, on_cell)
                write_json_atomic(path, result)
    return result


# ---------------------------------------------------------------------------- tuned.json
def _bad(path: Path, why: str) -> ConfigError:
    return ConfigError(f"--tuned '{path}': {why}. Give the tuned.json written by "
                       "`hypergraph bench --tune N` (or run the tuning again).")


def load_tuned(path: str | Path) -> dict[str, Any]:
    """Read and check a ``tuned.json``; every problem is a :class:`ConfigError` naming it."""
    from hypergraph import registry

    path = Path(path)
    if not path.is_file():
        raise _bad(path, "no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(path, f"not readable JSON ({err})") from None
    if not isinstance(data, dict) or data.get("version") != TUNED_VERSION:
        raise _bad(path, f"not a tuning result of format version {TUNED_VERSION}")
    seeds = data.get("design_seeds")
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise _bad(path, "'design_seeds' must be a non-empty list of integers")
    datasets = data.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        raise _bad(path, "'datasets' must map dataset names to their tuned methods")
    for dkey, block in datasets.items():
        methods = block.get("methods") if isinstance(block, dict) else None
        if not isinstance(methods, dict):
            raise _bad(path, f"dataset '{dkey}' has no 'methods' mapping")
        for mkey, entry in methods.items():
            where = f"dataset '{dkey}', method '{mkey}'"
            if (not isinstance(entry, dict) or not isinstance(entry.get("traversal"), str)
                    or not isinstance(entry.get("params"), dict)
                    or not isinstance(entry.get("tuned", {}), dict)):
                raise _bad(path, f"{where} needs 'traversal' (a name) and 'params' (a mapping)")
            try:
                registry.resolve("traversal", entry["traversal"]).from_params(
                    dict(entry["params"]))
            except HyperGraphError as err:
                raise _bad(path, f"{where}: {err}") from None
    return data


def tuned_arms(tuned: Mapping[str, Any], datasets: Iterable[BenchDataset],
               methods: Iterable[BenchMethod], source: str | None = None,
               ) -> dict[str, list[BenchMethod]]:
    """The ``<method>_tuned`` arms to add per dataset key.

    ``source`` names the dataset whose tuned settings every dataset uses (a transfer); by
    default each dataset uses its own. Methods without a tuned entry, or whose tuning space was
    empty (their tuned arm would be the default arm), get none.
    """
    blocks = tuned["datasets"]
    methods = list(methods)
    out: dict[str, list[BenchMethod]] = {}
    for dataset in datasets:
        key = source or dataset.key
        if key not in blocks:
            raise ConfigError(
                f"--tuned holds no settings tuned on '{key}' (it has "
                f"{', '.join(sorted(blocks))}); tune on that dataset or use --tuned-dataset to "
                "transfer the settings of another.")
        entries = blocks[key]["methods"]
        arms = []
        for method in methods:
            entry = entries.get(method.key)
            if entry is None or not entry.get("tuned"):
                continue
            if entry["traversal"] != method.name:
                raise ConfigError(
                    f"--tuned: method '{method.key}' is traversal '{method.name}' here but "
                    f"'{entry['traversal']}' in the tuned settings; give the same --methods.")
            arms.append(BenchMethod(method.key + TUNED_SUFFIX, method.name,
                                    dict(entry["params"])))
        out[dataset.key] = arms
    return out
