"""Modules registered by name, per kind.

``@register("traversal", "random_walk")`` puts a class in the registry; a second class under the
same kind and name is refused. :func:`resolve` answers unknown names with the valid choices and
the closest match. Third-party packages add modules through the entry-point group
``hypergraph.modules`` (each entry point names a module to import, whose import registers its
classes) or through ``--plugins some.module`` (:func:`load_plugins`).

Listing modules (:func:`descriptions`, behind ``hypergraph modules``) does not import the
built-ins: their descriptions are read from ``_module_index.json``, written by
``python tools/module_index.py`` and checked against the live classes by
``tests/test_registry.py``. Resolving a name always imports the real class.
"""

from __future__ import annotations

import functools
import importlib
import json
import traceback
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hypergraph.exceptions import HyperGraphError, UnknownNameError
from hypergraph.kinds import KIND_NAMES
from hypergraph.logging import get_logger

if TYPE_CHECKING:
    from hypergraph.base import Module

__all__ = [
    "KINDS",
    "all_modules",
    "broken_entry_points",
    "broken_plugins_note",
    "describe",
    "descriptions",
    "load_builtins",
    "load_plugins",
    "names",
    "register",
    "resolve",
]

logger = get_logger(__name__)

#: The module kinds, in the order a run builds them (the run kinds of
#: :data:`hypergraph.kinds.RUN_KINDS`: every registered kind is one a run chooses by name).
KINDS: tuple[str, ...] = KIND_NAMES

ENTRY_POINT_GROUP = "hypergraph.modules"

_REGISTRY: dict[str, dict[str, type[Module]]] = {kind: {} for kind in KINDS}
_state = {"builtins": False, "entry_points": False}
#: Entry points that failed to load: ``"name = value"`` -> what went wrong (see :func:`resolve`).
_BROKEN_ENTRY_POINTS: dict[str, str] = {}

T = TypeVar("T", bound="type[Module]")


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator registering a module under ``kind`` and ``name``.

    Raises:
        UnknownNameError: ``kind`` is not one of :data:`KINDS`.
        HyperGraphError: another class is already registered under that name.
    """
    if kind not in _REGISTRY:
        raise UnknownNameError("module kind", kind, KINDS)

    def decorator(cls: T) -> T:
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not cls:
            raise HyperGraphError(
                f"A {kind} named '{name}' is already registered ({existing.__module__}."
                f"{existing.__qualname__}); refusing to register {cls.__module__}."
                f"{cls.__qualname__} under the same name. Pick another name."
            )
        cls.kind = kind
        cls.name = name
        _REGISTRY[kind][name] = cls
        return cls

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registration (for tests and interactive use)."""
    _REGISTRY.get(kind, {}).pop(name, None)


def _describe_error(err: BaseException) -> str:
    """``Type: message`` of an import-time error, with the file and line where it arose."""
    if isinstance(err, SyntaxError):
        where = f"{err.filename}:{err.lineno}" if err.filename else f"line {err.lineno}"
        return f"SyntaxError: {err.msg} ({where})"
    text = f"{type(err).__name__}: {err}".rstrip(": ")
    frames = traceback.extract_tb(err.__traceback__)
    # the innermost frame outside the import machinery: where the plugin's own code failed
    own = [f for f in frames if "importlib" not in f.filename
           and not f.filename.startswith("<frozen")]
    if own:
        text += f" (at {own[-1].filename}:{own[-1].lineno})"
    return text


def _load_entry_points() -> None:
    """Import the plugins of the entry-point group (once); broken ones are noted, not raised."""
    if _state["entry_points"]:
        return
    _state["entry_points"] = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            _load_undoing(ep.load)
        except Exception as err:
            # A broken installed plugin must not break commands that do not use it: warn,
            # and name it in the error of any lookup that then fails (see resolve()).
            label = f"{getattr(ep, 'name', '?')} = {ep.value}"
            _BROKEN_ENTRY_POINTS[label] = _describe_error(err)
            logger.warning("Plugin entry point '%s' (group %s) failed to load: %s", label,
                           ENTRY_POINT_GROUP, _BROKEN_ENTRY_POINTS[label])


