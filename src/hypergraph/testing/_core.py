"""Core of the contract kit: check objects, errors, registration, and building modules."""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypergraph import registry
from hypergraph.base import Module, hyperparameter_names
from hypergraph.exceptions import HyperGraphError
from hypergraph.graph import HyperGraph
from hypergraph.testing._fixtures import (
    BUNDLE_TAGS,
)

__all__ = [
    "BEHAVIOUR_TAGS",
    "Check",
    "CheckResult",
    "ContractError",
    "SkipCheck",
    "build_module",
    "check_module",
    "contract_params",
    "rule_names",
    "run_check",
]

#: Tags that promise behaviour, and the kinds on which the kit checks that promise.
BEHAVIOUR_TAGS: dict[str, tuple[str, ...]] = {
    "per_sample_loss": ("model",),
    "embedding": ("model",),
    "sample_weights": ("model",),
    "covers_all": ("traversal",),
    "graph:symmetric": ("dataloader",),
    "graph:pairwise": ("dataloader",),
    "node:point": ("dataloader",),
    "node:cluster": ("dataloader",),
    "task:classification": ("dataset", "model"),
    "task:regression": ("dataset", "model"),
    "store:memory": ("store",),
    "store:file": ("store",),
}


class ContractError(AssertionError):
    """A module broke a contract rule; the message names the module and the rule."""

    def __init__(self, module: type[Module], rule: str, detail: str) -> None:
        self.module = module
        self.rule = rule
        self.detail = detail
        super().__init__(f"{module.kind or 'module'} '{module.name or module.__name__}' breaks "
                         f"rule '{rule}': {detail}")


class SkipCheck(Exception):  # noqa: N818 - mirrors pytest's "skip"
    """The check cannot run inside the kit (the reason says why, e.g. ``needs input: ...``)."""


def fail(module: type[Module], rule: str, detail: str) -> ContractError:
    """The :class:`ContractError` for ``module`` breaking ``rule``."""
    return ContractError(module, rule, detail)


def ensure(condition: bool, module: type[Module], rule: str, detail: str) -> None:
    """Raise :class:`ContractError` unless ``condition``."""
    if not condition:
        raise fail(module, rule, detail)


# ---------------------------------------------------------------------------- check objects
CheckFunc = Callable[[type[Module], "CheckEnv"], None]


@dataclass(frozen=True)
class _Spec:
    name: str
    kinds: tuple[str, ...] | None
    tag: str | None
    func: CheckFunc
    doc: str


_SPECS: list[_Spec] = []


def contract(name: str, kinds: tuple[str, ...] | None = None,
             tag: str | None = None) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check for modules of ``kinds`` (all when ``None``) declaring ``tag``."""

    def deco(func: CheckFunc) -> CheckFunc:
        doc = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else ""
        _SPECS.append(_Spec(name, kinds, tag, func, doc))
        return func

    return deco


def rule_names() -> dict[str, str]:
    """Every check name with its one-line description (for the docs and ``--json``)."""
    return {s.name: s.doc for s in _SPECS}


@dataclass
class CheckEnv:
    """What a running check may use: a temporary folder and a cache of loaded bundles."""

    tmp_dir: Path
    cache: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One named contract check of one module class; call it to run it."""

    module: type[Module]
    name: str
    func: CheckFunc
    doc: str = ""

    @property
    def id(self) -> str:
        """Readable id such as ``traversal:random_walk-yields_only_train_ids``."""
        return f"{self.module.kind}:{self.module.name}-{self.name}"

    def __call__(self) -> None:
        """Run the check: returns on success, raises ContractError or SkipCheck otherwise."""
        with tempfile.TemporaryDirectory(prefix="hg-check-") as tmp:
            env = CheckEnv(Path(tmp))
            try:
                self.func(self.module, env)
            except (ContractError, SkipCheck):
                raise
            except Exception as err:
                raise fail(self.module, self.name,
                           f"raised {type(err).__name__}: {err}") from err

    def __repr__(self) -> str:
        return f"Check({self.id})"


