"""Per-component random streams: one seed fixes a whole run.

Each component draws from its own stream, derived from the run seed and the component's name
(``SeedSequence([seed, crc32(name)])``), so adding draws in one component never shifts another's.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["RngStreams"]


class RngStreams:
    """Named, independent NumPy generators and torch seeds derived from one run seed."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def _sequence(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed & 0xFFFFFFFF, zlib.crc32(name.encode())])

    def generator(self, name: str) -> np.random.Generator:
        """A fresh generator for component ``name`` (same seed and name -> same stream)."""
        return np.random.Generator(np.random.PCG64(self._sequence(name)))

    def torch_seed(self, name: str) -> int:
        """A 63-bit integer seed for torch, for component ``name``."""
        return int(self._sequence(name).generate_state(2, np.uint64)[0] >> np.uint64(1))
