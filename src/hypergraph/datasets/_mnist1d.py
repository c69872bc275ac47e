"""MNIST-1D: the 1-D analogue of MNIST, generated offline by the ``mnist1d`` package."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.datasets._prep import FRACTIONS
from hypergraph.registry import register
from hypergraph.spaces import Int

__all__ = ["MNIST1DDataset"]


@register("dataset", "mnist1d")
class MNIST1DDataset(Dataset):
    """MNIST-1D (Greydanus, 2020): 10 classes of 40-sample 1-D signals.

    The signals are generated from the package's digit templates with its default transforms
    (padding, shear, translation, correlated and i.i.d. noise) by ``mnist1d``'s own generator;
    nothing is downloaded. The generator seed is drawn from the run's dataset stream, so the
    same run seed gives the same data. ``num_samples`` is rounded down to a multiple of 10.
    """

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "features:sequence", "size:small"})
    space = {
        "num_samples": Int(low=100, high=1_000_000, log=True,
                           help="signals generated (equal per class)"),
        **FRACTIONS,
    }

    def __init__(self, num_samples: int = 4000, val_fraction: float = 0.15,
                 test_fraction: float = 0.2) -> None:
        self.num_samples = num_samples
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    @classmethod
    def _contract_params(cls, tmp_dir: Path) -> dict[str, Any]:
        return {"num_samples": 300}

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = self.num_samples
        args.train_split = 1.0  # our own stratified split is applied below
        args.seed = int(rng.integers(2**31 - 1))
        # The package seeds the global NumPy and ``random`` generators: restore them after.
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            data = make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        X = np.asarray(data["x"], np.float32)
        y = np.asarray(data["y"], np.int64)
        split = stratified_split(y, self.val_fraction, self.test_fraction, rng)
        return in_memory("mnist1d", X, y, split, "classification", 10)