def _load_undoing(load: Callable[[], object]) -> None:
    """Run ``load`` (a plugin import); on failure undo the registrations it made before failing,
    so that a half-imported plugin leaves nothing behind (and a retry is not refused as a
    duplicate)."""
    before = {kind: dict(found) for kind, found in _REGISTRY.items()}
    try:
        load()
    except BaseException:
        for kind, found in before.items():
            _REGISTRY[kind].clear()
            _REGISTRY[kind].update(found)
        raise


def load_builtins() -> None:
    """Register every built-in module and installed plugin now (normally done on first use)."""
    _ensure_loaded()


def _ensure_loaded() -> None:
    if not _state["builtins"]:
        _state["builtins"] = True
        importlib.import_module("hypergraph._builtin_modules")
    _load_entry_points()


def broken_entry_points() -> dict[str, str]:
    """Plugin entry points that failed to load: ``"name = module"`` -> the error."""
    _ensure_loaded()
    return dict(_BROKEN_ENTRY_POINTS)


def broken_plugins_note() -> str:
    """A sentence naming the entry points that failed to load (empty when none did)."""
    if not _BROKEN_ENTRY_POINTS:
        return ""
    items = "; ".join(f"'{label}' failed with {err}" for label, err in
                      _BROKEN_ENTRY_POINTS.items())
    return (f" Installed plugin entry points that failed to load (the name may come from one "
            f"of them; fix or uninstall it): {items}.")


def load_plugins(modules: Iterable[str]) -> None:
    """Import plugin modules by dotted name so that their ``@register`` calls run.

    Raises:
        HyperGraphError: a module cannot be found, or raises (any exception, a syntax error)
            while it is imported; the message names it and its error (the traceback is kept as
            ``__cause__`` for ``--debug``). Classes it registered before failing are removed.
    """
    _ensure_loaded()
    for mod in modules:
        mod = mod.strip()
        if not mod:
            continue
        try:
            _load_undoing(functools.partial(importlib.import_module, mod))
        except ModuleNotFoundError as err:
            missing = err.name or ""
            if mod == missing or mod.startswith(missing + "."):
                raise HyperGraphError(
                    f"Could not import plugin module '{mod}': {err}. Check that it is installed "
                    "or on PYTHONPATH, and give its dotted module name (e.g. my_pkg.modules)."
                ) from err
            raise HyperGraphError(
                f"Plugin module '{mod}' failed while being imported: "
                f"{_describe_error(err)}. Install what it imports, or fix the plugin."
            ) from err
        except HyperGraphError as err:  # e.g. a duplicate registration: already one paragraph
            raise HyperGraphError(f"Plugin module '{mod}' failed while being imported: "
                                  f"{err}") from err
        except Exception as err:
            raise HyperGraphError(
                f"Plugin module '{mod}' failed while being imported: "
                f"{_describe_error(err)}. Fix the plugin (run with --debug for the "
                "traceback)."
            ) from err


def resolve(kind: str, name: str) -> type[Module]:
    """Return the class registered under ``kind``/``name``.

    Raises:
        UnknownNameError: with the list of valid names and the closest match.
    """
    _ensure_loaded()
    if kind not in _REGISTRY:
        raise UnknownNameError("module kind", kind, KINDS)
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise UnknownNameError(kind, name, _REGISTRY[kind], note=broken_plugins_note()) from None


def names(kind: str) -> list[str]:
    """Sorted names registered for ``kind``."""
    _ensure_loaded()
    if kind not in _REGISTRY:
        raise UnknownNameError("module kind", kind, KINDS)
    return sorted(_REGISTRY[kind])