def check_module(module: type[Module]) -> Iterator[Check]:
    """Yield the checks that apply to ``module`` (by its kind and tags), without running them."""
    for spec in _SPECS:
        if spec.kinds is not None and module.kind not in spec.kinds:
            continue
        if spec.tag is not None and spec.tag not in module.tags:
            continue
        yield Check(module, spec.name, spec.func, spec.doc)


@dataclass
class CheckResult:
    """Outcome of one check: ``status`` is ``passed``, ``failed`` or ``skipped``."""

    check: str
    status: str
    rule: str = ""
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"check": self.check, "status": self.status, "rule": self.rule,
                "message": self.message, "seconds": round(self.seconds, 4)}


def run_check(check: Check) -> CheckResult:
    """Run ``check`` and report its outcome instead of raising."""
    t0 = time.perf_counter()
    try:
        check()
    except ContractError as err:
        return CheckResult(check.name, "failed", err.rule, str(err), time.perf_counter() - t0)
    except SkipCheck as err:
        return CheckResult(check.name, "skipped", "", str(err), time.perf_counter() - t0)
    return CheckResult(check.name, "passed", "", "", time.perf_counter() - t0)


# ---------------------------------------------------------------------------- building
def _has_own_hook(module: type[Module]) -> bool:
    hook = getattr(module, "_contract_params", None)
    base = Module.__dict__["_contract_params"].__func__
    return hook is not None and getattr(hook, "__func__", None) is not base


def contract_params(module: type[Module], tmp_dir: Path) -> dict[str, Any]:
    """The parameters the kit builds ``module`` with (its ``_contract_params`` hook)."""
    hook = getattr(module, "_contract_params", None)
    params = hook(tmp_dir) if hook is not None else {}
    return dict(params or {})


