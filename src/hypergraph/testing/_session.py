"""One ``hypergraph check`` session: contract checks per module plus the compatibility matrix."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypergraph import registry
from hypergraph.exceptions import HyperGraphError, UnknownNameError
from hypergraph.tags import COMBINATION_KINDS
from hypergraph.testing._checks import CheckResult, check_module, run_check
from hypergraph.testing._matrix import (
    PairResult,
    SmokeResult,
    combination_id,
    compatibility,
    key,
    smoke_combinations,
    smoke_run,
)

if TYPE_CHECKING:
    from hypergraph.base import Module

__all__ = ["CheckReport", "check_modules", "resolve_module"]


def resolve_module(text: str) -> type[Module]:
    """A module from ``"kind:name"`` or a name registered under exactly one kind.

    Raises:
        UnknownNameError: no such module (the message lists the valid choices).
        HyperGraphError: the bare name is registered under several kinds.
    """
    if ":" in text:
        kind, name = text.split(":", 1)
        return registry.resolve(kind, name)
    found = [cls for cls in registry.all_modules() if cls.name == text]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        options = ", ".join(key(c) for c in found)
        raise HyperGraphError(f"Module name '{text}' is ambiguous; give one of: {options}.")
    raise UnknownNameError("module", text, [key(c) for c in registry.all_modules()],
                           note=registry.broken_plugins_note())


@dataclass
class CheckReport:
    """Everything a check session found."""

    modules: list[type[Module]]
    checks: dict[str, list[CheckResult]] = field(default_factory=dict)
    smoke: dict[str, SmokeResult] = field(default_factory=dict)
    pairs: list[PairResult] = field(default_factory=list)
    selection: str = ""
    wall_s: float = 0.0

    @property
    def failed(self) -> bool:
        """Whether any check or smoke run failed."""
        return any(r.status == "failed" for rs in self.checks.values() for r in rs) or any(
            r.status == "fail" for r in self.smoke.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "ok": not self.failed,
            "wall_s": round(self.wall_s, 3),
            "selection": self.selection,
            "modules": [{"module": key(m), "checks": [r.to_dict() for r in self.checks[key(m)]]}
                        for m in self.modules],
            "combinations": [r.to_dict() for r in self.smoke.values()],
            "pairs": [p.to_dict() for p in self.pairs],
        }


def check_modules(modules: Sequence[type[Module]] | None = None, smoke: bool = True,
                  progress: Callable[[str], None] | None = None) -> CheckReport:
    """Run every contract check of ``modules`` (all registered by default) and, with ``smoke``,
    a one-epoch training of the combinations that cover each module with every tag-compatible
    partner.
    """
    t0 = time.perf_counter()
    mods = list(modules) if modules is not None else registry.all_modules()
    report = CheckReport(mods)
    for m in mods:
        if progress:
            progress(f"checking {key(m)}")
        report.checks[key(m)] = [run_check(c) for c in check_module(m)]
    combinable = [m for m in mods if m.kind in COMBINATION_KINDS]
    if smoke and combinable:
        focus = None if modules is None else combinable
        chosen, report.selection = smoke_combinations(focus=focus)
        for combo in chosen:
            cid = combination_id(combo)
            if progress:
                progress(f"training {cid}")
            report.smoke[cid] = smoke_run(combo)
        report.pairs = compatibility(combinable, report.smoke, chosen)
    report.wall_s = time.perf_counter() - t0
    return report
