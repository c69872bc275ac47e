"""Hyperparameter spaces declared as data.

Each module declares ``space: dict[str, Param]`` on its class. A :class:`Param` knows its default
(which must equal the constructor's keyword default), validates a value with a message naming the
module, parameter, allowed range and value given, and converts to and from W&B sweep syntax.
Conversion to Optuna distributions lives in one converter (:func:`to_optuna`), so the spaces stay
independent of the optimiser.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypergraph.exceptions import ConfigError, InvalidParameterError

__all__ = [
    "FROM_SIGNATURE",
    "Categorical",
    "Constant",
    "Fixed",
    "Float",
    "Int",
    "Param",
    "from_wandb",
    "space_from_wandb",
    "space_to_wandb",
    "validate_value",
]


def _bad(owner: str, name: str, expected: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"The '{name}' parameter of {owner} must be {expected}. Got {value!r} instead."
    )


class _FromSignature:
    """The default of a :class:`Param` declared without one (see :data:`FROM_SIGNATURE`)."""

    def __repr__(self) -> str:
        return "FROM_SIGNATURE"


#: A ``Param`` declared without ``default`` takes the constructor's keyword default when its
#: module class is defined (``Module.__init_subclass__``), so a module writes its default once.
FROM_SIGNATURE: Any = _FromSignature()


@dataclass(frozen=True)
class Param:
    """Base of every hyperparameter declaration.

    Attributes:
        default: The value used when none is given; equals the constructor's keyword default.
            Omit it in a module's ``space``: the module class fills it in from its
            constructor's signature. When both are given they must agree (the contract kit
            and ``tests/test_module_defaults.py`` check it).
        help: One line describing the parameter (shown by ``hypergraph modules``).
    """

    default: Any = FROM_SIGNATURE
    help: str = ""

    @property
    def searchable(self) -> bool:
        """Whether a sweep can vary this parameter."""
        return True

    def validate(self, value: Any, owner: str, name: str) -> Any:
        """Return ``value`` (possibly coerced) or raise :class:`InvalidParameterError`."""
        raise NotImplementedError

    def describe(self) -> str:
        """Human-readable allowed range."""
        raise NotImplementedError

    def to_wandb(self) -> dict[str, Any]:
        """This parameter in W&B sweep syntax."""
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (NumPy integers and integral floats count; bools not)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


@dataclass(frozen=True)
class Int(Param):
    """An integer in ``[low, high]`` (log-uniform when ``log``; multiples of ``step`` from low)."""

    low: int = 0
    high: int = 1
    log: bool = False
    step: int = 1

    def validate(self, value: Any, owner: str, name: str) -> int:
        if not _is_int(value):
            raise _bad(owner, name, f"an int in {self.describe()}", value)
        value = int(value)
        if not self.low <= value <= self.high:
            raise _bad(owner, name, f"an int in {self.describe()}", value)
        return value

    def describe(self) -> str:
        extra = " (log)" if self.log else ""
        return f"[{self.low}, {self.high}]{extra}"

    def to_wandb(self) -> dict[str, Any]:
        if self.log:
            return {"distribution": "q_log_uniform_values", "min": self.low, "max": self.high,
                    "q": self.step}
        if self.step != 1:
            return {"distribution": "q_uniform", "min": self.low, "max": self.high,
                    "q": self.step}
        return {"distribution": "int_uniform", "min": self.low, "max": self.high}


@dataclass(frozen=True)
class Float(Param):
    """A float in ``[low, high]`` (log-uniform when ``log``; quantised by ``step`` if given)."""

    low: float = 0.0
    high: float = 1.0
    log: bool = False
    step: float | None = None

    def validate(self, value: Any, owner: str, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _bad(owner, name, f"a float in {self.describe()}", value)
        number = float(value)
        if math.isnan(number) or not self.low <= number <= self.high:
            raise _bad(owner, name, f"a float in {self.describe()}", value)
        return number

    def describe(self) -> str:
        extra = " (log)" if self.log else ""
        return f"[{self.low:g}, {self.high:g}]{extra}"

    def to_wandb(self) -> dict[str, Any]:
        if self.step is not None:
            kind = "q_log_uniform_values" if self.log else "q_uniform"
            return {"distribution": kind, "min": self.low, "max": self.high, "q": self.step}
        if self.log:
            return {"distribution": "log_uniform_values", "min": self.low, "max": self.high}
        return {"distribution": "uniform", "min": self.low, "max": self.high}


@dataclass(frozen=True)
class Categorical(Param):
    """One of a fixed list of choices (strings, numbers, booleans or tuples)."""

    choices: tuple[Any, ...] = field(default_factory=tuple)

    def validate(self, value: Any, owner: str, name: str) -> Any:
        if isinstance(value, list):
            value = tuple(value)
        for choice in self.choices:
            if (value == choice and type(value) is type(choice)) or (
                _is_int(value) and _is_int(choice) and value == choice
                and not isinstance(choice, bool)
            ):
                return choice
        raise _bad(owner, name, f"one of {self.describe()}", value)

    def describe(self) -> str:
        return "{" + ", ".join(repr(c) for c in self.choices) + "}"

    def to_wandb(self) -> dict[str, Any]:
        return {"values": [list(c) if isinstance(c, tuple) else c for c in self.choices]}


@dataclass(frozen=True)
class Constant(Param):
    """A single allowed value: part of the space, never varied by a sweep."""

    @property
    def searchable(self) -> bool:
        return False

    def validate(self, value: Any, owner: str, name: str) -> Any:
        if isinstance(value, list):
            value = tuple(value)
        if value != self.default:
            raise _bad(owner, name, f"the constant {self.default!r}", value)
        return self.default

    def describe(self) -> str:
        return f"constant {self.default!r}"

    def to_wandb(self) -> dict[str, Any]:
        value = self.default
        return {"value": list(value) if isinstance(value, tuple) else value}


@dataclass(frozen=True)
class Fixed(Param):
    """A free, non-searchable setting checked by type only (paths, column names, devices).

    ``types`` lists accepted Python types; ``None`` is accepted when ``default`` is ``None``.
    """

    types: tuple[type, ...] = (str,)

    @property
    def searchable(self) -> bool:
        return False

    def validate(self, value: Any, owner: str, name: str) -> Any:
        if value is None and self.default is None:
            return None
        if isinstance(value, list) and tuple in self.types:
            value = tuple(value)
        if not isinstance(value, self.types) or (
            isinstance(value, bool) and bool not in self.types
        ):
            raise _bad(owner, name, f"of type {self.describe()}", value)
        return value

    def describe(self) -> str:
        names = " or ".join(t.__name__ for t in self.types)
        return names + (" or None" if self.default is None else "")

    def to_wandb(self) -> dict[str, Any]:
        value = self.default
        return {"value": list(value) if isinstance(value, tuple) else value}


def validate_value(space: Mapping[str, Param], owner: str, name: str, value: Any) -> Any:
    """Validate one value against ``space[name]``; unknown names list the valid ones."""
    if name not in space:
        from hypergraph.exceptions import UnknownNameError

        raise UnknownNameError(f"parameter of {owner}", name, space.keys())
    return space[name].validate(value, owner, name)


_SUPPORTED = ("constant", "categorical", "int_uniform", "uniform", "log_uniform_values",
              "q_uniform", "q_log_uniform_values")

_WANDB_KEYS = {"distribution", "min", "max", "values", "value", "q", "mu", "sigma",
               "probabilities"}


def _number(value: Any) -> Any:
    """``value`` with numeric strings such as ``"1e-4"`` (YAML 1.1 reads them so) made floats."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def from_wandb(spec: Mapping[str, Any], default: Any = None, where: str = "") -> Param:
    """Read one parameter written in W&B sweep syntax.

    Supported: ``value``, ``values``, and ``distribution`` in ``int_uniform``, ``uniform``,
    ``log_uniform_values``, ``q_uniform``, ``q_log_uniform_values``, ``categorical``,
    ``constant``. When ``distribution`` is missing, W&B's inference rules apply (``values`` ->
    categorical, ``value`` -> constant, int ``min``/``max`` -> ``int_uniform``, else ``uniform``).

    Args:
        spec: The mapping from the sweep file.
        default: Default to attach (defaults to the first value or the low bound).
        where: Location used in error messages (e.g. ``"parameters.model.lr"``).
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where or 'parameter'}: expected a mapping in W&B sweep syntax "
                          f"(value / values / distribution), got {spec!r}.")
    unknown = set(spec) - _WANDB_KEYS
    if unknown:
        raise ConfigError(f"{where or 'parameter'}: unknown W&B sweep keys {sorted(unknown)}; "
                          f"allowed: {sorted(_WANDB_KEYS)}.")
    dist = spec.get("distribution")
    if dist is None:
        if "values" in spec:
            dist = "categorical"
        elif "value" in spec:
            dist = "constant"
        elif "min" in spec and "max" in spec:
            dist = "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) and isinstance(
                spec["min"], int) and isinstance(spec["max"], int) else "uniform"
        else:
            raise ConfigError(f"{where or 'parameter'}: cannot infer a distribution from "
                              f"{dict(spec)}; give 'value', 'values' or 'min'/'max'.")
    if dist not in _SUPPORTED:
        raise ConfigError(
            f"{where or 'parameter'}: unsupported W&B distribution {dist!r}. Supported: "
            + ", ".join(_SUPPORTED) + "."
        )
    try:
        if dist == "constant":
            value = spec["value"]
            value = tuple(value) if isinstance(value, list) else value
            return Constant(default=value)
        if dist == "categorical":
            values = spec["values"]
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where or 'parameter'}: 'values' must be a non-empty list, "
                                  f"got {values!r}.")
            choices = tuple(tuple(v) if isinstance(v, list) else v for v in values)
            return Categorical(default=choices[0] if default is None else default,
                               choices=choices)
        low, high = spec["min"], spec["max"]
    except KeyError as err:
        raise ConfigError(f"{where or 'parameter'}: distribution '{dist}' needs the key "
                          f"{err.args[0]!r}.") from None
    low, high = _number(low), _number(high)
    if not isinstance(low, int | float) or not isinstance(high, int | float) or low > high:
        raise ConfigError(f"{where or 'parameter'}: 'min' and 'max' must be numbers with "
                          f"min <= max, got min={low!r}, max={high!r}.")
    q = _number(spec.get("q"))
    if q is not None and (not isinstance(q, int | float) or isinstance(q, bool) or q <= 0):
        raise ConfigError(f"{where or 'parameter'}: 'q' must be a positive number, got {q!r}.")
    if dist == "int_uniform":
        if not (_is_int(low) and _is_int(high)):
            raise ConfigError(f"{where or 'parameter'}: int_uniform needs integer 'min' and "
                              f"'max', got min={low!r}, max={high!r}.")
        return Int(default=int(low) if default is None else default, low=int(low), high=int(high))
    if dist == "uniform":
        return Float(default=float(low) if default is None else default, low=float(low),
                     high=float(high))
    if dist == "log_uniform_values":
        if low <= 0:
            raise ConfigError(f"{where or 'parameter'}: log_uniform_values needs min > 0, "
                              f"got {low!r}.")
        return Float(default=float(low) if default is None else default, low=float(low),
                     high=float(high), log=True)
    # q_uniform or q_log_uniform_values: the only ones left (dist is in _SUPPORTED)
    log = dist == "q_log_uniform_values"
    if log and low <= 0:
        raise ConfigError(f"{where or 'parameter'}: {dist} needs min > 0, got {low!r}.")
    q = 1 if q is None else q
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, q)):
        return Int(default=int(low) if default is None else default, low=int(low),
                   high=int(high), log=log, step=int(q))
    return Float(default=float(low) if default is None else default, low=float(low),
                 high=float(high), log=log, step=float(q))


def space_to_wandb(space: Mapping[str, Param]) -> dict[str, dict[str, Any]]:
    """A whole module space in W&B sweep ``parameters`` syntax."""
    return {name: param.to_wandb() for name, param in space.items()}


def space_from_wandb(spec: Mapping[str, Any], where: str = "parameters") -> dict[str, Param]:
    """Read a W&B ``parameters`` mapping into a space."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping of parameter names, got {spec!r}.")
    return {name: from_wandb(sub, where=f"{where}.{name}") for name, sub in spec.items()}


def to_optuna(param: Param, name: str) -> Any:
    """Convert one searchable parameter to an Optuna distribution (imports Optuna lazily)."""
    import optuna.distributions as d

    if isinstance(param, Int):
        return d.IntDistribution(param.low, param.high, log=param.log,
                                 step=1 if param.log else param.step)
    if isinstance(param, Float):
        return d.FloatDistribution(param.low, param.high, log=param.log,
                                   step=None if param.log else param.step)
    if isinstance(param, Categorical):
        return d.CategoricalDistribution(list(param.choices))
    raise ValueError(f"Parameter '{name}' ({type(param).__name__}) is not searchable.")
