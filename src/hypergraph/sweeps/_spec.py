"""Sweep files in W&B syntax: read, check against the module registry, turn into trials.

A sweep file is a W&B sweep configuration whose ``parameters`` name HyperGraph settings::

    method: bayes                       # grid | random | bayes
    metric: {name: val.accuracy, goal: maximize}
    run_cap: 30
    early_terminate: {type: hyperband, min_iter: 1, eta: 3}
    parameters:
      dataset: {value: digits}           # a fixed module
      traversal: {values: [ivalue, random_walk]}   # a module choice
      trainer.epochs: {value: 5}         # a fixed setting
      model.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 0.1}
      traversal.ivalue.explore: {min: 0.0, max: 0.5}   # only when traversal = ivalue

Everything is checked before any trial: unknown keys, distributions, modules and parameters,
ranges outside a module's declared space, parameters of modules that were not chosen, and
combinations whose tags do not fit. Errors name the key.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hypergraph import registry
from hypergraph.config import DEFAULTS, RUN_KINDS, RunConfig, config_from_mapping, load_yaml
from hypergraph.exceptions import ConfigError, HyperGraphError, UnknownNameError, closest
from hypergraph.kinds import SEARCHED_KINDS
from hypergraph.spaces import Categorical, Constant, Float, Int, Param, from_wandb

if TYPE_CHECKING:
    import optuna

__all__ = ["METHODS", "ParamSpec", "SweepSpec", "load_sweep", "space_from_modules",
           "sweep_from_mapping"]

#: Search methods and the Optuna sampler each maps to.
METHODS = ("grid", "random", "bayes", "ace")
#: Top-level keys of a W&B sweep file that a HyperGraph sweep reads. ``name`` and
#: ``description`` are kept as the sweep's name and note; ``program``, ``command``,
#: ``project`` and ``entity`` are only used by ``wandb agent`` (so the same file serves both).
TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "name",
            "description", "program", "command", "project", "entity")
_REFUSED_TOP = {
    "controller": "the local Optuna storage is the controller",
    "imputed": "runs are never imputed", "job": "launch jobs are not supported",
}
_METRICS = {"classification": ("loss", "accuracy"),
            "regression": ("loss", "mse", "mae", "r2")}
_MINIMISE = {"loss", "mse", "mae"}
#: Run settings that are not module kinds but may be fixed or searched.
_RUN_KEYS = ("seed", "device")


@dataclass(frozen=True)
class ParamSpec:
    """One searched or fixed hyperparameter of a sweep.

    Attributes:
        key: The key as written in the sweep file and used as the Optuna parameter name
            (``model.lr``, or ``traversal.ivalue.explore`` for a module-scoped one).
        kind: The module kind (``model``) or run setting (``seed``).
        module: The module this key is scoped to (``None``: any chosen module having ``param``).
        param: Parameter name in the module's space.
        spec: The distribution (a :class:`~hypergraph.spaces.Param`).
    """

    key: str
    kind: str
    module: str | None
    param: str
    spec: Param

    def applies(self, chosen: str) -> bool:
        """Whether this parameter is used when ``chosen`` is the module of its kind."""
        if self.kind in _RUN_KEYS:
            return True
        if self.module is not None:
            return chosen == self.module
        return self.param in registry.resolve(self.kind, chosen).space


@dataclass
class SweepSpec:
    """A checked sweep: method, objective, budget, module choices and parameters."""

    method: str
    metric: str  # the validation metric, e.g. "accuracy"
    goal: str  # "maximize" or "minimize"
    run_cap: int | None
    choices: dict[str, list[str]]
    params: list[ParamSpec]
    hyperband: dict[str, int] | None = None
    name: str | None = None
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        """Optuna study direction."""
        return self.goal

    def grid_size(self) -> int:
        """Number of points of the full grid (``method: grid``)."""
        size = 1
        for kind, names in self.choices.items():
            del kind
            size *= len(names)
        for p in self.params:
            size *= len(_grid_values(p))
        return size

    def budget(self) -> int:
        """The number of trials to finish: ``run_cap``, or the grid size for a grid."""
        if self.run_cap is not None:
            return self.run_cap
        if self.method == "grid":
            return self.grid_size()
        raise ConfigError("The sweep has no budget: give run_cap in the sweep file or "
                          "--trials N.")

    def to_json(self) -> str:
        """The sweep file (as read) in canonical JSON, stored with the study."""
        return json.dumps(self.raw, sort_keys=True, default=str)

    def to_yaml(self) -> str:
        """The sweep as a W&B sweep file (read back by :func:`sweep_from_mapping`)."""
        return yaml.safe_dump(self.raw, sort_keys=False)

    def sampler(self, seed: int | None = None) -> optuna.samplers.BaseSampler:
        """The Optuna sampler of ``method`` (grid -> Grid, random -> Random, bayes -> TPE,
        ace -> :class:`~hypergraph.ace.ACESampler` choosing the module slots, TPE the rest)."""
        import optuna

        if self.method == "grid":
            space: dict[str, list[Any]] = {
                kind: list(names) for kind, names in self.choices.items() if len(names) > 1}
            for p in self.params:
                if p.spec.searchable:
                    space[p.key] = [_optuna_value(v) for v in _grid_values(p)]
            return optuna.samplers.GridSampler(space, seed=seed)
        if self.method == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        from hypergraph.sweeps._store import quiet

        with quiet():  # multivariate, group and constant_liar are marked experimental
            tpe = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                             constant_liar=True)
        if self.method == "ace":
            from hypergraph.ace import ACESampler

            return ACESampler(space=_ace_space(self.choices), inner=tpe, seed=seed)
        return tpe

    def pruner(self) -> optuna.pruners.BasePruner:
        """HyperbandPruner for ``early_terminate: hyperband``, otherwise no pruning."""
        import optuna

        if self.hyperband is None:
            return optuna.pruners.NopPruner()
        max_iter: int | str = self.hyperband.get("max_iter", 0) or "auto"
        return optuna.pruners.HyperbandPruner(min_resource=self.hyperband["min_iter"],
                                              max_resource=max_iter,
                                              reduction_factor=self.hyperband["eta"])

    def suggest(self, trial: optuna.Trial) -> RunConfig:
        """Draw one configuration (define-by-run: module choices first, then their params)."""
        chosen: dict[str, str] = {}
        for kind in RUN_KINDS:
            names = self.choices.get(kind, [DEFAULTS[kind]])
            chosen[kind] = (names[0] if len(names) == 1
                            else str(trial.suggest_categorical(kind, names)))
        data: dict[str, Any] = {kind: {"name": name, "params": {}}
                                for kind, name in chosen.items()}
        for p in self.params:
            if not p.applies(chosen.get(p.kind, "")):
                continue
            value = _suggest(trial, p) if p.spec.searchable else p.spec.default
            value = list(value) if isinstance(value, tuple) else value
            if p.kind in _RUN_KEYS:
                data[p.kind] = value
            else:
                data[p.kind]["params"][p.param] = value
        return config_from_mapping(data, "(sweep trial)")


def _optuna_value(value: Any) -> Any:
    """A choice Optuna can store (None, bool, int, float, str); others as JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _grid_values(p: ParamSpec) -> list[Any]:
    spec = p.spec
    if isinstance(spec, Categorical):
        return list(spec.choices)
    if isinstance(spec, Int) and not spec.log:
        return list(range(spec.low, spec.high + 1, spec.step))
    if isinstance(spec, Float) and spec.step is not None and not spec.log:
        n = round((spec.high - spec.low) / spec.step)
        return [spec.low + i * spec.step for i in range(n + 1)]
    if not spec.searchable:
        return [spec.default]
    raise ConfigError(f"parameters.{p.key}: method 'grid' needs a finite set of values "
                      "('values', int_uniform or q_uniform), not a continuous distribution.")


