"""Background prefetching of file-backed store rows: same results, reads overlap compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hypergraph.data import ArrayStore, FileStore, Prefetcher
from hypergraph.datasets import DatasetBundle
from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph
from hypergraph.managers import StaticManager
from hypergraph.models import MLPModel
from hypergraph.rng import RngStreams
from hypergraph.trainers import BatchGatherer, Callback, StandardTrainer, TrainContext
from hypergraph.traversals import ComprehensiveTraversal, RandomWalkTraversal, Traversal


def _files(tmp_path: Path, X: np.ndarray) -> list[str]:
    paths = []
    for i, row in enumerate(X):
        p = tmp_path / f"{i}.npy"
        np.save(p, row)
        paths.append(str(p))
    return paths


def _data(n: int = 120, d: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    split = np.zeros(n, np.int8)
    split[-30:-15], split[-15:] = 1, 2
    return X, y, split


def test_prefetcher_serves_submitted_rows_and_reads_others_now(tmp_path: Path) -> None:
    X, _, _ = _data(20)
    store = FileStore(_files(tmp_path, X), np.load, (6,), cache_size=0)
    pf = Prefetcher(store)
    pf.submit(np.array([3, 1, 4]))
    np.testing.assert_array_equal(pf.get(np.array([0, 2])), X[[0, 2]])  # other rows: now
    np.testing.assert_array_equal(pf.get(np.array([3, 1, 4])), X[[3, 1, 4]])  # submitted
    assert pf.stats()["hits"] == 1 and pf.stats()["misses"] == 1
    pf.close()


def test_prefetcher_raises_background_errors_in_caller(tmp_path: Path) -> None:
    store = FileStore([str(tmp_path / "missing.npy")], np.load, (6,), cache_size=0)
    pf = Prefetcher(store)
    pf.submit(np.array([0]))
    with pytest.raises(DataError, match=r"missing\.npy"):
        pf.get(np.array([0]))
    pf.close()


def test_gatherer_prefetches_only_non_memory_stores(tmp_path: Path) -> None:
    X, y, split = _data(40)
    g = HyperGraph.from_edges(40, np.arange(39), np.arange(1, 40), split=split, label=y)
    mem = BatchGatherer(g, DatasetBundle(ArrayStore(X), y, split, "classification", 2),
                        torch.device("cpu"), np.random.default_rng(0))
    assert mem.prefetcher is None
    mem.prefetch(np.array([1, 2]))  # no-op
    store = FileStore(_files(tmp_path, X), np.load, (6,), cache_size=0)
    disk = BatchGatherer(g, DatasetBundle(store, y, split, "classification", 2),
                         torch.device("cpu"), np.random.default_rng(0))
    ids = np.array([5, 7, 9])
    disk.prefetch(ids)
    x, yy = disk(np.array([1, 2]))  # an unrelated read leaves the prefetch pending
    x, yy = disk(ids)
    np.testing.assert_array_equal(x.numpy(), X[ids])
    np.testing.assert_array_equal(yy.numpy(), y[ids])
    assert disk.prefetcher is not None and disk.prefetcher.hits == 1
    disk.close()


class _Stats(Callback):
    def on_fit_end(self, ctx, state, result):  # type: ignore[no-untyped-def]
        assert ctx.trainer is not None
        pf = ctx.trainer.gather_.prefetcher
        self.stats = None if pf is None else pf.stats()


@pytest.mark.parametrize("traversal", [ComprehensiveTraversal(),
                                       RandomWalkTraversal(walkers=4)],
                         ids=["comprehensive", "random_walk"])
def test_file_store_training_prefetches_and_matches_memory(tmp_path: Path,
                                                           traversal: Traversal) -> None:
    X, y, split = _data()
    n = X.shape[0]
    rng = np.random.default_rng(1)
    g = HyperGraph.from_edges(n, rng.integers(0, n, 300), rng.integers(0, n, 300),
                              split=split, label=y)
    results, stats = [], []
    for store in (ArrayStore(X), FileStore(_files(tmp_path, X), np.load, (6,), cache_size=0)):
        model = MLPModel(width=16, depth=1)
        model.setup((6,), 2, "classification", "cpu", seed=0)
        bundle = DatasetBundle(store, y, split, "classification", 2)
        cb = _Stats()
        ctx = TrainContext(bundle, g, model, traversal.clone(), StaticManager(),  # type: ignore[arg-type]
                           RngStreams(0), torch.device("cpu"), callbacks=[cb])
        results.append(StandardTrainer(epochs=2, batch_size=16, patience=0).fit(ctx))
        stats.append(cb.stats)
    assert results[0]["val"] == results[1]["val"]
    assert results[0]["test"] == results[1]["test"]
    assert stats[0] is None
    steps = results[1]["steps"]
    # every step but the first of each epoch was read in the background
    assert stats[1]["hits"] == steps - 2


class _KilledError(Exception):
    pass


class _Losses(Callback):
    """Collects every epoch's training loss (the finest record of which batches were used)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_fit_end(self, ctx, state, result):  # type: ignore[no-untyped-def]
        self.losses = [rec["train_loss"] for rec in state.history]


class _KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, ctx, state, ids):  # type: ignore[no-untyped-def]
        if state.step == self.step:
            raise _KilledError


def test_file_store_resume_mid_epoch_is_exact(tmp_path: Path) -> None:
    """The batch drawn early for prefetching is saved in checkpoints: resume stays exact."""
    X, y, split = _data()
    n = X.shape[0]
    rng = np.random.default_rng(2)
    g = HyperGraph.from_edges(n, rng.integers(0, n, 300), rng.integers(0, n, 300),
                              split=split, label=y)
    paths = _files(tmp_path, X)

    def fit(out: Path, callbacks: list[Callback], resume: dict | None = None) -> dict:  # type: ignore[type-arg]
        model = MLPModel(width=16, depth=1)
        model.setup((6,), 2, "classification", "cpu", seed=0)
        bundle = DatasetBundle(FileStore(paths, np.load, (6,), cache_size=0), y, split,
                               "classification", 2)
        ctx = TrainContext(bundle, g, model, RandomWalkTraversal(walkers=4), StaticManager(),
                           RngStreams(0), torch.device("cpu"), out_dir=out,
                           callbacks=callbacks, resume_state=resume)
        return StandardTrainer(epochs=3, batch_size=16, patience=0,
                               checkpoint_every=2).fit(ctx)

    (tmp_path / "ref").mkdir()
    (tmp_path / "run").mkdir()
    ref_losses = _Losses()
    ref = fit(tmp_path / "ref", [ref_losses])
    with pytest.raises(_KilledError):
        fit(tmp_path / "run", [_KillAt(9)])  # steps per epoch: 6; checkpoint at step 8
    payload = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    assert payload["state"]["step"] == 8 and payload["lookahead"] is not None
    losses = _Losses()
    resumed = fit(tmp_path / "run", [losses], resume=payload)
    for key in ("val", "test", "samples_seen", "steps"):
        assert resumed[key] == ref[key], key
    assert losses.losses == ref_losses.losses and len(losses.losses) == 3
