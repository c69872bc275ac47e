"""Every registered module against its contracts, plus a tag audit.

Parametrized over the registry at collection time, so a module added later is checked without
anyone writing a test for it.
"""

from __future__ import annotations

import re

import pytest

from hypergraph import registry
from hypergraph.tags import COMBINATION_KINDS, enumerate_combinations, providers
from hypergraph.testing import BEHAVIOUR_TAGS, check_module, parametrize_with_checks

ALL = registry.all_modules()

#: Contract failures found by the kit in modules owned elsewhere, kept visible until fixed
#: (strict: the test fails once the module is fixed, so the entry gets removed).
KNOWN_FAILURES: dict[str, str] = {}




@parametrize_with_checks(ALL)
def test_module_contract(check, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    known = KNOWN_FAILURES.get(check.check.id)
    if known:
        request.applymarker(pytest.mark.xfail(reason=known, strict=True))
    check()


def test_every_module_has_checks() -> None:
    for cls in ALL:
        names = [c.name for c in check_module(cls)]
        assert "space_defaults_match_constructor" in names, cls


# ---------------------------------------------------------------------------- tag audit
TAG = re.compile(r"^[a-z][a-z0-9_]*(:[a-z0-9_\-]+)?$")


@pytest.mark.parametrize("cls", ALL, ids=[f"{c.kind}:{c.name}" for c in ALL])
def test_tags_well_formed(cls: type) -> None:
    for tag in (*cls.tags, *(alt for r in cls.requires for alt in r.split("|"))):
        assert TAG.match(tag), f"{cls.kind} '{cls.name}': tag {tag!r} is not 'word' or 'ns:word'"


@pytest.mark.parametrize("cls", ALL, ids=[f"{c.kind}:{c.name}" for c in ALL])
def test_behaviour_tags_only_where_checked(cls: type) -> None:
    """A promise-tag on a kind the kit cannot check would go unverified."""
    for tag in cls.tags:
        kinds = BEHAVIOUR_TAGS.get(tag)
        if kinds is None or cls.kind in kinds:
            continue
        raise AssertionError(f"{cls.kind} '{cls.name}' declares '{tag}', which the kit "
                             f"checks only on {', '.join(kinds)} modules")


@pytest.mark.parametrize("cls", ALL, ids=[f"{c.kind}:{c.name}" for c in ALL])
def test_requirements_have_providers(cls: type) -> None:
    """Every required tag is provided by some registered module of another kind."""
    for req in cls.requires:
        alts = req.split("|")
        found = [p for alt in alts for p in providers(alt) if not p.startswith(f"{cls.kind}:")]
        assert found, (f"{cls.kind} '{cls.name}' requires {req!r}, which no registered module of "
                       "another kind provides, so it can never be combined")


COMBINABLE = [c for c in ALL if c.kind in COMBINATION_KINDS]


@pytest.mark.parametrize("cls", COMBINABLE, ids=[f"{c.kind}:{c.name}" for c in COMBINABLE])
def test_module_appears_in_a_valid_combination(cls: type) -> None:
    combo = next(iter(enumerate_combinations(fixed={cls.kind: cls.name})), None)
    assert combo is not None, f"{cls.kind} '{cls.name}' fits in no tag-valid combination"