def _suggest(trial: optuna.Trial, p: ParamSpec) -> Any:
    spec = p.spec
    if isinstance(spec, Int):
        return trial.suggest_int(p.key, spec.low, spec.high, step=spec.step if not spec.log
                                 else 1, log=spec.log)
    if isinstance(spec, Float):
        return trial.suggest_float(p.key, spec.low, spec.high, step=None if spec.log
                                   else spec.step, log=spec.log)
    if isinstance(spec, Categorical):
        stored = [_optuna_value(c) for c in spec.choices]
        value = trial.suggest_categorical(p.key, stored)
        return spec.choices[stored.index(value)]
    return spec.default


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (YAML in W&B syntax).

    Raises:
        ConfigError: the file is missing, not YAML, or fails a check (naming the key).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Sweep file '{path}' does not exist.")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"Sweep file '{path}' cannot be read as YAML: {err}") from None
    spec = sweep_from_mapping(data, f"'{path}'")
    if spec.name is None:
        spec.name = path.stem
    return spec


def sweep_from_mapping(data: Any, source: str = "") -> SweepSpec:
    """Check a sweep given as a mapping (see the module docstring for the format)."""
    where = f"Sweep {source}: " if source else "Sweep: "
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}expected a mapping with method, metric and parameters.")
    for key in data:
        if key not in TOP_KEYS:
            why = _REFUSED_TOP.get(str(key))
            hint = f" ({why})" if why else _near(str(key), TOP_KEYS)
            raise ConfigError(f"{where}unsupported key '{key}'{hint}. Supported keys: "
                              + ", ".join(TOP_KEYS) + ".")
    try:
        return _parse(dict(data))
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None


