"""The `synthetic` dataset: its knobs do what they say, val/test stay clean, seeds repeat."""

from __future__ import annotations

import numpy as np
import pytest

from hypergraph import registry
from hypergraph.datasets import SyntheticDataset
from hypergraph.exceptions import InvalidParameterError


def _load(seed: int = 0, **params: object):  # type: ignore[no-untyped-def]
    return SyntheticDataset(n_samples=1500, **params).load(  # type: ignore[arg-type]
        np.random.default_rng(seed))


def test_registered_with_honest_tags() -> None:
    cls = registry.resolve("dataset", "synthetic")
    assert cls is SyntheticDataset
    assert {"task:classification", "features:vector"} <= cls.tags


def test_label_noise_rate_is_measured_on_train_only() -> None:
    clean = _load(label_noise=0.0)
    noisy = _load(label_noise=0.3)
    np.testing.assert_array_equal(clean.features(), noisy.features())
    train = noisy.split == 0
    changed = noisy.y != clean.y
    assert not changed[~train].any()  # validation and test labels untouched
    assert changed.sum() / train.sum() == pytest.approx(0.3, abs=0.002)
    np.testing.assert_array_equal(changed, noisy.attrs["noise_flipped"].astype(bool))


def test_redundancy_makes_near_duplicates_in_train() -> None:
    b = _load(redundancy=0.5, jitter=0.01)
    dup = b.attrs["duplicate_of"]
    train = b.split == 0
    copies = np.flatnonzero(dup >= 0)
    assert copies.size == round(0.5 * train.sum())
    assert train[copies].all() and train[dup[copies]].all()
    X = b.features()
    gap = np.abs(X[copies] - X[dup[copies]]).max(axis=1)
    assert gap.max() < 0.1  # copies sit within the jitter of their source
    np.testing.assert_array_equal(b.y[copies], b.y[dup[copies]])
    # few sources: copies concentrate on ~10% of the unique rows
    assert np.unique(dup[copies]).size <= 0.1 * (train.sum() - copies.size) + 1


def test_imbalance_orders_class_sizes() -> None:
    b = _load(imbalance=0.5)
    counts = np.bincount(b.y, minlength=4)
    assert (np.diff(counts) < 0).all()


def test_same_seed_same_bundle_and_checks_pass() -> None:
    a, b = _load(3, label_noise=0.2, redundancy=0.3), _load(3, label_noise=0.2, redundancy=0.3)
    np.testing.assert_array_equal(a.features(), b.features())
    np.testing.assert_array_equal(a.y, b.y)
    a.check()
    assert not np.array_equal(_load(4).y, _load(3).y)


def test_bad_parameters_name_the_module() -> None:
    with pytest.raises(InvalidParameterError, match="label_noise"):
        SyntheticDataset(label_noise=1.5)
    with pytest.raises(InvalidParameterError, match="n_informative"):
        SyntheticDataset(n_classes=20, n_informative=2).load(np.random.default_rng(0))
