"""HyperGraph: train machine-learning models by traversing a graph of data points.

The public entry points: :func:`hypergraph.run.train` with a :class:`~hypergraph.config.RunConfig`,
the registry (:func:`~hypergraph.registry.resolve`, :func:`~hypergraph.registry.register`), the
graph (:class:`~hypergraph.graph.HyperGraph`) and the ten module base classes.
"""

from hypergraph.api import from_arrays
from hypergraph.base import Module
from hypergraph.config import RunConfig, load_config
from hypergraph.exceptions import HyperGraphError
from hypergraph.graph import HyperGraph
from hypergraph.logging import get_logger
from hypergraph.registry import register, resolve
from hypergraph.run import train

__version__ = "0.1.0"

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