def _required_args(module: type[Module]) -> list[str]:
    sig = inspect.signature(module.__init__)
    return [p.name for p in sig.parameters.values()
            if p.name != "self" and p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def build_module(module: type[Module], env: CheckEnv) -> Any:
    """A fresh instance built from the module's contract parameters.

    Raises:
        SkipCheck: the constructor needs arguments that the module's ``_contract_params``
            hook does not supply.
    """
    params = contract_params(module, env.tmp_dir)
    missing = [a for a in _required_args(module) if a not in params]
    if missing:
        raise SkipCheck("needs input: constructor arguments without defaults "
                        f"({', '.join(missing)}) and no _contract_params hook supplying them")
    if set(params) - set(hyperparameter_names(module)):
        return module(**params)
    return module.from_params(params)


def _partners(kind: str, module: type[Module]) -> list[type[Module]]:
    """Registered modules of ``kind`` meeting ``module``'s requirements that ``kind`` can meet.

    The default module of ``kind`` (``hypergraph.config.DEFAULTS``) comes first.
    """
    from hypergraph.config import DEFAULTS

    candidates = registry.all_modules(kind)
    provided_by_kind = {t for c in candidates for t in c.tags}
    needed = [r for r in module.requires
              if any(alt in provided_by_kind for alt in r.split("|"))]
    fits = [c for c in candidates
            if all(any(alt in c.tags for alt in r.split("|")) for r in needed)
            and (kind != "model" or _model_fits_fixture(c))]
    fits.sort(key=lambda c: c.name != DEFAULTS.get(kind))
    if not fits:
        raise SkipCheck(f"needs a registered {kind} providing {sorted(needed)}")
    return fits


def _partner(kind: str, module: type[Module]) -> type[Module]:
    """The first of :func:`_partners`."""
    return _partners(kind, module)[0]


def _build_partner(kind: str, module: type[Module], env: CheckEnv) -> Any:
    """An instance of the first partner of ``kind`` that the kit can build."""
    reasons = []
    for cand in _partners(kind, module):
        try:
            return build_module(cand, env)
        except SkipCheck as err:
            reasons.append(f"{cand.name}: {err}")
    raise SkipCheck(f"no {kind} partner can be built ({'; '.join(reasons)})")


def _model_fits_fixture(model: type[Module]) -> bool:
    return all(any(alt in BUNDLE_TAGS for alt in r.split("|")) for r in model.requires
               if r.startswith(("features:", "task:")))


def _unmet_by(tags: frozenset[str], module: type[Module], kind: str) -> list[str]:
    """Requirements of ``module`` that modules of ``kind`` could meet but ``tags`` do not."""
    provided_by_kind = {t for c in registry.all_modules(kind) for t in c.tags} | tags
    return [r for r in sorted(module.requires)
            if any(alt in provided_by_kind for alt in r.split("|"))
            and not any(alt in tags for alt in r.split("|"))]


def _same(a: Any, b: Any) -> bool:
    """Equal values (arrays compared element-wise; ``1 == 1.0`` counts as equal)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b



# ---------------------------------------------------------------------------- graphs
def graph_problems(g: HyperGraph) -> list[str]:
    """CSR and node-array invariant violations of ``g`` (empty when valid)."""
    out: list[str] = []
    try:
        g.validate()
    except HyperGraphError as err:
        out.append(str(err))
        return out
    ip, ix = np.asarray(g.indptr), np.asarray(g.indices)
    n = g.num_nodes
    for r in range(n):
        row = ix[ip[r]:ip[r + 1]]
        if row.size > 1 and np.any(np.diff(row.astype(np.int64)) <= 0):
            out.append(f"row {r} holds unsorted or duplicate neighbour ids")
            break
    if g.members is not None:
        ptr, rows = g.members
        if ptr.shape[0] != n + 1 or ptr[0] != 0 or np.any(np.diff(ptr) < 0) \
                or ptr[-1] != rows.shape[0]:
            out.append("members pointer array is not a valid CSR pointer for the nodes")
    if g.store is not None:
        rows_in_store = len(g.store)
        point = np.asarray(g.store_row)[np.asarray(g.store_row) >= 0]
        if point.size and point.max() >= rows_in_store:
            out.append(f"store_row points past the store ({point.max()} >= {rows_in_store})")
        if g.members is not None and g.members[1].size and \
                g.members[1].max() >= rows_in_store:
            out.append("a cluster member row points past the store")
    return out


def _graph_arrays(g: HyperGraph) -> dict[str, np.ndarray]:
    out = {"indptr": np.asarray(g.indptr).copy(), "indices": np.asarray(g.indices).copy(),
           "weights": np.asarray(g.weights).copy()}
    if g.incidence is not None:
        inc = g.incidence.tocsr()
        out |= {"inc_indptr": inc.indptr.copy(), "inc_indices": inc.indices.copy(),
                "inc_data": inc.data.copy()}
    if g.members is not None:
        out |= {"members_ptr": g.members[0].copy(), "members_rows": g.members[1].copy()}
    return out


def _same_structure(a: HyperGraph, b: HyperGraph) -> str:
    """Where two graphs' edges, hyperedges or clusters differ ('' when equal)."""
    ea, eb = _graph_arrays(a), _graph_arrays(b)
    if set(ea) != set(eb):
        return f"different parts: {sorted(set(ea) ^ set(eb))}"
    for key in ea:
        if ea[key].shape != eb[key].shape:
            return f"{key} shapes {ea[key].shape} vs {eb[key].shape}"
        if key in ("weights", "inc_data"):
            if not np.allclose(ea[key], eb[key], rtol=1e-5, atol=1e-6):
                return f"{key} differ"
        elif not np.array_equal(ea[key], eb[key]):
            return f"{key} differ"
    return ""



def _nested_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_nested_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_nested_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:  # non-numeric arrays
            return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)