def all_modules(kind: str | None = None) -> list[type[Module]]:
    """Every registered class (of one kind, or all kinds in :data:`KINDS` order)."""
    _ensure_loaded()
    kinds = KINDS if kind is None else (kind,)
    out: list[type[Module]] = []
    for k in kinds:
        if k not in _REGISTRY:
            raise UnknownNameError("module kind", k, KINDS)
        out.extend(_REGISTRY[k][n] for n in sorted(_REGISTRY[k]))
    return out


def describe(cls: type[Module]) -> dict[str, Any]:
    """A JSON-friendly description of one registered module."""
    return {
        "kind": cls.kind,
        "name": cls.name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        "tags": sorted(cls.tags),
        "requires": sorted(cls.requires),
        "space": {
            p: {"default": _jsonable(param.default), "range": param.describe(),
                "searchable": param.searchable, "help": param.help}
            for p, param in cls.space.items()
        },
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


#: Descriptions of the built-in modules (:func:`describe`), read by :func:`descriptions`.
INDEX_PATH = Path(__file__).with_name("_module_index.json")
_INDEX_SLACK_S = 5.0


def build_index() -> dict[str, Any]:
    """What ``_module_index.json`` must hold: :func:`describe` of every built-in module, and
    the source files those descriptions come from (relative to the folder above the package).

    Imports the built-ins (no plugin); ``tools/module_index.py`` writes the result.
    """
    import inspect

    importlib.import_module("hypergraph._builtin_modules")
    root = INDEX_PATH.parent.parent
    classes = [cls for kind in KINDS for _, cls in sorted(_REGISTRY[kind].items())
               if cls.__module__.startswith("hypergraph.")]
    folders = {Path(inspect.getfile(base)).parent for cls in classes for base in cls.__mro__
               if base.__module__.startswith("hypergraph.")}
    sources = {p for folder in folders for p in folder.glob("*.py")}
    sources |= {INDEX_PATH.with_name("base.py"), INDEX_PATH.with_name("spaces.py")}
    return {"sources": sorted(p.resolve().relative_to(root.resolve()).as_posix()
                              for p in sources),
            "modules": [describe(cls) for cls in classes]}


def _read_index() -> list[dict[str, Any]] | None:
    """The built-ins' descriptions from the index; ``None`` when it is missing, unreadable,
    or older than a source file it was made from (then the classes are imported instead).

    Files written within :data:`_INDEX_SLACK_S` of the index count as its own (a checkout or
    an install writes them all at once, in no set order).
    """
    try:
        stamp = INDEX_PATH.stat().st_mtime
        index = json.loads(INDEX_PATH.read_text(encoding="utf-8"))
        root = INDEX_PATH.parent.parent
        for path in index["sources"]:
            if (root / path).stat().st_mtime > stamp + _INDEX_SLACK_S:
                logger.debug("The module index is older than %s: importing the modules.", path)
                return None
        entries: list[dict[str, Any]] = index["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entries


def descriptions(kind: str | None = None) -> list[dict[str, Any]]:
    """:func:`describe` of every registered module (of one kind, or all in :data:`KINDS` order).

    The built-ins' descriptions come from the module index when it is current, so that
    listing does not import torch; installed plugins are imported (they must be, to be
    described), and so is anything registered in this process.

    Raises:
        UnknownNameError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind is not None and kind not in KINDS:
        raise UnknownNameError("module kind", kind, KINDS)
    index = None if _state["builtins"] else _read_index()
    if index is None:
        return [describe(cls) for cls in all_modules(kind)]
    _load_entry_points()
    found = {(str(d["kind"]), str(d["name"])): d for d in index}
    found.update({(k, n): describe(cls) for k, named in _REGISTRY.items()
                  for n, cls in named.items()})
    order = sorted(found, key=lambda kn: (KINDS.index(kn[0]), kn[1]))
    return [found[kn] for kn in order if kind is None or kn[0] == kind]
