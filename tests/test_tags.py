"""Tag validation and enumeration of combinations, with temporary dummy modules."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

import pytest

from hypergraph import registry
from hypergraph.base import Module
from hypergraph.config import DEFAULTS
from hypergraph.exceptions import IncompatibleModulesError, UnknownNameError
from hypergraph.tags import (
    COMBINATION_KINDS,
    check_combination,
    enumerate_combinations,
    problems,
    providers,
)


def _make(kind: str, name: str, tags: set[str],
          requires: set[str] | frozenset[str] = frozenset()) -> type[Module]:
    cls = type(f"Dummy_{name}", (Module,), {
        "tags": frozenset(tags), "requires": frozenset(requires),
        "__init__": lambda self: None, "__doc__": f"Dummy {kind}."})
    return registry.register(kind, name)(cls)  # type: ignore[arg-type]


@pytest.fixture
def dummies() -> Iterator[dict[str, type[Module]]]:
    """A small world of dummy modules with known valid and invalid combinations."""
    specs = {
        # name: (kind, tags, requires)
        "tt_data_vec": ("dataset", {"tt:vector", "tt:classification"}, set()),
        "tt_data_img": ("dataset", {"tt:image", "tt:classification"}, set()),
        "tt_loader": ("dataloader", {"tt:graph"}, {"tt:vector|tt:image"}),
        "tt_model_vec": ("model", {"tt:per_sample"}, {"tt:vector", "tt:classification"}),
        "tt_model_any": ("model", set(), {"tt:graph"}),
        "tt_walk": ("traversal", {"tt:walk"}, {"tt:graph", "tt:per_sample"}),
        "tt_self": ("traversal", {"tt:selfish"}, {"tt:selfish"}),
    }
    made = {name: _make(kind, name, tags, req) for name, (kind, tags, req) in specs.items()}
    yield made
    for name, (kind, _, _) in specs.items():
        registry.unregister(kind, name)


def independent_valid(combo: Mapping[str, type[Module]]) -> bool:
    """The rule written out again: every requirement met by some OTHER module's tags."""
    for kind, cls in combo.items():
        others = set().union(*(set(c.tags) for k, c in combo.items() if k != kind))
        for req in cls.requires:
            if not any(alt in others for alt in req.split("|")):
                return False
    return True


def test_default_combination_is_valid() -> None:
    combo = {kind: registry.resolve(kind, name) for kind, name in DEFAULTS.items()}
    check_combination(combo)
    assert problems(combo) == []


def test_missing_tag_is_explained_with_providers(dummies: dict[str, type[Module]]) -> None:
    combo = {"dataset": dummies["tt_data_vec"], "model": dummies["tt_model_any"]}
    with pytest.raises(IncompatibleModulesError) as info:
        check_combination(combo)
    msg = str(info.value)
    assert "dataset=tt_data_vec" in msg and "model=tt_model_any" in msg
    assert "model 'tt_model_any' requires tag 'tt:graph'" in msg
    assert "provided by: dataloader:tt_loader" in msg
    assert "\n" not in msg


def test_nobody_provides(dummies: dict[str, type[Module]]) -> None:
    [found] = problems({"traversal": dummies["tt_self"], "dataset": dummies["tt_data_vec"]})
    # a module's own tags do not satisfy its own requirement
    assert "requires tag 'tt:selfish'" in found
    assert "provided by: traversal:tt_self" in found


def test_alternative_requirements(dummies: dict[str, type[Module]]) -> None:
    loader = dummies["tt_loader"]
    check_combination({"dataset": dummies["tt_data_vec"], "dataloader": loader})
    check_combination({"dataset": dummies["tt_data_img"], "dataloader": loader})
    plain = _make("dataset", "tt_data_plain", {"tt:classification"})
    try:
        [found] = problems({"dataset": plain, "dataloader": loader})
        assert "requires tag 'tt:vector' or 'tt:image'" in found
        assert "dataset:tt_data_img" in found and "dataset:tt_data_vec" in found
    finally:
        registry.unregister("dataset", "tt_data_plain")


def test_every_unmet_requirement_is_listed(dummies: dict[str, type[Module]]) -> None:
    found = problems({"traversal": dummies["tt_walk"], "model": dummies["tt_model_vec"]})
    assert len(found) == 3  # walk needs graph; model needs vector and classification
    assert any("'tt:graph'" in p for p in found)
    assert any("'tt:vector'" in p for p in found)
    assert any("'tt:classification'" in p for p in found)


def test_providers(dummies: dict[str, type[Module]]) -> None:
    assert sorted(providers("tt:classification")) == ["dataset:tt_data_img",
                                                      "dataset:tt_data_vec"]
    assert providers("tt:nothing") == []
    assert "dataset:digits" in providers("features:vector")


def test_enumerate_dummy_world(dummies: dict[str, type[Module]]) -> None:
    kinds = ("dataset", "dataloader", "model", "traversal")
    combos = list(enumerate_combinations(kinds))
    named = {tuple(c[k].name for k in kinds) for c in combos}
    # every combination yielded is valid, and it is every valid combination
    assert all(independent_valid(c) and not problems(c) for c in combos)
    everything = itertools.product(*(registry.all_modules(k) for k in kinds))
    expected = {tuple(c.name for c in combo) for combo in everything
                if independent_valid(dict(zip(kinds, combo, strict=True)))}
    assert named == expected
    # the known valid dummy combinations are there, the known invalid ones are not
    assert ("tt_data_vec", "tt_loader", "tt_model_vec", "tt_walk") in named
    assert ("tt_data_img", "tt_loader", "tt_model_any", "tt_walk") not in named  # no per_sample
    assert not any("tt_self" in n for n in named)
    assert not any(n[2] == "tt_model_vec" and n[0] == "tt_data_img" for n in named)


def test_enumerate_with_pins(dummies: dict[str, type[Module]]) -> None:
    combos = list(enumerate_combinations(
        ("dataset", "dataloader", "model", "traversal"),
        fixed={"dataset": "tt_data_vec", "dataloader": "tt_loader", "traversal": "tt_walk"}))
    assert {c["model"].name for c in combos} == {"tt_model_vec"}
    with pytest.raises(UnknownNameError, match="Did you mean 'tt_walk'"):
        list(enumerate_combinations(("traversal",), fixed={"traversal": "tt_wlak"}))


def test_enumerate_registered_includes_default() -> None:
    fixed = {"dataset": "digits", "trainer": "standard", "manager": "static"}
    combos = list(enumerate_combinations(COMBINATION_KINDS, fixed=fixed))
    names = [{k: c.name for k, c in combo.items()} for combo in combos]
    assert dict(DEFAULTS) in names
    assert {"traversal": "random_walk"}.items() <= next(
        n for n in names if n["traversal"] == "random_walk").items()
    assert all(independent_valid(c) for c in combos)


def test_dummy_registrations_are_gone_after_use() -> None:
    assert not any(cls.name.startswith("tt_") for cls in registry.all_modules())


def test_module_classvars_are_frozensets() -> None:
    for cls in registry.all_modules():
        assert isinstance(cls.tags, frozenset) and isinstance(cls.requires, frozenset), cls
        for req in cls.requires:
            assert all(alt.strip() == alt and alt for alt in req.split("|")), (cls, req)
