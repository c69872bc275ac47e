"""The base of every pluggable module.

Modelled on scikit-learn's ``BaseEstimator``: constructors take keyword arguments, store them
unchanged under the same attribute names and hold no logic; derived state is built later (in
``setup``/``build``/``load``). Every keyword argument with a default is a hyperparameter and must
be declared in the class's ``space`` with the same default. Values are validated right after
construction, with messages naming the module, the parameter, the allowed range and the value.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import Any, ClassVar

from hypergraph.exceptions import InvalidParameterError, UnknownNameError
from hypergraph.spaces import FROM_SIGNATURE, Param

__all__ = ["Module", "hyperparameter_names"]


def hyperparameter_names(cls: type) -> list[str]:
    """Constructor keyword arguments that have a default (the hyperparameters of ``cls``)."""
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return [
        p.name for p in sig.parameters.values()
        if p.name != "self" and p.default is not inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _with_signature_defaults(cls: type, space: dict[str, Param]) -> dict[str, Param]:
    """``space`` with every default left out taken from ``cls``'s constructor signature."""
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    given = {p.name: p.default for p in sig.parameters.values()
             if p.default is not inspect.Parameter.empty}
    return {name: dataclasses.replace(param, default=given[name])
            if param.default is FROM_SIGNATURE and name in given else param
            for name, param in space.items()}


class Module:
    """Base class of all ten module kinds.

    Class attributes:
        kind: The module kind (set by :func:`hypergraph.registry.register`).
        name: The registered name.
        tags: What this module is or provides (e.g. ``"per_sample_loss"``).
        requires: Tags the other modules of a combination must provide. ``"a|b"`` means either.
        space: Hyperparameter declarations; keys equal the constructor's keyword arguments.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    tags: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[frozenset[str]] = frozenset()
    space: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("space")
        if own and any(p.default is FROM_SIGNATURE for p in own.values()):
            cls.space = _with_signature_defaults(cls, own)
        if "__init__" in cls.__dict__:
            original = cls.__dict__["__init__"]

            @functools.wraps(original)
            def __init__(self: Module, *args: Any, **kw: Any) -> None:  # noqa: N807
                original(self, *args, **kw)
                if type(self).__init__ is __init__:
                    self._validate_params()

            cls.__init__ = __init__  # type: ignore[method-assign,assignment]

    @classmethod
    def display_name(cls) -> str:
        """``kind 'name'`` as used in messages."""
        return f"{cls.kind or 'module'} '{cls.name or cls.__name__}'"

    def _validate_params(self) -> None:
        owner = f"{type(self).__name__} ({self.display_name()})"
        for pname, param in self.space.items():
            if not hasattr(self, pname):
                continue
            setattr(self, pname, param.validate(getattr(self, pname), owner, pname))

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters as given to the constructor."""
        return {p: getattr(self, p) for p in hyperparameter_names(type(self))}

    def set_params(self, **params: Any) -> Module:
        """Set hyperparameters (validated); returns ``self``."""
        valid = hyperparameter_names(type(self))
        for key in params:
            if key not in valid:
                raise UnknownNameError(f"parameter of {self.display_name()}", key, valid)
        for key, value in params.items():
            setattr(self, key, value)
        self._validate_params()
        return self

    def clone(self) -> Module:
        """A fresh, un-set-up instance with the same hyperparameters."""
        return type(self)(**self.get_params())

    @classmethod
    def from_params(cls, params: dict[str, Any] | None = None) -> Module:
        """Build from a mapping, rejecting unknown keys with the list of valid ones."""
        params = dict(params or {})
        valid = hyperparameter_names(cls)
        for key in params:
            if key not in valid:
                raise UnknownNameError(f"parameter of {cls.display_name()}", key, valid)
        try:
            return cls(**params)
        except TypeError as err:
            raise InvalidParameterError(f"Cannot build {cls.display_name()}: {err}") from err

    @classmethod
    def _contract_params(cls, tmp_dir: Path) -> dict[str, Any]:
        """Hyperparameters with which the contract-test kit builds this module on tiny data.

        The default (``{}``) builds the module with its defaults. Override it when the defaults
        cannot work without real input (a file path, a folder of images) or are too large for a
        quick check: write tiny input files under ``tmp_dir`` (an empty temporary folder) and
        return the parameters that point at them. See ``docs/contract-tests.md``.
        """
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
