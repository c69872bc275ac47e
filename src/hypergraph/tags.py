"""Tags are a contract between the modules of one combination.

Each module declares ``tags`` (what it is or provides) and ``requires`` (tags that some *other*
module of the same combination must provide; ``"a|b"`` accepts either). :func:`check_combination`
is the one place that decides whether a combination is valid and explains why not;
:func:`enumerate_combinations` lists every valid combination of registered modules.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from hypergraph import registry
from hypergraph.exceptions import IncompatibleModulesError
from hypergraph.kinds import KIND_NAMES

if TYPE_CHECKING:
    from hypergraph.base import Module

__all__ = ["check_combination", "enumerate_combinations", "problems", "providers"]

#: Kinds searched over when enumerating combinations: the run kinds (the others are data
#: structures with one built-in each).
COMBINATION_KINDS: tuple[str, ...] = KIND_NAMES


def providers(tag: str) -> list[str]:
    """``"kind:name"`` of every registered module that provides ``tag``."""
    return [f"{cls.kind}:{cls.name}" for cls in registry.all_modules() if tag in cls.tags]


def _satisfied(requirement: str, provided: set[str]) -> bool:
    return any(alt in provided for alt in requirement.split("|"))


def problems(combination: Mapping[str, type[Module]]) -> list[str]:
    """Every unmet requirement of ``combination`` as a sentence (empty when valid)."""
    out: list[str] = []
    for kind, cls in combination.items():
        provided: set[str] = set()
        for other_kind, other in combination.items():
            if other_kind != kind:
                provided |= set(other.tags)
        for req in sorted(cls.requires):
            if _satisfied(req, provided):
                continue
            alts = req.split("|")
            who = sorted({p for alt in alts for p in providers(alt)})
            shown = " or ".join(f"'{a}'" for a in alts)
            found = ", ".join(who) or "no registered module"
            out.append(
                f"{kind} '{cls.name}' requires tag {shown}, which no other module of this "
                f"combination provides; it is provided by: {found}."
            )
    return out


def check_combination(combination: Mapping[str, type[Module]]) -> None:
    """Raise :class:`IncompatibleModulesError` explaining every unmet requirement."""
    found = problems(combination)
    if found:
        names = ", ".join(f"{k}={c.name}" for k, c in combination.items())
        raise IncompatibleModulesError(
            f"Incompatible modules ({names}): " + " ".join(found)
        )


def enumerate_combinations(
    kinds: Sequence[str] = COMBINATION_KINDS,
    fixed: Mapping[str, str] | None = None,
) -> Iterator[dict[str, type[Module]]]:
    """Yield every tag-valid combination of registered modules over ``kinds``.

    Args:
        kinds: The kinds to combine.
        fixed: ``kind -> name`` pins (those kinds take only that module).
    """
    fixed = dict(fixed or {})
    choices = []
    for kind in kinds:
        if kind in fixed:
            choices.append([registry.resolve(kind, fixed[kind])])
        else:
            choices.append(registry.all_modules(kind))
    for combo in itertools.product(*choices):
        combination = dict(zip(kinds, combo, strict=True))
        if not problems(combination):
            yield combination
