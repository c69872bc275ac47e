"""Shared test fixtures: everything seeded, everything tiny."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

# Tests run two workers on two cores: more threads per worker only adds contention (a 3-epoch
# digits run took 10 s with 2 threads per worker against 0.3 s with 1 on a loaded machine).
torch.set_num_threads(1)
# The CLI (run in-process by many tests, and in subprocesses that inherit this) applies the
# thread count of HYPERGRAPH_THREADS to every run: keep it at one thread too.
os.environ["HYPERGRAPH_THREADS"] = "1"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
