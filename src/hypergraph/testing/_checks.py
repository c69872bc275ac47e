"""The contract checks: named, chosen by kind and tags, each on fresh instances and tiny data.

:func:`check_module` yields :class:`Check` objects; calling one runs it and raises
:class:`ContractError` (an ``AssertionError``) whose message starts with
``"<kind> '<name>' breaks rule '<rule>': "``, or :class:`SkipCheck` when the module cannot be
built inside the kit (for example a dataset that needs a real file). Checks are registered with
:func:`contract` below; the kind and tags of a module decide which apply, so a module added
later is checked without anyone listing it.
"""

from __future__ import annotations

import copy
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
from hypergraph.exceptions import HyperGraphError, InvalidParameterError, UnknownNameError
from hypergraph.graph import HyperGraph
from hypergraph.rng import RngStreams
from hypergraph.spaces import Categorical, Float, Int, Param
from hypergraph.testing._fixtures import (
    BUNDLE_TAGS,
    GRAPH_VARIANTS,
    fixture_graph,
    fixture_score,
    knn_graph,
    subsample_bundle,
    tiny_bundle,
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


# ---------------------------------------------------------------------------- generic checks
def _alternative_value(param: Param) -> Any:
    """A valid value different from the default when the space allows one."""
    if isinstance(param, Int):
        return param.high if param.default != param.high else param.low
    if isinstance(param, Float):
        return param.high if param.default != param.high else param.low
    if isinstance(param, Categorical):
        for c in param.choices:
            if c != param.default:
                return c
    return param.default


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


@contract("space_defaults_match_constructor")
def check_space_defaults(module: type[Module], env: CheckEnv) -> None:
    """Every keyword argument is declared in ``space`` with the constructor's default."""
    sig = inspect.signature(module.__init__)
    defaults = {p.name: p.default for p in sig.parameters.values()
                if p.name != "self" and p.default is not inspect.Parameter.empty}
    rule = "space_defaults_match_constructor"
    for pname, default in defaults.items():
        ensure(pname in module.space, module, rule,
               f"constructor argument '{pname}' (default {default!r}) is not declared in space")
        declared = module.space[pname].default
        ensure(_same(declared, default), module, rule,
               f"space default of '{pname}' is {declared!r} but the constructor default is "
               f"{default!r}")
    extra = sorted(set(module.space) - set(inspect.signature(
        module.__init__).parameters))
    ensure(not extra, module, rule, f"space declares {extra}, which the constructor does not take")
    for pname, param in module.space.items():
        try:
            param.validate(param.default, module.__name__, pname)
        except InvalidParameterError as err:
            raise fail(module, rule, f"the space default of '{pname}' is outside its own "
                       f"range: {err}") from None


@contract("constructor_stores_params")
def check_constructor_stores(module: type[Module], env: CheckEnv) -> None:
    """The constructor stores every argument unchanged; ``clone`` keeps them; no logic in init."""
    if _required_args(module):
        raise SkipCheck("needs input: the constructor has arguments without defaults")
    rule = "constructor_stores_params"
    params = {p: _alternative_value(module.space[p]) for p in hyperparameter_names(module)
              if p in module.space}
    inst = module(**params)
    got = inst.get_params()
    for key, value in params.items():
        ensure(_same(got.get(key), value), module, rule,
               f"given {key}={value!r}, get_params() returns {got.get(key)!r}")
    twin = inst.clone()
    ensure(type(twin) is module and twin is not inst, module, rule, "clone() must return a new "
           "instance of the same class")
    for key, value in twin.get_params().items():
        ensure(_same(value, got[key]), module, rule,
               f"clone() changed {key} from {got[key]!r} to {value!r}")
    derived = sorted(k for k in vars(module(**params)) if k.endswith("_") and not
                     k.startswith("_"))
    ensure(not derived, module, rule, f"__init__ sets derived state {derived}; build it in "
           "setup()/build()/load() instead")


@contract("rejects_invalid_params")
def check_rejects_invalid(module: type[Module], env: CheckEnv) -> None:
    """Unknown parameters and values outside the space raise errors naming the parameter."""
    if _required_args(module):
        raise SkipCheck("needs input: the constructor has arguments without defaults")
    rule = "rejects_invalid_params"
    try:
        module.from_params({"no_such_parameter_xyz": 1})
    except UnknownNameError:
        pass
    else:
        raise fail(module, rule, "from_params accepted the unknown parameter "
                   "'no_such_parameter_xyz'")
    for pname, param in module.space.items():
        if isinstance(param, Int | Float):
            bad: Any = param.high * 10 + 10 if param.high >= 0 else param.low * 10 - 10
        elif isinstance(param, Categorical):
            bad = "__not_a_choice__"
        else:
            continue
        try:
            module(**{pname: bad})
        except InvalidParameterError as err:
            ensure(pname in str(err), module, rule,
                   f"the error for {pname}={bad!r} does not name the parameter: {err}")
        else:
            raise fail(module, rule, f"{pname}={bad!r} (outside {param.describe()}) was "
                       "accepted")


# ---------------------------------------------------------------------------- datasets
_BUNDLES: dict[Any, Any] = {}


def _load(module: type[Module], env: CheckEnv, seed: int = 0, fresh: bool = False) -> Any:
    """Load a dataset built from its contract params; unbuildable ones are skipped.

    Bundles are cached per process by class, parameters and seed (loading is the slow part of
    dataset checks); ``fresh`` bypasses the cache.
    """
    inst = build_module(module, env)
    key = (module, repr(sorted(inst.get_params().items())), seed)
    if not fresh and key in _BUNDLES:
        return _BUNDLES[key]
    try:
        bundle = inst.load(np.random.default_rng(seed))
    except ImportError as err:
        raise SkipCheck(f"needs an optional package: {err}") from None
    except HyperGraphError as err:
        if not _has_own_hook(module):
            raise SkipCheck(f"needs input: {err} (define _contract_params to let the kit build "
                            "it)") from None
        raise fail(module, "loads", f"load() with its contract parameters raised "
                   f"{type(err).__name__}: {err}") from None
    if len(_BUNDLES) > 16:
        _BUNDLES.clear()
    _BUNDLES[key] = bundle
    return bundle


def _rows_sample(bundle: Any, k: int = 64) -> np.ndarray:
    n = len(bundle)
    return np.unique(np.linspace(0, n - 1, num=min(k, n)).astype(np.int64))


@contract("splits_disjoint_and_nonempty", kinds=("dataset",))
def check_dataset_splits(module: type[Module], env: CheckEnv) -> None:
    """Every row is in exactly one split (codes 0/1/2) and no split is empty."""
    b = _load(module, env)
    rule = "splits_disjoint_and_nonempty"
    n = len(b)
    ensure(n > 0, module, rule, "the dataset has no rows")
    ensure(b.split.shape == (n,), module, rule, f"split has shape {b.split.shape} for {n} rows")
    codes = set(np.unique(b.split).tolist())
    ensure(codes <= {0, 1, 2}, module, rule, f"split codes {sorted(codes)} outside {{0, 1, 2}}")
    for code, part in enumerate(("train", "validation", "test")):
        ensure(bool(np.any(b.split == code)), module, rule, f"the {part} split is empty")


@contract("finite_features", kinds=("dataset",))
def check_dataset_features(module: type[Module], env: CheckEnv) -> None:
    """Features are finite, of the declared item shape, and ``bundle.check()`` passes."""
    b = _load(module, env)
    rule = "finite_features"
    rows = _rows_sample(b)
    x = np.asarray(b.store.get(rows))
    ensure(x.shape == (rows.size, *b.store.item_shape), module, rule,
           f"store.get returned shape {x.shape}, expected {(rows.size, *b.store.item_shape)}")
    ensure(bool(np.all(np.isfinite(x))), module, rule, "features hold NaN or infinite values")
    try:
        b.check()
    except HyperGraphError as err:
        raise fail(module, rule, f"bundle.check() failed: {err}") from None


@contract("labels_in_range", kinds=("dataset",))
def check_dataset_labels(module: type[Module], env: CheckEnv) -> None:
    """Labels match the task: ints in ``[0, num_classes)`` or finite regression targets."""
    b = _load(module, env)
    rule = "labels_in_range"
    ensure(b.task in ("classification", "regression"), module, rule,
           f"task is {b.task!r}, expected 'classification' or 'regression'")
    ensure(b.y.shape[0] == len(b), module, rule, f"{b.y.shape[0]} labels for {len(b)} rows")
    if b.task == "classification":
        ensure(np.issubdtype(b.y.dtype, np.integer), module, rule,
               f"classification labels must be integers, got {b.y.dtype}")
        ensure(b.num_classes >= 2, module, rule, f"num_classes is {b.num_classes}")
        ensure(int(b.y.min()) >= 0 and int(b.y.max()) < b.num_classes, module, rule,
               f"labels span [{b.y.min()}, {b.y.max()}] outside [0, {b.num_classes})")
    else:
        ensure(bool(np.all(np.isfinite(b.y.astype(np.float64)))), module, rule,
               "regression targets hold NaN or infinite values")
    tag = f"task:{b.task}"
    ensure(tag in module.tags, module, "task_tag_honest",
           f"the bundle's task is '{b.task}' but the dataset does not declare '{tag}'")
    other = {"task:classification", "task:regression"} & module.tags - {tag}
    ensure(not other, module, "task_tag_honest",
           f"declares {sorted(other)} but loads a '{b.task}' bundle")


@contract("deterministic_by_seed", kinds=("dataset",))
def check_dataset_deterministic(module: type[Module], env: CheckEnv) -> None:
    """The same seed gives the same rows, labels and splits."""
    a = _load(module, env, seed=3, fresh=True)
    b = _load(module, env, seed=3, fresh=True)
    rule = "deterministic_by_seed"
    ensure(len(a) == len(b), module, rule, f"two loads gave {len(a)} and {len(b)} rows")
    ensure(np.array_equal(a.split, b.split), module, rule, "two loads gave different splits")
    ensure(np.array_equal(a.y, b.y), module, rule, "two loads gave different labels")
    rows = _rows_sample(a)
    ensure(np.array_equal(a.store.get(rows), b.store.get(rows)), module, rule,
           "two loads gave different features")


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


# ---------------------------------------------------------------------------- dataloaders
def _dataloader_bundle(module: type[Module], env: CheckEnv, task: str = "classification",
                       ) -> Any:
    """The fixture bundle, or a shrunken registered dataset when the fixture lacks a tag."""
    unmet = _unmet_by(BUNDLE_TAGS, module, "dataset")
    if not unmet:
        return tiny_bundle(task)
    ds = _partner("dataset", module)
    bundle = _load(ds, env)
    return subsample_bundle(bundle, 120, np.random.default_rng(0))


def _build_graph(module: type[Module], env: CheckEnv, bundle: Any, seed: int = 0) -> HyperGraph:
    inst = build_module(module, env)
    g = inst.build(bundle, np.random.default_rng(seed))
    if not isinstance(g, HyperGraph):
        raise fail(module, "builds_valid_graph", f"build() returned {type(g).__name__}, not a "
                   "HyperGraph")
    return g


@contract("builds_valid_graph", kinds=("dataloader",))
def check_dataloader_valid(module: type[Module], env: CheckEnv) -> None:
    """CSR invariants hold, no edge points to a missing node, weights finite and >= 0."""
    bundle = _dataloader_bundle(module, env)
    g = _build_graph(module, env, bundle)
    found = graph_problems(g)
    ensure(not found, module, "builds_valid_graph", "; ".join(found))
    ensure(g.store is not None, module, "builds_valid_graph",
           "the graph's store is not set (set graph.store = bundle.store)")
    if "node:cluster" not in module.tags:
        ensure(g.num_nodes == len(bundle), module, "builds_valid_graph",
               f"{g.num_nodes} nodes for {len(bundle)} rows (only node:cluster builders may "
               "differ)")


@contract("preserves_splits_and_labels", kinds=("dataloader",))
def check_dataloader_splits(module: type[Module], env: CheckEnv) -> None:
    """Node arrays carry the bundle's splits and labels; clusters never mix splits."""
    bundle = _dataloader_bundle(module, env)
    g = _build_graph(module, env, bundle)
    rule = "preserves_splits_and_labels"
    point = np.asarray(g.store_row) >= 0
    rows = np.asarray(g.store_row)[point]
    ensure(bool(np.all(rows < len(bundle))), module, rule, "store_row points past the data")
    ensure(np.array_equal(np.asarray(g.split)[point], bundle.split[rows]), module, rule,
           "point nodes' split codes differ from the bundle's")
    if np.issubdtype(bundle.y.dtype, np.integer):
        ensure(np.array_equal(np.asarray(g.label)[point], bundle.y[rows]), module, rule,
               "point nodes' labels differ from the bundle's")
    if g.members is not None:
        ptr, members = g.members
        for node in np.flatnonzero(~point):
            mem = members[ptr[node]:ptr[node + 1]]
            codes = np.unique(bundle.split[mem])
            ensure(codes.size <= 1 and (codes.size == 0 or codes[0] == g.split[node]), module,
                   rule, f"cluster node {node} (split {g.split[node]}) holds rows of splits "
                   f"{codes.tolist()}")
    covered = np.zeros(len(bundle), bool)
    covered[rows] = True
    if g.members is not None:
        covered[g.members[1]] = True
    ensure(bool(covered.all()), module, rule, f"{int((~covered).sum())} data rows belong to no "
           "node")


@contract("no_validation_or_test_labels_used", kinds=("dataloader",))
def check_dataloader_no_leak(module: type[Module], env: CheckEnv) -> None:
    """Changing validation/test labels leaves edges, hyperedges and clusters identical."""
    bundle = _dataloader_bundle(module, env)
    g1 = _build_graph(module, env, bundle)
    heldout = bundle.split != 0
    y2 = bundle.y.copy()
    if bundle.task == "classification":
        y2[heldout] = (y2[heldout] + 1) % max(bundle.num_classes, 2)
    else:
        y2[heldout] = -y2[heldout] + 7.0
    changed = copy.copy(bundle)
    changed.y = y2
    g2 = _build_graph(module, env, changed)
    diff = _same_structure(g1, g2)
    ensure(not diff, module, "no_validation_or_test_labels_used",
           f"changing only validation/test labels changed the graph ({diff}); edges must come "
           "from features or training labels only")


@contract("deterministic_by_seed", kinds=("dataloader",))
def check_dataloader_deterministic(module: type[Module], env: CheckEnv) -> None:
    """The same bundle and seed give the same graph."""
    bundle = _dataloader_bundle(module, env)
    diff = _same_structure(_build_graph(module, env, bundle, 5),
                           _build_graph(module, env, bundle, 5))
    ensure(not diff, module, "deterministic_by_seed", f"two builds with seed 5 differ ({diff})")


@contract("copes_with_few_rows", kinds=("dataloader",))
def check_dataloader_few_rows(module: type[Module], env: CheckEnv) -> None:
    """Seven rows give a valid graph or a clear HyperGraphError, never a crash."""
    if _unmet_by(BUNDLE_TAGS, module, "dataset"):
        raise SkipCheck("needs a registered dataset; the fixture lacks a required tag")
    bundle = tiny_bundle(n=7, num_classes=2)
    try:
        g = _build_graph(module, env, bundle)
    except HyperGraphError:
        return
    found = graph_problems(g)
    ensure(not found, module, "copes_with_few_rows", "; ".join(found))


@contract("symmetric_as_declared", kinds=("dataloader",), tag="graph:symmetric")
def check_dataloader_symmetric(module: type[Module], env: CheckEnv) -> None:
    """Declares graph:symmetric, so every edge has its reverse with the same weight."""
    g = _build_graph(module, env, _dataloader_bundle(module, env))
    ensure(g.is_symmetric(), module, "symmetric_as_declared",
           "declares 'graph:symmetric' but some edge u->v lacks v->u with the same weight")


@contract("pairwise_as_declared", kinds=("dataloader",), tag="graph:pairwise")
def check_dataloader_pairwise(module: type[Module], env: CheckEnv) -> None:
    """Declares graph:pairwise, so the graph holds CSR edges."""
    g = _build_graph(module, env, _dataloader_bundle(module, env))
    ensure(g.num_edges > 0, module, "pairwise_as_declared",
           "declares 'graph:pairwise' but built no pairwise edges")


@contract("node_type_as_declared", kinds=("dataloader",))
def check_dataloader_node_tags(module: type[Module], env: CheckEnv) -> None:
    """node:point builders make one node per row; node:cluster builders make cluster nodes."""
    bundle = _dataloader_bundle(module, env)
    g = _build_graph(module, env, bundle)
    rule = "node_type_as_declared"
    if "node:point" in module.tags and "node:cluster" not in module.tags:
        ensure(g.members is None and g.num_nodes == len(bundle), module, rule,
               "declares 'node:point' but nodes are not one per data row")
    if "node:cluster" in module.tags:
        ensure(g.members is not None, module, rule,
               "declares 'node:cluster' but the graph has no cluster members")


# ---------------------------------------------------------------------------- graph kind
def _random_edges(n: int, m: int, rng: np.random.Generator,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    keep = src != dst
    key = np.unique(np.minimum(src, dst)[keep] * n + np.maximum(src, dst)[keep])
    src, dst = key // n, key % n
    return src, dst, rng.uniform(0.1, 1.0, src.size).astype(np.float32)


def _graph_kind_inputs(module: type[Module]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                                      np.ndarray, np.ndarray]:
    if not hasattr(module, "from_edges"):
        raise SkipCheck("needs a from_edges constructor to build test graphs")
    rng = np.random.default_rng(7)
    n = 25
    src, dst, w = _random_edges(n, 80, rng)
    split = rng.integers(0, 3, n).astype(np.int8)
    label = rng.integers(0, 4, n).astype(np.int64)
    return n, src, dst, w, split, label


@contract("invariant_to_edge_order", kinds=("hypergraph",))
def check_graph_edge_order(module: type[Module], env: CheckEnv) -> None:
    """Building from the same edges in another order gives the identical graph."""
    n, src, dst, w, split, label = _graph_kind_inputs(module)
    make = module.from_edges  # type: ignore[attr-defined]
    a = make(n, src, dst, w, split=split, label=label)
    order = np.random.default_rng(1).permutation(src.size)
    b = make(n, dst[order], src[order], w[order], split=split, label=label)
    diff = _same_structure(a, b)
    ensure(not diff, module, "invariant_to_edge_order", f"edge order changed the graph ({diff})")
    a.add_edges([0, 1, 2], [5, 6, 7], [0.5, 0.6, 0.7])
    b.add_edges([2, 0, 1], [7, 5, 6], [0.7, 0.5, 0.6])
    diff = _same_structure(a, b)
    ensure(not diff, module, "invariant_to_edge_order",
           f"add_edges in another order gave another graph ({diff})")


@contract("equivariant_to_node_permutation", kinds=("hypergraph",))
def check_graph_node_perm(module: type[Module], env: CheckEnv) -> None:
    """Relabelling nodes permutes adjacency, degrees, splits and subgraphs accordingly."""
    n, src, dst, w, split, label = _graph_kind_inputs(module)
    make = module.from_edges  # type: ignore[attr-defined]
    rule = "equivariant_to_node_permutation"
    perm = np.random.default_rng(2).permutation(n)  # old id i -> new id perm[i]
    inv = np.argsort(perm)
    a = make(n, src, dst, w, split=split, label=label)
    b = make(n, perm[src], perm[dst], w, split=split[inv], label=label[inv])
    A, B = a.to_scipy().toarray(), b.to_scipy().toarray()
    ensure(np.allclose(B[np.ix_(perm, perm)], A), module, rule,
           "the adjacency of the relabelled graph is not the permuted adjacency")
    ensure(np.array_equal(b.degree()[perm], a.degree()), module, rule, "degrees not permuted")
    ensure(np.allclose(b.weighted_degree()[perm], a.weighted_degree()), module, rule,
           "weighted degrees not permuted")
    ensure(a.is_symmetric() == b.is_symmetric(), module, rule, "symmetry changed")
    ensure(np.array_equal(np.sort(perm[a.train_ids()]), b.train_ids()), module, rule,
           "training ids not permuted")
    sa, sb = a.split_subgraph("train"), b.split_subgraph("train")
    pa = a.train_ids()
    pb = perm[pa]  # new ids of the same nodes, in a's order
    order = np.searchsorted(b.train_ids(), pb)
    SA, SB = sa.to_scipy().toarray(), sb.to_scipy().toarray()
    ensure(np.allclose(SB[np.ix_(order, order)], SA), module, rule,
           "the training subgraph is not permutation-equivariant")
    a.remove_edges(src[:5], dst[:5])
    b.remove_edges(perm[src[:5]], perm[dst[:5]])
    A, B = a.to_scipy().toarray(), b.to_scipy().toarray()
    ensure(np.allclose(B[np.ix_(perm, perm)], A), module, rule,
           "remove_edges is not permutation-equivariant")


@contract("save_load_round_trip", kinds=("hypergraph",))
def check_graph_round_trip(module: type[Module], env: CheckEnv) -> None:
    """``save`` then ``load`` gives the same edges, hyperedges and node arrays."""
    n, src, dst, w, split, label = _graph_kind_inputs(module)
    g = module.from_edges(n, src, dst, w, split=split, label=label,  # type: ignore[attr-defined]
                          hyperedges=[[0, 1, 2], [3, 4]])
    path = env.tmp_dir / "g.npz"
    g.save(path)
    h = module.load(path)  # type: ignore[attr-defined]
    diff = _same_structure(g, h)
    rule = "save_load_round_trip"
    ensure(not diff, module, rule, f"round trip changed {diff}")
    ensure(np.array_equal(g.split, h.split) and np.array_equal(g.label, h.label), module, rule,
           "round trip changed node arrays")


# ---------------------------------------------------------------------------- traversals
def _wants_cluster(module: type[Module]) -> bool:
    return any("node:cluster" in r.split("|") and "node:point" not in r.split("|")
               for r in module.requires)


def _traverse(module: type[Module], env: CheckEnv, graph: HyperGraph, batch_size: int,
              seed: int, epochs: int = 3, until_covered: bool = False) -> list[Any]:
    from hypergraph.traversals import TraversalContext

    t = build_module(module, env)
    t.setup(graph, batch_size, np.random.default_rng(seed),
            TraversalContext(score=fixture_score, epochs=epochs))
    out: list[Any] = []
    seen = np.zeros(graph.num_nodes, bool)
    train = graph.train_ids()
    for epoch in range(epochs):
        t.on_epoch_start(epoch)
        steps = t.steps_per_epoch()
        ensure(bool(isinstance(steps, int | np.integer) and steps >= 1), module,
               "steps_per_epoch_positive", f"steps_per_epoch() returned {steps!r}")
        for _ in range(int(steps)):
            sel = t.next_batch()
            out.append(sel)
            ids = np.asarray(sel.ids)
            if t.needs_feedback:
                t.feedback(ids, fixture_score(ids))
            if until_covered and ids.size and ids.min() >= 0 and ids.max() < graph.num_nodes:
                seen[ids] = True
        if until_covered and seen[train].all():
            break
    return out


def _assert_train_only(module: type[Module], graph: HyperGraph, sels: list[Any], rule: str,
                       where: str) -> None:
    train = np.zeros(graph.num_nodes, bool)
    train[graph.train_ids()] = True
    for i, sel in enumerate(sels):
        ids = np.asarray(sel.ids)
        ensure(ids.ndim == 1 and np.issubdtype(ids.dtype, np.integer), module, rule,
               f"{where}: batch {i} ids must be a 1-d integer array, got {ids.dtype} "
               f"{ids.shape}")
        ensure(ids.size >= 1, module, rule, f"{where}: batch {i} is empty")
        ensure(bool(np.all((ids >= 0) & (ids < graph.num_nodes))), module, rule,
               f"{where}: batch {i} holds ids outside [0, {graph.num_nodes})")
        bad = ids[~train[ids]]
        ensure(bad.size == 0, module, rule,
               f"{where}: batch {i} yielded non-training node(s) {bad[:5].tolist()} "
               f"(splits {np.asarray(graph.split)[bad[:5]].tolist()})")


@contract("yields_only_train_ids", kinds=("traversal",))
def check_traversal_train_only(module: type[Module], env: CheckEnv) -> None:
    """Every batch holds only training node ids (never validation or test nodes)."""
    g = fixture_graph("standard", cluster=_wants_cluster(module))
    _assert_train_only(module, g, _traverse(module, env, g, 4, 0), "yields_only_train_ids",
                       "standard graph")


@contract("respects_batch_size", kinds=("traversal",))
def check_traversal_batch_size(module: type[Module], env: CheckEnv) -> None:
    """Batches hold between 1 and ``batch_size`` ids; weights, if any, match the ids."""
    g = fixture_graph("standard", cluster=_wants_cluster(module))
    rule = "respects_batch_size"
    for bs in (1, 5, 64):
        for i, sel in enumerate(_traverse(module, env, g, bs, 0, epochs=2)):
            ids = np.asarray(sel.ids)
            ensure(1 <= ids.size <= bs, module, rule,
                   f"batch {i} holds {ids.size} ids with batch_size={bs}")
            if sel.weights is not None:
                w = np.asarray(sel.weights)
                ensure(w.shape == ids.shape, module, rule,
                       f"weights shape {w.shape} differs from ids shape {ids.shape}")
                ensure(bool(np.all(np.isfinite(w)) and np.all(w >= 0)), module, rule,
                       "weights must be finite and non-negative")
                ensure(any("sample_weights" in r.split("|") for r in module.requires),
                       module, "declares_weights_requirement",
                       "returns per-sample weights but does not require 'sample_weights', so "
                       "it may be paired with a model that ignores them")


@contract("deterministic_by_seed", kinds=("traversal",))
def check_traversal_deterministic(module: type[Module], env: CheckEnv) -> None:
    """Two fresh instances with the same seed yield the same batches."""
    g = fixture_graph("standard", cluster=_wants_cluster(module))
    a = _traverse(module, env, g, 4, 11)
    b = _traverse(module, env, g, 4, 11)
    ensure(len(a) == len(b), module, "deterministic_by_seed",
           f"{len(a)} vs {len(b)} batches with the same seed")
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        ensure(np.array_equal(x.ids, y.ids), module, "deterministic_by_seed",
               f"batch {i} differs between two runs with the same seed")


def _graph_check(variant: str) -> CheckFunc:
    def run(module: type[Module], env: CheckEnv) -> None:
        g = fixture_graph(variant, cluster=_wants_cluster(module))
        _assert_train_only(module, g, _traverse(module, env, g, 4, 0),
                           f"copes_with_{variant}_graph", f"{variant} graph")

    run.__doc__ = f"Runs on the '{variant}' fixture graph, yielding only training ids."
    return run


for _variant in GRAPH_VARIANTS[1:]:
    contract(f"copes_with_{_variant}_graph", kinds=("traversal",))(_graph_check(_variant))


@contract("visits_every_training_node", kinds=("traversal",), tag="covers_all")
def check_traversal_covers(module: type[Module], env: CheckEnv) -> None:
    """Declares covers_all, so within 200 epochs it visits every training node of each graph."""
    for variant in ("standard", "isolated", "disconnected"):
        g = fixture_graph(variant, cluster=_wants_cluster(module))
        sels = _traverse(module, env, g, 4, 0, epochs=200, until_covered=True)
        seen = np.unique(np.concatenate([np.asarray(s.ids) for s in sels]))
        missing = np.setdiff1d(g.train_ids(), seen)
        ensure(missing.size == 0, module, "visits_every_training_node",
               f"declares 'covers_all' but never visited training nodes "
               f"{missing[:8].tolist()} of the {variant} graph in 200 epochs")


@contract("state_round_trip", kinds=("traversal",))
def check_traversal_state(module: type[Module], env: CheckEnv) -> None:
    """``state_dict`` then ``load_state_dict`` resumes the exact same batch sequence."""
    from hypergraph.traversals import TraversalContext

    g = fixture_graph("standard", cluster=_wants_cluster(module))
    t = build_module(module, env)
    t.setup(g, 4, np.random.default_rng(3), TraversalContext(score=fixture_score, epochs=2))
    t.on_epoch_start(0)
    for _ in range(3):
        sel = t.next_batch()
        if t.needs_feedback:
            t.feedback(sel.ids, fixture_score(sel.ids))
    state = copy.deepcopy(t.state_dict())

    def tail(tr: Any) -> list[np.ndarray]:
        out = []
        for _ in range(6):
            s = tr.next_batch()
            if tr.needs_feedback:
                tr.feedback(s.ids, fixture_score(s.ids))
            out.append(np.asarray(s.ids).copy())
        return out

    first = tail(t)
    u = build_module(module, env)
    u.setup(g, 4, np.random.default_rng(99), TraversalContext(score=fixture_score, epochs=2))
    u.on_epoch_start(0)
    u.load_state_dict(copy.deepcopy(state))
    second = tail(u)
    for i, (x, y) in enumerate(zip(first, second, strict=True)):
        ensure(np.array_equal(x, y), module, "state_round_trip",
               f"after load_state_dict batch {i} differs from the original run")


@contract("survives_graph_change", kinds=("traversal",))
def check_traversal_graph_change(module: type[Module], env: CheckEnv) -> None:
    """After ``on_graph_change`` (edges removed) it still yields only training ids."""
    from hypergraph.traversals import TraversalContext

    g = fixture_graph("standard", cluster=_wants_cluster(module))
    t = build_module(module, env)
    t.setup(g, 4, np.random.default_rng(0), TraversalContext(score=fixture_score, epochs=2))
    t.on_epoch_start(0)
    t.next_batch()
    src, dst, _ = g.edge_list()
    g.remove_edges(src[::2], dst[::2])
    t.on_graph_change(g)
    sels = []
    for _ in range(8):
        s = t.next_batch()
        if t.needs_feedback:
            t.feedback(s.ids, fixture_score(s.ids))
        sels.append(s)
    _assert_train_only(module, g, sels, "survives_graph_change", "after a graph change")


# ---------------------------------------------------------------------------- models
def _model_task(module: type[Module]) -> str:
    if "task:classification" in module.tags or "task:regression" not in module.tags:
        return "classification"
    return "regression"


def _setup_model(module: type[Module], env: CheckEnv, task: str = "", seed: int = 0,
                 ) -> tuple[Any, torch.Tensor, torch.Tensor]:
    task = task or _model_task(module)
    bundle = tiny_bundle(task)
    m = build_module(module, env)
    m.setup(bundle.store.item_shape, bundle.num_outputs, task, device="cpu", seed=seed)
    rows = np.flatnonzero(bundle.split == 0)[:12]
    x = torch.from_numpy(bundle.features()[rows])
    dtype = np.int64 if task == "classification" else np.float32
    y = torch.from_numpy(bundle.y[rows].astype(dtype))
    return m, x, y


def _step(m: Any, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None,
          seed: int = 123) -> torch.Tensor:
    torch.manual_seed(seed)
    out: torch.Tensor = m.train_step(x, y, w)
    return out


@contract("per_sample_loss_shape", kinds=("model",))
def check_model_loss_shape(module: type[Module], env: CheckEnv) -> None:
    """``train_step`` and ``losses`` return one finite loss per sample (shape ``[batch]``)."""
    m, x, y = _setup_model(module, env)
    rule = "per_sample_loss_shape"
    out = _step(m, x, y)
    ensure(tuple(out.shape) == (x.shape[0],), module, rule,
           f"train_step returned shape {tuple(out.shape)} for a batch of {x.shape[0]}")
    ensure(not out.requires_grad, module, rule, "train_step must return detached losses")
    ensure(bool(torch.isfinite(out).all()), module, rule, "train_step returned non-finite losses")
    ls = m.losses(x, y)
    ensure(tuple(ls.shape) == (x.shape[0],), module, rule,
           f"losses() returned shape {tuple(ls.shape)} for a batch of {x.shape[0]}")


@contract("gradient_step_changes_parameters", kinds=("model",))
def check_model_step_changes(module: type[Module], env: CheckEnv) -> None:
    """One ``train_step`` changes the model's outputs; ``losses``/``predict`` change nothing."""
    m, x, y = _setup_model(module, env)
    before = m.predict(x).clone()
    m.losses(x, y)
    again = m.predict(x)
    ensure(torch.equal(before, again), module, "gradient_step_changes_parameters",
           "losses() or predict() changed the model")
    _step(m, x, y)
    after = m.predict(x)
    ensure(not torch.equal(before, after), module, "gradient_step_changes_parameters",
           "a train_step left every output unchanged")


@contract("state_round_trip", kinds=("model",))
def check_model_state(module: type[Module], env: CheckEnv) -> None:
    """save/load restores outputs exactly, and the next step matches (optimiser state too)."""
    rule = "state_round_trip"
    a, x, y = _setup_model(module, env, seed=0)
    _step(a, x, y, seed=1)
    _step(a, x, y, seed=2)
    path = env.tmp_dir / "model.pt"
    a.save(path)
    b, _, _ = _setup_model(module, env, seed=5)
    b.load(path)
    ensure(torch.allclose(a.predict(x), b.predict(x), atol=1e-6), module, rule,
           "outputs differ after save/load")
    _step(a, x, y, seed=3)
    _step(b, x, y, seed=3)
    ensure(torch.allclose(a.predict(x), b.predict(x), atol=1e-5), module, rule,
           "the step after save/load differs from the original's (optimiser state not restored?)")


@contract("predict_empty_batch", kinds=("model",))
def check_model_empty(module: type[Module], env: CheckEnv) -> None:
    """``predict`` on an empty batch returns an empty result; a full batch one row per sample."""
    m, x, _ = _setup_model(module, env)
    out = m.predict(x[:0])
    ensure(out.shape[0] == 0, module, "predict_empty_batch",
           f"predict on an empty batch returned shape {tuple(out.shape)}")
    full = m.predict(x)
    ensure(full.shape[0] == x.shape[0], module, "predict_empty_batch",
           f"predict returned {full.shape[0]} rows for {x.shape[0]} samples")


@contract("deterministic_by_seed", kinds=("model",))
def check_model_deterministic(module: type[Module], env: CheckEnv) -> None:
    """Two set-ups with the same seed give the same outputs before and after a step."""
    a, x, y = _setup_model(module, env, seed=4)
    b, _, _ = _setup_model(module, env, seed=4)
    rule = "deterministic_by_seed"
    ensure(torch.equal(a.predict(x), b.predict(x)), module, rule,
           "same seed, different initial outputs")
    _step(a, x, y)
    _step(b, x, y)
    ensure(torch.allclose(a.predict(x), b.predict(x), atol=1e-6), module, rule,
           "same seed, different outputs after one step")


@contract("per_sample_loss_honest", kinds=("model",), tag="per_sample_loss")
def check_model_per_sample(module: type[Module], env: CheckEnv) -> None:
    """Declares per_sample_loss: sample i's loss equals its loss alone, not a batch mean."""
    m, x, y = _setup_model(module, env)
    rule = "per_sample_loss_honest"
    batch = m.losses(x, y).float()
    alone = torch.cat([m.losses(x[i:i + 1], y[i:i + 1]).float().reshape(-1)
                       for i in range(x.shape[0])])
    ensure(float(batch.max() - batch.min()) > 1e-7, module, rule,
           "every sample of a batch got the same loss (a broadcast mean?)")
    ensure(torch.allclose(batch, alone, rtol=1e-4, atol=1e-5), module, rule,
           "a sample's loss depends on the rest of its batch (max difference "
           f"{float((batch - alone).abs().max()):.3g}); it must be the sample's own loss")
    trained = _step(m, x, y).float()
    ensure(float(trained.max() - trained.min()) > 1e-7, module, rule,
           "train_step returned the same loss for every sample (a broadcast mean?)")


@contract("embedding_honest", kinds=("model",), tag="embedding")
def check_model_embedding(module: type[Module], env: CheckEnv) -> None:
    """Declares embedding: ``embed(x)`` returns one finite vector per sample, deterministically."""
    m, x, _ = _setup_model(module, env)
    rule = "embedding_honest"
    e = m.embed(x)
    ensure(e.ndim == 2 and e.shape[0] == x.shape[0], module, rule,
           f"embed returned shape {tuple(e.shape)} for {x.shape[0]} samples; expected "
           "[batch, dim]")
    ensure(bool(torch.isfinite(e).all()), module, rule, "embed returned non-finite values")
    ensure(torch.equal(e, m.embed(x)), module, rule, "embed is not deterministic")


@contract("sample_weights_honest", kinds=("model",), tag="sample_weights")
def check_model_weights(module: type[Module], env: CheckEnv) -> None:
    """Declares sample_weights: all-ones weights equal no weights, other weights change the step."""
    rule = "sample_weights_honest"
    a, x, y = _setup_model(module, env, seed=8)
    b, _, _ = _setup_model(module, env, seed=8)
    c, _, _ = _setup_model(module, env, seed=8)
    _step(a, x, y, None)
    _step(b, x, y, torch.ones(x.shape[0]))
    w = torch.zeros(x.shape[0])
    w[0] = float(x.shape[0])
    _step(c, x, y, w)
    pa, pb, pc = a.predict(x), b.predict(x), c.predict(x)
    ensure(torch.allclose(pa, pb, atol=1e-6), module, rule,
           "weights of all ones gave another step than no weights")
    ensure(not torch.allclose(pa, pc, atol=1e-7), module, rule,
           "putting all the weight on one sample did not change the step: weights are ignored")


def _task_check(task: str) -> CheckFunc:
    def run(module: type[Module], env: CheckEnv) -> None:
        m, x, y = _setup_model(module, env, task=task)
        rule = f"task_{task}_honest"
        losses = _step(m, x, y)
        ensure(tuple(losses.shape) == (x.shape[0],) and bool(torch.isfinite(losses).all()),
               module, rule, f"train_step on a {task} batch gave shape {tuple(losses.shape)} "
               "or non-finite losses")
        out = m.predict(x)
        width = 3 if task == "classification" else 1
        ensure(out.shape[0] == x.shape[0] and int(np.prod(out.shape[1:])) == width, module,
               rule, f"predict gave shape {tuple(out.shape)} for {task} with {width} outputs")
        metrics = m.evaluate(x, y)
        ensure("loss" in metrics, module, rule, f"evaluate returned {sorted(metrics)} (no loss)")

    run.__doc__ = f"Declares task:{task}: trains, predicts and evaluates on a {task} batch."
    return run


for _task in ("classification", "regression"):
    contract(f"task_{_task}_honest", kinds=("model",), tag=f"task:{_task}")(_task_check(_task))


# ---------------------------------------------------------------------------- managers
def _manager_world(module: type[Module], env: CheckEnv, seed: int = 0,
                   ) -> tuple[Any, HyperGraph, Any, Any]:
    from hypergraph.trainers import BatchGatherer

    bundle = tiny_bundle()
    if _wants_cluster(module):
        graph = fixture_graph("standard", cluster=True)
        bundle = tiny_bundle(n=len(graph.store))  # type: ignore[arg-type]
        bundle.store = graph.store  # type: ignore[assignment]
    else:
        graph = knn_graph(bundle)
    model = _build_partner("model", module, env)
    model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task, device="cpu", seed=0)
    gather = BatchGatherer(graph, bundle, torch.device("cpu"), np.random.default_rng(0))
    mgr = build_module(module, env)
    mgr.setup(graph, np.random.default_rng(seed))
    return mgr, graph, model, gather


def _run_manager(module: type[Module], mgr: Any, graph: HyperGraph, model: Any, gather: Any,
                 epochs: int, rng: np.random.Generator, first_epoch: int = 0) -> None:
    split, label, n = graph.split.copy(), np.asarray(graph.label).copy(), graph.num_nodes
    train = graph.train_ids()

    def verify(changed: Any, before: dict[str, np.ndarray], where: str) -> None:
        found = graph_problems(graph)
        ensure(not found, module, "graph_valid_after_every_update", f"after {where}: "
               + "; ".join(found))
        ensure(graph.num_nodes == n and np.array_equal(graph.split, split)
               and np.array_equal(np.asarray(graph.label), label), module,
               "graph_valid_after_every_update",
               f"after {where}: the nodes, splits or labels changed")
        ensure(isinstance(changed, bool | np.bool_), module, "reports_graph_changes",
               f"{where} returned {changed!r}; hooks return True/False")
        now = _graph_arrays(graph)
        same = set(now) == set(before) and all(
            now[k].shape == before[k].shape and np.array_equal(now[k], before[k]) for k in now)
        ensure(bool(changed) or same, module, "reports_graph_changes",
               f"{where} changed the graph but returned False, so the traversal is not told")

    for epoch in range(first_epoch, first_epoch + epochs):
        for step in range(3):
            ids = rng.choice(train, size=min(8, train.size), replace=False)
            x, y = gather(ids)
            losses = model.train_step(x, y).float().numpy()
            before = _graph_arrays(graph)
            changed = mgr.on_step(graph, model, ids, losses)
            verify(changed, before, f"on_step (epoch {epoch}, step {step})")
        before = _graph_arrays(graph)
        changed = mgr.on_epoch_end(graph, model, epoch)
        verify(changed, before, f"on_epoch_end (epoch {epoch})")


@contract("graph_valid_after_every_update", kinds=("manager",))
def check_manager_valid(module: type[Module], env: CheckEnv) -> None:
    """After every hook the graph is valid, nodes/splits/labels unchanged, changes reported."""
    mgr, graph, model, gather = _manager_world(module, env)
    _run_manager(module, mgr, graph, model, gather, 4, np.random.default_rng(1))


@contract("deterministic_by_seed", kinds=("manager",))
def check_manager_deterministic(module: type[Module], env: CheckEnv) -> None:
    """Two runs with the same seeds end with the same graph."""
    graphs = []
    for _ in range(2):
        torch.manual_seed(0)
        mgr, graph, model, gather = _manager_world(module, env, seed=4)
        _run_manager(module, mgr, graph, model, gather, 3, np.random.default_rng(2))
        graphs.append(graph)
    diff = _same_structure(graphs[0], graphs[1])
    ensure(not diff, module, "deterministic_by_seed", f"two runs ended in different graphs "
           f"({diff})")


@contract("state_round_trip", kinds=("manager",))
def check_manager_state(module: type[Module], env: CheckEnv) -> None:
    """``state_dict`` survives a deep copy and ``load_state_dict`` accepts it."""
    mgr, graph, model, gather = _manager_world(module, env)
    _run_manager(module, mgr, graph, model, gather, 2, np.random.default_rng(1))
    state = copy.deepcopy(mgr.state_dict())
    fresh = build_module(module, env)
    fresh.setup(graph, np.random.default_rng(77))
    fresh.load_state_dict(state)
    again = copy.deepcopy(fresh.state_dict())
    ensure(_nested_equal(state, again), module, "state_round_trip",
           "state_dict() after load_state_dict() differs from the state loaded")


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


# ---------------------------------------------------------------------------- trainers
@contract("fit_returns_metrics", kinds=("trainer",))
def check_trainer_fit(module: type[Module], env: CheckEnv) -> None:
    """``fit`` on a tiny context trains and returns val/test metrics and counters."""
    from hypergraph.trainers import TrainContext

    bundle = tiny_bundle()
    graph = knn_graph(bundle)
    model = _build_partner("model", module, env)
    model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task, device="cpu", seed=0)
    traversal = _build_partner("traversal", module, env)
    manager = _build_partner("manager", module, env)
    trainer = build_module(module, env)
    ctx = TrainContext(bundle=bundle, graph=graph, model=model, traversal=traversal,
                       manager=manager, streams=RngStreams(0), device=torch.device("cpu"))
    result = trainer.fit(ctx)
    rule = "fit_returns_metrics"
    for key in ("val", "test", "samples_seen", "steps", "epochs", "wall_s"):
        ensure(key in result, module, rule, f"fit() result lacks '{key}'")
    ensure(result["steps"] >= 1 and result["samples_seen"] >= 1, module, rule,
           f"fit() took {result['steps']} steps")
    ensure("loss" in result["test"], module, rule, "test metrics lack 'loss'")
