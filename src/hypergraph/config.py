"""Run configuration: which module of each kind, with which hyperparameters.

A run config is YAML (or a mapping) validated by pydantic::

    seed: 0
    device: auto
    dataset: {name: digits, params: {test_fraction: 0.2}}
    store: auto                     # or memory, or {name: file, params: {cache_size: 512}}
    dataloader: {name: knn, params: {k: 10}}
    model: mlp                      # shorthand for {name: mlp}
    traversal: ivalue
    manager: static
    trainer: {name: standard, params: {epochs: 30}}

``--set kind.param=value`` overrides one hyperparameter; values are parsed as YAML scalars.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hypergraph.exceptions import ConfigError, UnknownNameError
from hypergraph.kinds import DEFAULTS, FALLBACK_TRAVERSAL, KIND_NAMES

__all__ = ["DEFAULTS", "FALLBACK_TRAVERSAL", "ModuleChoice", "RunConfig", "YamlLoader",
           "apply_overrides", "load_config", "load_yaml"]

RUN_KINDS = KIND_NAMES  # the section names, in order (see :mod:`hypergraph.kinds`)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads YAML 1.2 floats such as ``1e-4`` as numbers.

    Plain PyYAML follows YAML 1.1, where ``1e-4`` (no dot) is a string, so ``lr: 1e-4`` would
    be rejected as "not a float".
    """


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`YamlLoader` (raises ``yaml.YAMLError`` when malformed)."""
    return yaml.load(text, Loader=YamlLoader)  # a SafeLoader subclass: no arbitrary objects


class ModuleChoice(BaseModel):
    """One module: its registered name and hyperparameters."""

    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _choice(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class RunConfig(BaseModel):
    """A whole run: seed, device, plugins and one module per kind."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    device: str = "auto"
    plugins: list[str] = Field(default_factory=list)
    #: Run loggers (see ``hypergraph.loggers.LOGGERS``): console, jsonl, csv, wandb.
    loggers: list[str] = Field(default_factory=lambda: ["jsonl"])
    dataset: ModuleChoice = ModuleChoice(name=DEFAULTS["dataset"])
    store: ModuleChoice = ModuleChoice(name=DEFAULTS["store"])
    dataloader: ModuleChoice = ModuleChoice(name=DEFAULTS["dataloader"])
    model: ModuleChoice = ModuleChoice(name=DEFAULTS["model"])
    traversal: ModuleChoice = ModuleChoice(name=DEFAULTS["traversal"])
    manager: ModuleChoice = ModuleChoice(name=DEFAULTS["manager"])
    trainer: ModuleChoice = ModuleChoice(name=DEFAULTS["trainer"])

    _shorthand = field_validator(*RUN_KINDS, mode="before")(_choice)
    # One section per run kind of hypergraph.kinds.RUN_KINDS, written out for static typing;
    # the check after the class keeps the two from drifting apart.

    def choice(self, kind: str) -> ModuleChoice:
        """The module chosen for ``kind``."""
        choice: ModuleChoice = getattr(self, kind)
        return choice

    def to_yaml(self) -> str:
        """YAML that :func:`load_config` reads back into an equal config."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


_sections = [name for name in RunConfig.model_fields if name in DEFAULTS or isinstance(
    RunConfig.model_fields[name].default, ModuleChoice)]
if tuple(_sections) != RUN_KINDS or any(
        RunConfig.model_fields[k].default.name != DEFAULTS[k] for k in RUN_KINDS):
    raise RuntimeError("RunConfig's module sections must match hypergraph.kinds.RUN_KINDS")


def _format_validation(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = ("unknown key; valid top-level keys: seed, device, plugins, loggers, "
                   + ", ".join(RUN_KINDS))
        parts.append(f"{loc}: {msg}")
    return f"Invalid run config {source}: " + "; ".join(parts) + "."


def config_from_mapping(data: Any, source: str = "") -> RunConfig:
    """Validate a mapping as a :class:`RunConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"Run config {source} must be a YAML mapping of keys such as 'seed' "
                          f"and 'model', got {type(data).__name__}.")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, source)) from None


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML run config; missing or malformed files raise :class:`ConfigError`."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"Config file '{path}' is a folder; give the YAML file inside it "
                          "(e.g. a run folder's config.yaml).")
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Config file '{path}' cannot be read as UTF-8 text: {err}.") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"Config file '{path}' is not valid YAML{where}: {problem}.") from None
    return config_from_mapping(data, f"'{path}'")


def parse_value(text: str) -> Any:
    """A ``--set`` value as YAML (``0.01`` -> float, ``[64, 64]`` -> list, ``true`` -> bool)."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``kind.param=value`` (or ``seed=N``/``device=D``) overrides, returning a new config.

    Unknown kinds are reported with the valid choices; unknown parameters are reported when the
    module is built (it knows its parameters).
    """
    data = config.model_dump()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE such as model.lr=0.01, got '{item}'.")
        key, text = item.split("=", 1)
        key = key.strip()
        value = parse_value(text.strip())
        if key in ("seed", "device"):
            data[key] = value
            continue
        if "." not in key:
            raise ConfigError(f"--set key '{key}' must look like KIND.PARAM (e.g. model.lr) or be "
                              "'seed' or 'device'.")
        kind, param = key.split(".", 1)
        if kind not in RUN_KINDS:
            raise UnknownNameError("--set module kind", kind, RUN_KINDS)
        if param == "name":
            data[kind] = {"name": value, "params": {}}
        else:
            data[kind]["params"][param] = value
    return config_from_mapping(data, "(after --set)")
