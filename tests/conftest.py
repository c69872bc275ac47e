"""Shared test fixtures: everything seeded, everything tiny."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from hypergraph import registry

#: The example third-party package (``examples/plugin``) and the module registering its modules.
PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin"
PLUGIN_MODULE = "hypergraph_example_plugin.modules"

# Tests run two workers on two cores: more threads per worker only adds contention (a 3-epoch
# digits run took 10 s with 2 threads per worker against 0.3 s with 1 on a loaded machine).
torch.set_num_threads(1)
# The CLI (run in-process by many tests, and in subprocesses that inherit this) applies the
# thread count of HYPERGRAPH_THREADS to every run: keep it at one thread too.
os.environ["HYPERGRAPH_THREADS"] = "1"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def plugin() -> Iterator[None]:
    """The example plugin's modules registered for one test (``traversal:stride``,
    ``model:linear_probe``), without installing the package."""
    sys.path.insert(0, str(PLUGIN / "src"))
    try:
        registry.load_plugins([PLUGIN_MODULE])
        yield
    finally:
        registry.unregister("traversal", "stride")
        registry.unregister("model", "linear_probe")
        sys.modules.pop(PLUGIN_MODULE, None)
        sys.path.remove(str(PLUGIN / "src"))
