"""The pytest decorator: one test per (module, check) with readable ids."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from hypergraph.testing._checks import Check, SkipCheck, check_module

if TYPE_CHECKING:
    from hypergraph.base import Module

__all__ = ["parametrize_with_checks"]

F = TypeVar("F", bound=Callable[..., Any])


class _PytestCheck:
    """A :class:`Check` that turns :class:`SkipCheck` into a pytest skip."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.module = check.module
        self.name = check.name

    def __call__(self) -> None:
        import pytest

        try:
            self.check()
        except SkipCheck as err:
            pytest.skip(str(err))

    def __repr__(self) -> str:
        return repr(self.check)


def parametrize_with_checks(modules: Iterable[type[Module]]) -> Callable[[F], F]:
    """Parametrize a test over every contract check of ``modules``.

    The test takes one argument, ``check``; calling it runs the check (a failure raises
    :class:`~hypergraph.testing.ContractError`, an unbuildable module skips). Ids read like
    ``traversal:random_walk-yields_only_train_ids``::

        from hypergraph.testing import parametrize_with_checks
        from my_pkg import MyTraversal

        @parametrize_with_checks([MyTraversal])
        def test_contracts(check):
            check()
    """
    import pytest

    checks = [_PytestCheck(c) for m in modules for c in check_module(m)]
    return pytest.mark.parametrize("check", checks, ids=[c.check.id for c in checks])
