"""Contract checks of every module's parameters, and of datasets and dataloaders."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np

from hypergraph.base import Module, hyperparameter_names
from hypergraph.exceptions import HyperGraphError, InvalidParameterError, UnknownNameError
from hypergraph.graph import HyperGraph
from hypergraph.spaces import Categorical, Float, Int, Param
from hypergraph.testing._core import (
    CheckEnv,
    SkipCheck,
    _has_own_hook,
    _partner,
    _required_args,
    _same,
    _same_structure,
    _unmet_by,
    build_module,
    contract,
    ensure,
    fail,
    graph_problems,
)
from hypergraph.testing._fixtures import (
    BUNDLE_TAGS,
    subsample_bundle,
    tiny_bundle,
)


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
        accepted = True
    except UnknownNameError:
        accepted = False  # the expected refusal
    if accepted:
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
