"""HyperGraph: train machine-learning models by traversing a graph of data points.

The public entry points: :func:`hypergraph.run.train` with a :class:`~hypergraph.config.RunConfig`,
the registry (:func:`~hypergraph.registry.resolve`, :func:`~hypergraph.registry.register`), the
graph (:class:`~hypergraph.graph.HyperGraph`) and the ten module base classes.

The names below are imported on first use (PEP 562), so ``import hypergraph`` and the command
line's ``--help`` do not pay for torch until a command needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY = {
    "from_arrays": "hypergraph.api",
    "Module": "hypergraph.base",
    "RunConfig": "hypergraph.config",
    "load_config": "hypergraph.config",
    "HyperGraphError": "hypergraph.exceptions",
    "HyperGraph": "hypergraph.graph",
    "get_logger": "hypergraph.logging",
    "register": "hypergraph.registry",
    "resolve": "hypergraph.registry",
    "train": "hypergraph.run",
}

__all__ = [
    "HyperGraph",
    "HyperGraphError",
    "Module",
    "RunConfig",
    "__version__",
    "from_arrays",
    "get_logger",
    "load_config",
    "register",
    "resolve",
    "train",
]

if TYPE_CHECKING:
    from hypergraph.api import from_arrays
    from hypergraph.base import Module
    from hypergraph.config import RunConfig, load_config
    from hypergraph.exceptions import HyperGraphError
    from hypergraph.graph import HyperGraph
    from hypergraph.logging import get_logger
    from hypergraph.registry import register, resolve
    from hypergraph.run import train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hypergraph' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {k for k in globals() if k.startswith("__")})