def _near(name: str, choices: tuple[str, ...] | list[str]) -> str:
    match = closest(name, choices)
    return f" (did you mean '{match}'?)" if match else ""


def _parse(data: dict[str, Any]) -> SweepSpec:
    method = data.get("method", "random")
    if method not in METHODS:
        raise ConfigError(f"method: unsupported method {method!r}{_near(str(method), METHODS)}; "
                          "choose one of " + ", ".join(METHODS) + ".")
    params_raw = data.get("parameters")
    if not isinstance(params_raw, Mapping) or not params_raw:
        raise ConfigError("parameters: expected a non-empty mapping of settings "
                          "(e.g. model.lr: {min: 0.0001, max: 0.1}).")
    choices: dict[str, list[str]] = {}
    rest: list[tuple[str, Any]] = []
    for key, value in params_raw.items():
        key = str(key)
        if key in RUN_KINDS:
            choices[key] = _module_choice(key, value)
        else:
            rest.append((key, value))
    params = [_param(key, value, choices) for key, value in rest]
    if method == "ace":
        _ace_space(choices)  # ACE skips combinations whose tags do not fit; one must fit
    else:
        _check_combinations(choices)
    metric, goal = _metric(data.get("metric"), choices)
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool)
                                or run_cap < 1):
        raise ConfigError(f"run_cap: must be a positive integer, got {run_cap!r}.")
    hyperband = _early_terminate(data.get("early_terminate"), params)
    spec = SweepSpec(method=method, metric=metric, goal=goal, run_cap=run_cap,
                     choices=choices, params=params, hyperband=hyperband,
                     name=data.get("name"), description=str(data.get("description", "")),
                     raw=data)
    if method == "grid":
        spec.grid_size()  # refuses continuous distributions, naming the key
    return spec


