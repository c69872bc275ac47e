"""Generated classification data with knobs for the failure modes data selection targets."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.datasets._prep import FRACTIONS
from hypergraph.registry import register
from hypergraph.spaces import Float, Int

__all__ = ["SyntheticDataset"]


@register("dataset", "synthetic")
class SyntheticDataset(Dataset):
    """Gaussian-cluster classification data (scikit-learn ``make_classification``) with knobs.

    ``n_samples`` points are generated and split into train / validation / test first; then
    only the **training** rows are corrupted, so validation and test stay clean and accuracy on
    them measures what the model learnt:

    * ``redundancy``: that share of the training rows is replaced by near-duplicates (copies with
      Gaussian jitter of ``jitter`` times the feature scale) of a few source rows, a random
      ``duplicate_sources`` share of the remaining unique training rows. The training set keeps
      its size; it just holds fewer distinct points, unevenly repeated.
    * ``label_noise``: that share of the training rows gets a label flipped to another class,
      drawn uniformly (flips are applied after duplication, so copies may disagree).
    * ``imbalance``: class ``c`` is drawn with weight ``(1 - imbalance) ** c``.
    * ``hard``: that share of **all** rows (train, validation and test alike, so learning them
      pays on the test set) is moved ``hard_shift`` of the way towards a random row of another
      class, keeping its label: genuinely hard points near the class boundaries, learnable but
      late (unlike flipped labels, which contradict their neighbours).

    ``bundle.attrs`` records the corruption for analysis: ``noise_flipped`` (1 for a training row
    whose label was flipped) and ``duplicate_of`` (the source row of a near-duplicate, -1 for
    original rows) and ``hard`` (1 for a row moved towards another class). They describe the
    generator, not the data: graph builders must not use them.
    """

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:vector", "size:small"})
    space = {
        "n_samples": Int(low=30, high=10_000_000, log=True,
                         help="rows generated (before any corruption)"),
        "n_features": Int(low=2, high=10_000, log=True, help="feature columns"),
        "n_informative": Int(low=1, high=10_000, log=True,
                             help="informative feature columns (the rest is noise)"),
        "n_classes": Int(low=2, high=100, help="classes"),
        "class_sep": Float(low=0.05, high=10.0, log=True,
                           help="distance between class clusters (smaller: harder)"),
        "imbalance": Float(low=0.0, high=0.95,
                           help="class c has weight (1 - imbalance) ** c"),
        "label_noise": Float(low=0.0, high=0.9,
                             help="share of training labels flipped to another class"),
        "redundancy": Float(low=0.0, high=0.98,
                            help="share of training rows that are near-duplicates"),
        "duplicate_sources": Float(low=0.001, high=1.0,
                                   help="share of unique training rows that get duplicated"),
        "jitter": Float(low=0.0, high=1.0,
                        help="duplicate noise, in units of the feature standard deviation"),
        "hard": Float(low=0.0, high=0.9,
                      help="share of rows (every split) moved towards another class"),
        "hard_shift": Float(low=0.0, high=0.99,
                            help="how far a hard row moves towards the other class's row"),
        **FRACTIONS,
    }

    def __init__(self, n_samples: int = 4000, n_features: int = 20, n_informative: int = 8,
                 n_classes: int = 4, class_sep: float = 1.0, imbalance: float = 0.0,
                 label_noise: float = 0.0, redundancy: float = 0.0,
                 duplicate_sources: float = 0.1, jitter: float = 0.02, hard: float = 0.0,
                 hard_shift: float = 0.4, val_fraction: float = 0.15,
                 test_fraction: float = 0.2) -> None:
        self.n_samples = n_samples
        self.n_features = n_features
        self.n_informative = n_informative
        self.n_classes = n_classes
        self.class_sep = class_sep
        self.imbalance = imbalance
        self.label_noise = label_noise
        self.redundancy = redundancy
        self.duplicate_sources = duplicate_sources
        self.jitter = jitter
        self.hard = hard
        self.hard_shift = hard_shift
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        from sklearn.datasets import make_classification

        from hypergraph.exceptions import InvalidParameterError

        informative = min(self.n_informative, self.n_features)
        if self.n_classes * 2 > 2**informative:
            raise InvalidParameterError(
                f"dataset 'synthetic': n_classes ({self.n_classes}) x 2 clusters must be at most "
                f"2 ** n_informative ({2 ** informative}); raise n_informative.")
        weights = (1.0 - self.imbalance) ** np.arange(self.n_classes)
        X, y = make_classification(
            n_samples=self.n_samples, n_features=self.n_features, n_informative=informative,
            n_redundant=0, n_repeated=0, n_classes=self.n_classes, n_clusters_per_class=2,
            weights=list(weights / weights.sum()), flip_y=0.0, class_sep=self.class_sep,
            shuffle=True, random_state=int(rng.integers(0, 2**31 - 1)))
        X = ((X - X.mean(0)) / np.maximum(X.std(0), 1e-12)).astype(np.float32)
        y = y.astype(np.int64)
        split = stratified_split(y, self.val_fraction, self.test_fraction, rng)
        hard = np.zeros(y.size, np.int8)
        n_hard = round(self.hard * y.size)
        if n_hard > 0 and self.n_classes > 1:
            rows = rng.choice(y.size, size=n_hard, replace=False)
            # a partner of another class for each hard row (rejection on the rare same-class)
            partner = rng.integers(0, y.size, size=n_hard)
            for _ in range(64):
                same = y[partner] == y[rows]
                if not same.any():
                    break
                partner[same] = rng.integers(0, y.size, size=int(same.sum()))
            keep = y[partner] != y[rows]
            rows, partner = rows[keep], partner[keep]
            X[rows] += self.hard_shift * (X[partner] - X[rows])
            hard[rows] = 1
        train = np.flatnonzero(split == 0)
        duplicate_of = np.full(y.size, -1, np.int64)
        n_dup = round(self.redundancy * train.size)
        n_dup = min(n_dup, train.size - 1)
        if n_dup > 0:
            shuffled = rng.permutation(train)
            replaced, unique = shuffled[:n_dup], shuffled[n_dup:]
            n_src = max(1, math.ceil(self.duplicate_sources * unique.size))
            sources = rng.choice(unique, size=n_src, replace=False)
            src = sources[rng.integers(0, n_src, size=n_dup)]
            X[replaced] = X[src] + self.jitter * rng.standard_normal(
                (n_dup, X.shape[1])).astype(np.float32)
            y[replaced] = y[src]
            duplicate_of[replaced] = src
        flipped = np.zeros(y.size, np.int8)
        n_flip = round(self.label_noise * train.size)
        if n_flip > 0:
            rows = rng.choice(train, size=n_flip, replace=False)
            shift = rng.integers(1, self.n_classes, size=n_flip)
            y[rows] = (y[rows] + shift) % self.n_classes
            flipped[rows] = 1
        bundle = in_memory("synthetic", X, y, split, "classification", self.n_classes)
        bundle.attrs = {"noise_flipped": flipped, "duplicate_of": duplicate_of}
        if self.hard > 0:
            bundle.attrs["hard"] = hard
        return bundle
