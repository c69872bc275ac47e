"""House rule over EVERY registered module: the space mirrors the constructor's keyword defaults.

The module list comes from the registry at collection time, so modules added later (built-in or
plugins found through entry points) are covered without editing this file.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest

from hypergraph import registry
from hypergraph.base import Module, hyperparameter_names
from hypergraph.exceptions import InvalidParameterError
from hypergraph.spaces import Param

MODULES = registry.all_modules()


def _id(cls: type[Module]) -> str:
    return f"{cls.kind}:{cls.name}"


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) or {type(a), type(b)} <= {int, float}) and a == b


def _init_params(cls: type[Module]) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return {n: p for n, p in sig.parameters.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def test_registry_is_not_empty() -> None:
    kinds = {cls.kind for cls in MODULES}
    assert set(registry.KINDS) <= kinds, f"kinds without a module: {set(registry.KINDS) - kinds}"


@pytest.mark.parametrize("cls", MODULES, ids=_id)
def test_space_mirrors_constructor_defaults(cls: type[Module]) -> None:
    params = _init_params(cls)
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()), \
        f"{_id(cls)}: constructors take explicit keyword arguments, not *args/**kwargs"
    for name in hyperparameter_names(cls):
        assert name in cls.space, (
            f"{_id(cls)}: keyword argument '{name}' has a default but is not declared in `space`")
        default = params[name].default
        declared = cls.space[name].default
        assert _equal(declared, default), (
            f"{_id(cls)}: space['{name}'].default is {declared!r} but the constructor's "
            f"default is {default!r}")
    for name, param in cls.space.items():
        assert isinstance(param, Param), f"{_id(cls)}: space['{name}'] is not a Param"
        assert name in params, f"{_id(cls)}: space declares '{name}', not a constructor argument"
        assert params[name].default is not inspect.Parameter.empty, (
            f"{_id(cls)}: space declares '{name}' but the constructor gives it no default")


@pytest.mark.parametrize("cls", MODULES, ids=_id)
def test_space_defaults_validate(cls: type[Module]) -> None:
    owner = f"{cls.__name__} ({cls.display_name()})"
    for name, param in cls.space.items():
        value = param.validate(param.default, owner, name)
        assert _equal(value, param.default) or (
            isinstance(param.default, list) and tuple(param.default) == value)
        assert isinstance(param.describe(), str) and param.describe()


@pytest.mark.parametrize("cls", MODULES, ids=_id)
def test_construct_with_defaults(cls: type[Module]) -> None:
    required = [n for n, p in _init_params(cls).items() if p.default is inspect.Parameter.empty]
    if required:
        pytest.skip(f"{_id(cls)} needs data to construct ({', '.join(required)})")
    module = cls()
    params = module.get_params()
    assert set(params) == set(cls.space) | set(hyperparameter_names(cls))
    for name, value in params.items():
        # stored unchanged under the same name
        assert _equal(value, cls.space[name].default), f"{_id(cls)}.{name} = {value!r}"
    clone = module.clone()
    assert type(clone) is cls and clone.get_params() == params
    assert module.from_params(params).get_params() == params


def test_space_default_comes_from_the_signature_when_left_out() -> None:
    from hypergraph.spaces import FROM_SIGNATURE, Float, Int

    shared = Int(low=1, high=64, help="walkers")

    class Walker(Module):
        space = {"walkers": shared, "teleport": Float(default=0.1, low=0.0, high=1.0)}

        def __init__(self, walkers: int = 8, teleport: float = 0.1) -> None:
            self.walkers = walkers
            self.teleport = teleport

    class Other(Walker):
        space = {"walkers": shared, "teleport": Float(low=0.0, high=1.0)}

        def __init__(self, walkers: int = 32, teleport: float = 0.5) -> None:
            super().__init__(walkers, teleport)

    assert Walker.space["walkers"].default == 8 and Walker.space["teleport"].default == 0.1
    assert Other.space["walkers"].default == 32 and Other.space["teleport"].default == 0.5
    assert shared.default is FROM_SIGNATURE  # the shared declaration is left untouched
    assert Walker().get_params() == {"walkers": 8, "teleport": 0.1}
    with pytest.raises(InvalidParameterError, match="walkers"):
        Other(walkers=0)
