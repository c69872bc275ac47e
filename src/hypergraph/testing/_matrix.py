"""The compatibility matrix: which modules combine (by tags), and a one-epoch smoke run of each.

Every tag-valid combination of the registered modules is listed by
:func:`hypergraph.tags.enumerate_combinations`. When there are few (at most ``cap``), all are
smoke-trained; beyond that the product explodes, so :func:`covering_combinations` picks a small
set in which **every pair of tag-compatible modules of two different kinds appears together at
least once** (pair-wise coverage, chosen greedily). ``HYPERGRAPH_MATRIX=full`` asks for every
combination instead.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypergraph import registry
from hypergraph.exceptions import HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.tags import COMBINATION_KINDS, enumerate_combinations, problems

if TYPE_CHECKING:
    from hypergraph.base import Module

__all__ = [
    "DEFAULT_CAP",
    "PairResult",
    "SmokeResult",
    "combination_id",
    "compatibility",
    "covering_combinations",
    "key",
    "smoke_combinations",
    "smoke_config",
    "smoke_run",
]

logger = get_logger(__name__)

#: Up to this many valid combinations, all are smoke-trained; above it, a pair-wise cover.
DEFAULT_CAP = 60

Combination = dict[str, "type[Module]"]


def key(module: type[Module]) -> str:
    """``"kind:name"`` of a registered module."""
    return f"{module.kind}:{module.name}"


def combination_id(combination: Mapping[str, type[Module]]) -> str:
    """A readable id such as ``digits-knn-mlp-random_walk-static-standard``."""
    return "-".join(c.name for c in combination.values())


def _pairs(combination: Mapping[str, type[Module]]) -> set[tuple[str, str]]:
    keys = sorted(key(c) for c in combination.values())
    return set(itertools.combinations(keys, 2))


def covering_combinations(valid: Sequence[Combination],
                          focus: Iterable[type[Module]] | None = None) -> list[Combination]:
    """A small subset of ``valid`` covering every module pair that occurs in ``valid``.

    Args:
        valid: Tag-valid combinations.
        focus: Only cover pairs that involve one of these modules (default: all pairs).

    Returns:
        Combinations chosen greedily: for each still-uncovered pair (in sorted order), the
        combination containing it that covers the most uncovered pairs.
    """
    focus_keys = None if focus is None else {key(m) for m in focus}
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    pair_sets = []
    for i, combo in enumerate(valid):
        ps = _pairs(combo)
        if focus_keys is not None:
            ps = {p for p in ps if p[0] in focus_keys or p[1] in focus_keys}
        pair_sets.append(ps)
        for p in ps:
            by_pair[p].append(i)
    uncovered = set(by_pair)
    chosen: list[int] = []
    for pair in sorted(by_pair):
        if pair not in uncovered:
            continue
        best = max(by_pair[pair], key=lambda i: (len(pair_sets[i] & uncovered), -i))
        chosen.append(best)
        uncovered -= pair_sets[best]
    return [valid[i] for i in sorted(set(chosen))]


def smoke_combinations(cap: int | None = None, focus: Iterable[type[Module]] | None = None,
                       kinds: Sequence[str] = COMBINATION_KINDS,
                       ) -> tuple[list[Combination], str]:
    """The combinations to smoke-train and a sentence saying how they were chosen.

    All valid combinations (involving ``focus`` when given) when there are at most ``cap``
    (default :data:`DEFAULT_CAP`, or every one with ``HYPERGRAPH_MATRIX=full``); otherwise a
    pair-wise cover.
    """
    focus = list(focus) if focus is not None else None
    if cap is None:
        cap = 10**9 if os.environ.get("HYPERGRAPH_MATRIX") == "full" else DEFAULT_CAP
    valid = [c for c in enumerate_combinations(kinds)
             if not any(unbuildable(m) for m in c.values())]
    if focus is not None:
        fk = {key(m) for m in focus}
        valid = [c for c in valid if any(key(m) in fk for m in c.values())]
    if len(valid) <= cap:
        return valid, f"all {len(valid)} tag-valid combinations"
    cover = covering_combinations(valid, focus)
    return cover, (f"{len(cover)} of {len(valid)} tag-valid combinations covering every "
                   "compatible pair of modules (pair-wise; HYPERGRAPH_MATRIX=full runs all)")


@dataclass
class PairResult:
    """One cell of the matrix: ``status`` is pass / fail / skipped / incompatible / untested."""

    a: str
    b: str
    status: str
    detail: str = ""
    combinations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"a": self.a, "b": self.b, "status": self.status, "detail": self.detail,
                "combinations": self.combinations}


def incompatibility(a: type[Module], b: type[Module],
                    kinds: Sequence[str] = COMBINATION_KINDS) -> str:
    """Why no valid combination holds both ``a`` and ``b`` ('' when one does)."""
    choices = []
    for kind in kinds:
        if kind == a.kind:
            choices.append([a])
        elif kind == b.kind:
            choices.append([b])
        else:
            choices.append(registry.all_modules(kind))
    names = (f"{a.kind} '{a.name}'", f"{b.kind} '{b.name}'")
    best: list[str] | None = None
    for combo in itertools.product(*choices):
        found = problems(dict(zip(kinds, combo, strict=True)))
        if not found:
            return ""
        if best is None or len(found) < len(best):
            best = found
    if best is None:
        return "no module of some kind is registered."
    own = [p for p in best if p.startswith(names)]
    return " ".join(own or best)


def compatibility(modules: Sequence[type[Module]], results: Mapping[str, SmokeResult],
                  chosen: Sequence[Combination],
                  kinds: Sequence[str] = COMBINATION_KINDS) -> list[PairResult]:
    """Every (module, partner of another kind) cell for ``modules``, from smoke ``results``."""
    by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
    for combo in chosen:
        cid = combination_id(combo)
        for p in _pairs(combo):
            by_pair[p].append(cid)
    out: list[PairResult] = []
    seen: set[tuple[str, str]] = set()
    for m in modules:
        if m.kind not in kinds:
            continue
        for kind in kinds:
            if kind == m.kind:
                continue
            for partner in registry.all_modules(kind):
                lo, hi = sorted((key(m), key(partner)))
                pair = (lo, hi)
                if pair in seen:
                    continue
                seen.add(pair)
                cids = by_pair.get(pair, [])
                if not cids:
                    reason = incompatibility(m, partner, kinds)
                    status = "incompatible"
                    if not reason:
                        why = [f"{key(x)} {unbuildable(x)}" for x in (m, partner)
                               if unbuildable(x)]
                        status = "skipped" if why else "untested"
                        reason = "; ".join(why)
                    out.append(PairResult(key(m), key(partner), status, reason))
                    continue
                rs = [results[c] for c in cids if c in results]
                failed = [r for r in rs if r.status == "fail"]
                passed = [r for r in rs if r.status == "pass"]
                if failed:
                    out.append(PairResult(key(m), key(partner), "fail",
                                          f"{failed[0].combination}: {failed[0].error}", cids))
                elif passed:
                    out.append(PairResult(key(m), key(partner), "pass", "", cids))
                elif rs:
                    out.append(PairResult(key(m), key(partner), "skipped", rs[0].error, cids))
                else:
                    out.append(PairResult(key(m), key(partner), "untested", "", cids))
    return out


# ---------------------------------------------------------------------------- smoke runs
@dataclass
class SmokeResult:
    """Outcome of a one-epoch training of one combination."""

    combination: str
    status: str  # pass / fail / skipped
    error: str = ""
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"combination": self.combination, "status": self.status, "error": self.error,
                "seconds": round(self.seconds, 3), "metrics": self.metrics}


def smoke_config(combination: Mapping[str, type[Module]], tmp_dir: Path, seed: int = 0,
                 epochs: int = 1) -> Any:
    """A :class:`~hypergraph.config.RunConfig` for a quick run: contract params, one epoch, CPU."""
    from hypergraph.config import ModuleChoice, RunConfig
    from hypergraph.testing._checks import contract_params

    data: dict[str, Any] = {"seed": seed, "device": "cpu"}
    for kind, cls in combination.items():
        params = contract_params(cls, tmp_dir)
        if kind == "trainer":
            if "epochs" in cls.space:
                params["epochs"] = epochs
            if "patience" in cls.space:
                params.setdefault("patience", 0)
        data[kind] = ModuleChoice(name=cls.name, params=params)
    return RunConfig(**data)


def unbuildable(module: type[Module]) -> str:
    """Why the kit cannot build ``module`` for a run ('' when it can); cached per process.

    A module whose constructor needs arguments that its ``_contract_params`` hook does not give,
    or a dataset without such a hook whose ``load`` fails for want of input (a path, a folder)
    or of an optional package.
    """
    from hypergraph.testing._core import (
        CheckEnv,
        SkipCheck,
        _has_own_hook,
        build_module,
    )

    if module in _UNBUILDABLE:
        return _UNBUILDABLE[module]
    reason = ""
    with tempfile.TemporaryDirectory(prefix="hg-probe-") as tmp:
        try:
            inst = build_module(module, CheckEnv(Path(tmp)))
            if module.kind == "dataset" and not _has_own_hook(module):
                inst.load(np.random.default_rng(0))
        except SkipCheck as err:
            reason = str(err)
        except ImportError as err:
            reason = f"needs an optional package: {err}"
        except HyperGraphError as err:
            reason = f"needs input: {err}"
    _UNBUILDABLE[module] = reason
    return reason


_UNBUILDABLE: dict[Any, str] = {}


def _instances(combination: Mapping[str, type[Module]], tmp_dir: Path,
               train: Any) -> dict[str, Any]:
    """Ready instances for the kinds ``run.train`` accepts as objects (dataset, model).

    Some modules can only be built from Python (a model wrapping a user network); building
    them from their contract parameters and handing them over covers those too.
    """
    import inspect

    from hypergraph.testing._checks import CheckEnv, build_module

    accepted = inspect.signature(train).parameters
    return {kind: build_module(cls, CheckEnv(tmp_dir)) for kind, cls in combination.items()
            if kind in ("dataset", "model") and kind in accepted}


def smoke_run(combination: Mapping[str, type[Module]], seed: int = 0) -> SmokeResult:
    """Train ``combination`` for one epoch on the kit's small data through :func:`run.train`."""
    from hypergraph.run import train

    cid = combination_id(combination)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hg-smoke-") as tmp:
        for cls in combination.values():
            reason = unbuildable(cls)
            if reason:
                return SmokeResult(cid, "skipped", f"{key(cls)}: {reason}",
                                   time.perf_counter() - t0)
        try:
            cfg = smoke_config(combination, Path(tmp), seed=seed)
            instances = _instances(combination, Path(tmp), train)
            if instances:
                cfg = cfg.model_copy(update={k: cfg.choice(k).model_copy(update={"params": {}})
                                             for k in instances})
            result = train(cfg, out_dir=None, **instances)
        except Exception as err:  # a smoke run reports every failure, it never hides one
            logger.debug("smoke run %s failed:\n%s", cid, traceback.format_exc())
            return SmokeResult(cid, "fail", f"{type(err).__name__}: {err}",
                               time.perf_counter() - t0)
    test = result.get("test", {})
    bad = [k for k, v in test.items() if isinstance(v, float) and not np.isfinite(v)]
    if result.get("steps", 0) < 1:
        return SmokeResult(cid, "fail", "the epoch took no training step",
                           time.perf_counter() - t0)
    if bad:
        return SmokeResult(cid, "fail", f"test metrics {bad} are not finite",
                           time.perf_counter() - t0)
    return SmokeResult(cid, "pass", "", time.perf_counter() - t0,
                       {k: round(float(v), 4) for k, v in test.items()})
