"""Contract checks of the ``store`` kind: every store gathers the arrays the data hold.

A store module is given the stores a dataset can make, built on tiny files under the check's
temporary folder: an in-memory one (:class:`~hypergraph.data.ArrayStore`) and one reading an
``.npy`` file per item (:class:`~hypergraph.data.FileStore`, tag ``source:files``). Modules that
require ``source:files`` are given only the latter.
"""

from __future__ import annotations

import numpy as np

from hypergraph.base import Module
from hypergraph.data import ArrayStore, DataStore, FileStore
from hypergraph.exceptions import HyperGraphError
from hypergraph.testing._core import CheckEnv, SkipCheck, build_module, contract, ensure, fail

#: Items of the fixture stores, and the shape of one item.
ITEMS, ITEM_SHAPE = 20, (2, 3)
#: Rows asked for: out of order, repeated, first and last.
ROWS = np.array([3, 0, 19, 3, 7, 7, 12, 19, 1], np.int64)


def _array() -> np.ndarray:
    return np.random.default_rng(11).random((ITEMS, *ITEM_SHAPE)).astype(np.float32)


def _file_store(env: CheckEnv, array: np.ndarray) -> FileStore:
    folder = env.tmp_dir / "store_items"
    folder.mkdir(exist_ok=True)
    paths = []
    for i, item in enumerate(array):
        path = folder / f"{i:03d}.npy"
        np.save(path, item)
        paths.append(str(path))
    return FileStore(paths, np.load, ITEM_SHAPE, cache_size=0)


def _sources(module: type[Module], env: CheckEnv, array: np.ndarray,
             ) -> dict[str, DataStore]:
    """The dataset stores ``module`` can serve, by name (files only for ``source:files``)."""
    files_only = any("source:files" in r.split("|") for r in module.requires)
    sources: dict[str, DataStore] = {} if files_only else {"memory": ArrayStore(array.copy())}
    sources["files"] = _file_store(env, array)
    return sources


@contract("gathers_same_arrays", kinds=("store",))
def check_store_gathers(module: type[Module], env: CheckEnv) -> None:
    """Any rows, in any order and repeated, read the same arrays from every store it serves."""
    rule = "gathers_same_arrays"
    array = _array()
    for label, source in _sources(module, env, array).items():
        store = build_module(module, env).make(source)
        ensure(len(store) == ITEMS and tuple(store.item_shape) == ITEM_SHAPE, module, rule,
               f"from the {label} store: {len(store)} items of shape {store.item_shape}, "
               f"expected {ITEMS} of {ITEM_SHAPE}")
        for attempt in ("first", "second"):  # the second read may come from a cache
            got = np.asarray(store.get(ROWS))
            ensure(got.shape == (ROWS.size, *ITEM_SHAPE) and np.array_equal(got, array[ROWS]),
                   module, rule, f"from the {label} store, the {attempt} read of rows "
                   f"{ROWS.tolist()} differs from the data")
        ensure(np.array_equal(store.get(np.arange(ITEMS)), array), module, rule,
               f"from the {label} store, reading every row differs from the data")


@contract("memory_as_declared", kinds=("store",), tag="store:memory")
def check_store_memory(module: type[Module], env: CheckEnv) -> None:
    """A store tagged ``store:memory`` holds every item in memory (``as_array()``)."""
    array = _array()
    for label, source in _sources(module, env, array).items():
        held = build_module(module, env).make(source).as_array()
        ensure(held is not None and np.array_equal(held, array), module, "memory_as_declared",
               f"from the {label} store, as_array() does not hold the data in memory")


@contract("cache_size_respected", kinds=("store",), tag="store:file")
def check_store_cache(module: type[Module], env: CheckEnv) -> None:
    """A store tagged ``store:file`` keeps items in their files, at most ``cache_size`` cached."""
    rule = "cache_size_respected"
    ensure("cache_size" in module.space, module, rule,
           "declares 'store:file' but has no cache_size hyperparameter")
    array = _array()
    source = _file_store(env, array)
    for size in (0, 3):
        store = module.from_params({"cache_size": size}).make(source)  # type: ignore[attr-defined]
        ensure(store.as_array() is None, module, rule,
               "declares 'store:file' but holds every item in memory (as_array())")
        for rows in (ROWS, ROWS[::-1], np.arange(ITEMS)):
            store.get(rows)
            cached = getattr(store, "cached", None)
            ensure(isinstance(cached, int) and cached <= size, module, rule,
                   f"with cache_size={size}, {cached} items are cached after reading rows")


@contract("refuses_stores_it_cannot_serve", kinds=("store",))
def check_store_refuses(module: type[Module], env: CheckEnv) -> None:
    """A store requiring ``source:files`` refuses in-memory features with a clear error."""
    if not any("source:files" in r.split("|") for r in module.requires):
        raise SkipCheck("serves every store (requires no source:files)")
    try:
        build_module(module, env).make(ArrayStore(_array()))
    except HyperGraphError:
        return
    raise fail(module, "refuses_stores_it_cannot_serve", "given features held in memory, "
               "make() returned a store instead of raising a HyperGraphError")