def _module_choice(kind: str, value: Any) -> list[str]:
    where = f"parameters.{kind}"
    if isinstance(value, Mapping) and "distribution" in value and value["distribution"] not in (
            "categorical", "constant"):
        raise ConfigError(f"{where}: a module choice takes 'value' or 'values' (module names), "
                          f"not the distribution {value['distribution']!r}.")
    param = from_wandb(value, where=where)
    names = (list(param.choices) if isinstance(param, Categorical) else [param.default])
    known = registry.names(kind)
    for name in names:
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{where}: {UnknownNameError(kind, str(name), known)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: module names repeated in {names}.")
    return names


def _param(key: str, value: Any, choices: dict[str, list[str]]) -> ParamSpec:
    where = f"parameters.{key}"
    parts = key.split(".")
    if key in _RUN_KEYS:
        spec = from_wandb(value, where=where)
        if key == "seed":
            for v in (list(spec.choices) if isinstance(spec, Categorical)
                      else [spec.default] if isinstance(spec, Constant)
                      else [getattr(spec, "low", None)]):
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ConfigError(f"{where}: seeds must be integers, got {v!r}.")
        return ParamSpec(key, key, None, key, spec)
    kind = parts[0]
    if kind not in RUN_KINDS or len(parts) not in (2, 3):
        hint = _near(kind, [*RUN_KINDS, *_RUN_KEYS])
        raise ConfigError(f"{where}: unknown key{hint}. Keys are a module kind ("
                          + ", ".join(RUN_KINDS) + "), KIND.PARAM (model.lr), "
                          "KIND.MODULE.PARAM (traversal.ivalue.explore), seed or device.")
    chosen = choices.get(kind, [DEFAULTS[kind]])
    if len(parts) == 3:
        module, name = parts[1], parts[2]
        if module not in registry.names(kind):
            raise ConfigError(f"{where}: {UnknownNameError(kind, module, registry.names(kind))}")
        if module not in chosen:
            raise ConfigError(f"{where}: parameter of the {kind} '{module}', which the sweep "
                              f"does not choose (parameters.{kind} chooses "
                              f"{', '.join(chosen)}).")
        owners = [module]
    else:
        module, name = None, parts[1]
        owners = [m for m in chosen if name in registry.resolve(kind, m).space]
        if not owners:
            others = [m for m in registry.names(kind) if name in registry.resolve(kind, m).space]
            if others:
                raise ConfigError(f"{where}: '{name}' is a parameter of the {kind} "
                                  f"{', '.join(others)}, which the sweep does not choose "
                                  f"(parameters.{kind} chooses {', '.join(chosen)}).")
    declared: dict[str, Param] = {}
    for owner in owners:
        space = registry.resolve(kind, owner).space
        if name not in space:
            unknown = UnknownNameError(f"parameter of {kind} {owner}", name, space)
            raise ConfigError(f"{where}: {unknown}")
        declared[owner] = space[name]
    if not declared:
        valid = sorted({p for m in chosen for p in registry.resolve(kind, m).space})
        unknown = UnknownNameError(f"parameter of {kind}", name, valid)
        raise ConfigError(f"{where}: {unknown}")
    spec = from_wandb(value, where=where)
    for owner, decl in declared.items():
        _within(spec, decl, f"{kind} '{owner}'", name, where)
    return ParamSpec(key, kind, module, name, spec)


def _within(spec: Param, declared: Param, owner: str, name: str, where: str) -> None:
    """Every value the sweep can draw must be valid for the module (checked by its space)."""
    if spec.searchable and not declared.searchable:
        raise ConfigError(f"{where}: the '{name}' parameter of {owner} is not searchable "
                          f"({declared.describe()}); give it as {{value: ...}}.")
    if isinstance(spec, Categorical):
        values = list(spec.choices)
    elif isinstance(spec, Int | Float):
        values = [spec.low, spec.high]
        if isinstance(declared, Int) and isinstance(spec, Float):
            raise ConfigError(f"{where}: the '{name}' parameter of {owner} is an int "
                              f"{declared.describe()}; use int_uniform or integer values.")
    else:
        values = [spec.default]
    for v in values:
        try:
            declared.validate(v, owner, name)
        except HyperGraphError as err:
            raise ConfigError(f"{where}: {err}") from None


def _ace_space(choices: dict[str, list[str]]) -> Any:
    """ACE's space for ``method: ace``: the kinds with several module choices are its slots;
    combinations whose tags do not fit are never proposed."""
    from hypergraph.ace import Space

    slots = {kind: names for kind, names in choices.items() if len(names) > 1}
    if not slots:
        raise ConfigError("method: ace chooses among module combinations; give at least one "
                          "kind several modules (e.g. traversal: {values: [ivalue, uniform]}).")
    fixed = {kind: (choices.get(kind) or [DEFAULTS[kind]])[0] for kind in RUN_KINDS
             if kind not in slots}
    try:
        return Space.from_registry(kinds=list(slots), allow=slots, fixed=fixed)
    except ConfigError as err:
        raise ConfigError(f"parameters: {err}") from None


def _check_combinations(choices: dict[str, list[str]]) -> None:
    from hypergraph.tags import problems

    kinds = list(RUN_KINDS)
    lists = [choices.get(k, [DEFAULTS[k]]) for k in kinds]
    for combo in itertools.product(*lists):
        classes = {k: registry.resolve(k, n) for k, n in zip(kinds, combo, strict=True)}
        found = problems(classes)
        if found and not (len(lists[kinds.index("traversal")]) == 1
                          and "traversal" not in choices):
            named = ", ".join(f"{k}={n}" for k, n in zip(kinds, combo, strict=True)
                              if k in choices)
            raise ConfigError(f"parameters: the combination {named} does not fit: "
                              + " ".join(found))


def _metric(raw: Any, choices: dict[str, list[str]]) -> tuple[str, str]:
    if raw is None:
        raw = {"name": "val.accuracy", "goal": "maximize"}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"metric: expected {{name: val.accuracy, goal: maximize}}, got {raw!r}.")
    for key in raw:
        if key not in ("name", "goal"):
            raise ConfigError(f"metric.{key}: unsupported key; metric takes name and goal.")
    name = str(raw.get("name", "val.accuracy"))
    split, _, metric = name.replace("/", ".").rpartition(".")
    if split not in ("", "val"):
        raise ConfigError(f"metric.name: '{name}' must be a validation metric (val.NAME): the "
                          "test split stays held out of the search.")
    tasks = set()
    for ds in choices.get("dataset", [DEFAULTS["dataset"]]):
        tags = registry.resolve("dataset", ds).tags
        tasks |= {t.split(":", 1)[1] for t in tags if t.startswith("task:")}
    known = sorted({m for t in (tasks or set(_METRICS)) for m in _METRICS.get(t, ())})
    if metric not in known:
        raise ConfigError(f"metric.name: {UnknownNameError('metric', metric, known)}")
    goal = raw.get("goal", "minimize" if metric in _MINIMISE else "maximize")
    if goal not in ("maximize", "minimize"):
        raise ConfigError(f"metric.goal: must be maximize or minimize, got {goal!r}.")
    return metric, str(goal)


