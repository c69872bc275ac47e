"""Hyperparameter spaces: validation messages and W&B sweep syntax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypergraph import registry
from hypergraph.config import load_yaml
from hypergraph.exceptions import ConfigError, InvalidParameterError, UnknownNameError
from hypergraph.spaces import (
    Categorical,
    Constant,
    Fixed,
    Float,
    Int,
    Param,
    from_wandb,
    space_from_wandb,
    space_to_wandb,
    validate_value,
)

OWNER = "KNNDataloader (dataloader 'knn')"


def rejects(param: Param, value: Any, *fragments: str) -> str:
    with pytest.raises(InvalidParameterError) as info:
        param.validate(value, OWNER, "k")
    msg = str(info.value)
    assert msg.startswith("The 'k' parameter of KNNDataloader (dataloader 'knn') must be ")
    assert msg.endswith(f"Got {value!r} instead.")
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


# --------------------------------------------------------------------------- validation
def test_int() -> None:
    p = Int(default=10, low=1, high=200)
    assert p.validate(5, OWNER, "k") == 5
    assert p.validate(7.0, OWNER, "k") == 7 and isinstance(p.validate(7.0, OWNER, "k"), int)
    assert p.validate(1, OWNER, "k") == 1 and p.validate(200, OWNER, "k") == 200
    for bad in (0, 201, -3, 2.5, True, "5", None, [5], np.bool_(True)):
        rejects(p, bad, "an int in [1, 200]")
    # NumPy scalars (e.g. from a sampler) are accepted and stored as plain Python ints
    assert type(p.validate(np.int64(12), OWNER, "k")) is int
    assert p.validate(np.float32(12.0), OWNER, "k") == 12
    assert Int(default=16, low=1, high=64, log=True).describe() == "[1, 64] (log)"


def test_float() -> None:
    p = Float(default=0.1, low=0.0, high=0.8)
    assert p.validate(0, OWNER, "k") == 0.0 and isinstance(p.validate(0, OWNER, "k"), float)
    assert p.validate(0.8, OWNER, "k") == 0.8
    for bad in (-3, 0.81, math.nan, math.inf, True, "0.1", None, np.bool_(False)):
        rejects(p, bad, "a float in [0, 0.8]")
    assert type(p.validate(np.float32(0.5), OWNER, "k")) is float
    assert p.validate(np.int64(0), OWNER, "k") == 0.0
    lr = Float(default=1e-3, low=1e-5, high=1.0, log=True)
    rejects(lr, -3, "a float in [1e-05, 1] (log)")


def test_categorical() -> None:
    p = Categorical(default="cosine", choices=("cosine", "euclidean"))
    assert p.validate("euclidean", OWNER, "k") == "euclidean"
    rejects(p, "manhattan", "one of {'cosine', 'euclidean'}")
    rejects(p, 1, "one of")
    nums = Categorical(default=1, choices=(1, 2, (3, 4)))
    assert nums.validate(2.0, OWNER, "k") == 2
    assert nums.validate([3, 4], OWNER, "k") == (3, 4)
    rejects(nums, True, "one of {1, 2, (3, 4)}")  # a bool is not the int 1
    assert nums.validate(np.int64(2), OWNER, "k") == 2
    flags = Categorical(default=False, choices=(False, True))
    assert flags.validate(True, OWNER, "k") is True
    rejects(flags, 1, "one of {False, True}")


def test_constant_and_fixed() -> None:
    c = Constant(default=(64, 64))
    assert c.validate([64, 64], OWNER, "k") == (64, 64) and not c.searchable
    rejects(c, (32,), "the constant (64, 64)")
    f = Fixed(default=None, types=(str,))
    assert f.validate(None, OWNER, "k") is None and f.validate("a.csv", OWNER, "k") == "a.csv"
    rejects(f, 3, "of type str or None")
    g = Fixed(default=1, types=(int,))
    rejects(g, True, "of type int")
    rejects(g, None, "of type int")
    assert Fixed(default=(), types=(tuple,)).validate(["a"], OWNER, "k") == ("a",)


def test_validate_value_unknown_name() -> None:
    space = registry.resolve("model", "mlp").space
    with pytest.raises(UnknownNameError) as info:
        validate_value(space, "MLPModel", "lrr", 0.1)
    assert "Did you mean 'lr'?" in str(info.value) and "width" in str(info.value)
    with pytest.raises(InvalidParameterError) as err:
        validate_value(space, "MLPModel", "lr", -3)
    assert str(err.value) == ("The 'lr' parameter of MLPModel must be a float in "
                              "[1e-05, 1] (log). Got -3 instead.")


def test_module_construction_validates() -> None:
    cls = registry.resolve("dataloader", "knn")
    with pytest.raises(InvalidParameterError) as info:
        cls(k=0)
    msg = str(info.value)
    assert all(s in msg for s in ("KNNDataloader", "'k'", "[1, 200]", "Got 0"))
    assert cls(k=3.0).k == 3  # coerced through the space


# --------------------------------------------------------------------------- W&B syntax
@pytest.mark.parametrize(("spec", "expected"), [
    ({"value": 3}, Constant(default=3)),
    ({"value": [64, 64]}, Constant(default=(64, 64))),
    ({"values": ["a", "b"]}, Categorical(default="a", choices=("a", "b"))),
    ({"values": [[1, 2], [3]]}, Categorical(default=(1, 2), choices=((1, 2), (3,)))),
    ({"distribution": "categorical", "values": [1, 2]}, Categorical(default=1, choices=(1, 2))),
    ({"distribution": "constant", "value": "x"}, Constant(default="x")),
    ({"distribution": "int_uniform", "min": 1, "max": 9}, Int(default=1, low=1, high=9)),
    ({"distribution": "uniform", "min": 0, "max": 1}, Float(default=0.0, low=0.0, high=1.0)),
    ({"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
     Float(default=1e-4, low=1e-4, high=0.1, log=True)),
    ({"distribution": "q_uniform", "min": 0, "max": 100, "q": 10},
     Int(default=0, low=0, high=100, step=10)),
    ({"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
     Float(default=0.0, low=0.0, high=1.0, step=0.25)),
    ({"distribution": "q_uniform", "min": 0.0, "max": 2.0, "q": 1.0},  # floats stay floats
     Float(default=0.0, low=0.0, high=2.0, step=1.0)),
    ({"distribution": "q_log_uniform_values", "min": 8, "max": 512, "q": 8},
     Int(default=8, low=8, high=512, log=True, step=8)),
    ({"distribution": "q_log_uniform_values", "min": 0.001, "max": 1.0, "q": 0.001},
     Float(default=0.001, low=0.001, high=1.0, log=True, step=0.001)),
    # inference without 'distribution'
    ({"min": 1, "max": 5}, Int(default=1, low=1, high=5)),
    ({"min": 0.5, "max": 5}, Float(default=0.5, low=0.5, high=5.0)),
    ({"min": "1e-4", "max": "1e-2", "distribution": "log_uniform_values"},
     Float(default=1e-4, low=1e-4, high=1e-2, log=True)),
])
def test_from_wandb(spec: dict[str, Any], expected: Param) -> None:
    assert from_wandb(spec) == expected


def test_from_wandb_default() -> None:
    assert from_wandb({"min": 1, "max": 5}, default=3).default == 3
    assert from_wandb({"values": [1, 2]}, default=2).default == 2


@pytest.mark.parametrize(("spec", "fragment"), [
    ("uniform", "expected a mapping"),
    ([1, 2], "expected a mapping"),
    ({"distribution": "uniform", "min": 0, "max": 1, "bogus": 1}, "unknown W&B sweep keys"),
    ({"q": 2}, "cannot infer a distribution"),
    ({"min": 1}, "cannot infer a distribution"),
    ({"distribution": "uniform", "min": 0}, "needs the key 'max'"),
    ({"distribution": "int_uniform", "max": 3}, "needs the key 'min'"),
    ({"distribution": "categorical"}, "needs the key 'values'"),
    ({"distribution": "constant"}, "needs the key 'value'"),
    ({"values": []}, "non-empty list"),
    ({"values": "abc"}, "non-empty list"),
    ({"min": 5, "max": 1}, "min <= max"),
    ({"min": "a", "max": 1}, "must be numbers"),
    ({"distribution": "log_uniform_values", "min": 0, "max": 1}, "min > 0"),
    ({"distribution": "q_log_uniform_values", "min": 0, "max": 8, "q": 1}, "min > 0"),
    ({"distribution": "int_uniform", "min": 0.5, "max": 3}, "integer"),
    ({"distribution": "q_uniform", "min": 0, "max": 3, "q": 0}, "'q' must be a positive"),
    ({"distribution": "normal", "mu": 0, "sigma": 1}, "unsupported W&B distribution"),
    ({"distribution": "log_uniform", "min": -5, "max": 0}, "unsupported W&B distribution"),
])
def test_from_wandb_malformed(spec: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_wandb(spec, where="parameters.model.lr")
    msg = str(info.value)
    assert fragment in msg, msg
    assert msg.startswith("parameters.model.lr: ")


SPACES = [(cls, name, p) for cls in registry.all_modules() for name, p in cls.space.items()]


@pytest.mark.parametrize(("cls", "name", "param"), SPACES,
                         ids=[f"{c.kind}:{c.name}.{n}" for c, n, _ in SPACES])
def test_registered_space_round_trips_through_wandb(cls: type, name: str, param: Param) -> None:
    back = from_wandb(param.to_wandb(), default=param.default)
    if param.searchable:
        assert type(back) is type(param)
        assert back.to_wandb() == param.to_wandb()
        assert back.describe() == param.describe()
        assert back.validate(param.default, "M", name) == param.validate(param.default, "M", name)
    else:
        assert isinstance(back, Constant) and back.default == param.validate(param.default, "M",
                                                                           name)


@st.composite
def params(draw: st.DrawFn) -> Param:
    kind = draw(st.sampled_from(["int", "float", "cat", "const"]))
    if kind == "int":
        low = draw(st.integers(1, 100))
        high = draw(st.integers(low, 1000))
        log = draw(st.booleans())
        step = draw(st.integers(1, 5))
        return Int(default=low, low=low, high=high, log=log, step=step)
    if kind == "float":
        low = draw(st.floats(1e-6, 10.0))
        high = draw(st.floats(low, 100.0))
        log = draw(st.booleans())
        step = draw(st.none() | st.sampled_from([0.5, 1.0, 2.0]))
        return Float(default=low, low=low, high=high, log=log, step=step)
    if kind == "cat":
        choices = tuple(draw(st.lists(st.text(min_size=1, max_size=4) | st.integers(),
                                      min_size=1, max_size=4, unique=True)))
        return Categorical(default=choices[0], choices=choices)
    return Constant(default=draw(st.integers() | st.text(max_size=4)))


@settings(max_examples=50, deadline=None)
@given(params())
def test_space_wandb_round_trip(param: Param) -> None:
    space = {"p": param}
    assert space_from_wandb(space_to_wandb(space)) == space


def test_yaml_sweep_parameters_block() -> None:
    text = """
    method: random
    metric: {name: val_accuracy, goal: maximize}
    parameters:
      lr:
        distribution: log_uniform_values
        min: 1e-5
        max: 1.0e-1
      width:
        values: [64, 128, 256]
      depth:
        distribution: int_uniform
        min: 1
        max: 4
      dropout:
        min: 0.0
        max: 0.5
      optimizer:
        value: adam
      batch_size:
        distribution: q_log_uniform_values
        min: 16
        max: 256
        q: 16
    """
    sweep = load_yaml(text)
    space = space_from_wandb(sweep["parameters"])
    assert space["lr"] == Float(default=1e-5, low=1e-5, high=0.1, log=True)
    assert space["width"] == Categorical(default=64, choices=(64, 128, 256))
    assert space["depth"] == Int(default=1, low=1, high=4)
    assert space["dropout"] == Float(default=0.0, low=0.0, high=0.5)
    assert space["optimizer"] == Constant(default="adam")
    assert space["batch_size"] == Int(default=16, low=16, high=256, log=True, step=16)
    # values drawn from the file's space are accepted by the module's own space
    mlp_space = registry.resolve("model", "mlp").space
    for name in ("lr", "dropout", "optimizer"):
        value = space[name].default
        mlp_space[name].validate(value, "MLPModel", name)
    with pytest.raises(ConfigError, match=r"parameters\.lr"):
        space_from_wandb({"lr": {"distribution": "uniform"}})
    with pytest.raises(ConfigError, match="expected a mapping"):
        space_from_wandb(["lr"])  # type: ignore[arg-type]
