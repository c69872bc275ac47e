"""The compatibility matrix: tag-valid combinations each train one epoch through ``run.train``.

When the registry yields at most ``hypergraph.testing._matrix.DEFAULT_CAP`` valid combinations
all of them run; beyond that a pair-wise cover runs (every two tag-compatible modules of different
kinds train together at least once). ``HYPERGRAPH_MATRIX=full`` runs every combination.
"""

from __future__ import annotations

import itertools

import pytest

from hypergraph.tags import enumerate_combinations, problems
from hypergraph.testing import combination_id, covering_combinations, smoke_combinations, smoke_run

CHOSEN, HOW = smoke_combinations()


@pytest.mark.parametrize("combination", CHOSEN, ids=[combination_id(c) for c in CHOSEN])
def test_combination_trains_one_epoch(combination: dict) -> None:
    assert not problems(combination)
    result = smoke_run(combination)
    if result.status == "skipped":
        pytest.skip(result.error)
    assert result.status == "pass", f"{result.combination}: {result.error}"


def test_selection_is_explained() -> None:
    assert "combinations" in HOW


def test_cover_holds_every_compatible_pair() -> None:
    valid = list(enumerate_combinations())
    cover = covering_combinations(valid)

    def pairs(combo: dict) -> set[tuple[str, str]]:
        keys = sorted(f"{c.kind}:{c.name}" for c in combo.values())
        return set(itertools.combinations(keys, 2))

    wanted = set().union(*(pairs(c) for c in valid)) if valid else set()
    got = set().union(*(pairs(c) for c in cover)) if cover else set()
    assert wanted == got
    assert len(cover) <= len(valid)
    assert all(not problems(c) for c in cover)