def _early_terminate(raw: Any, params: list[ParamSpec]) -> dict[str, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or raw.get("type") != "hyperband":
        raise ConfigError("early_terminate: only {type: hyperband, min_iter, eta} is supported.")
    out: dict[str, int] = {"min_iter": 1, "eta": 3, "max_iter": 0}
    for key, value in raw.items():
        if key == "type":
            continue
        if key not in out:
            raise ConfigError(f"early_terminate.{key}: unsupported key (Optuna's "
                              "HyperbandPruner derives its brackets from min_iter, max_iter "
                              "and eta).")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"early_terminate.{key}: must be a positive integer, "
                              f"got {value!r}.")
        out[key] = value
    if out["eta"] < 2:
        raise ConfigError("early_terminate.eta: must be at least 2.")
    if not out["max_iter"]:
        epochs = next((p.spec for p in params if p.key == "trainer.epochs"), None)
        if isinstance(epochs, Constant):
            out["max_iter"] = int(epochs.default)
    return out


def space_from_modules(names: Mapping[str, str | None], *, epochs: int | None = None,
                       method: str = "bayes", metric: str = "val.accuracy",
                       trials: int | None = None) -> dict[str, Any]:
    """A sweep file (as a mapping) searching the declared spaces of the chosen modules.

    Module kinds not named keep the defaults; the searchable parameters of the kinds marked
    ``searched`` in :data:`hypergraph.kinds.RUN_KINDS` (dataloader, model, traversal, manager)
    are searched over their declared ranges (datasets are never searched: that would move the
    test split; nor is the store, which changes speed, not results).
    """
    parameters: dict[str, Any] = {}
    for kind in RUN_KINDS:
        name = names.get(kind) or DEFAULTS[kind]
        cls = registry.resolve(kind, name)  # unknown names: UnknownNameError
        parameters[kind] = {"value": name}
        if kind not in SEARCHED_KINDS:
            continue
        for pname, param in cls.space.items():
            if param.searchable:
                parameters[f"{kind}.{pname}"] = param.to_wandb()
    if epochs is not None:
        parameters["trainer.epochs"] = {"value": epochs}
    data: dict[str, Any] = {"method": method, "metric": {"name": metric},
                            "parameters": parameters}
    if trials is not None:
        data["run_cap"] = trials
    return data
