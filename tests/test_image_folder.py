"""The image_folder dataset: lazy loading, bounded cache, end-to-end training with the CNN."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from hypergraph import registry
from hypergraph.config import RunConfig
from hypergraph.data import ArrayStore, FileStore
from hypergraph.dataloaders import KNNDataloader, graph_from_pairs, similarity_weights
from hypergraph.datasets import DatasetBundle, ImageFolderBundle, ImageFolderDataset
from hypergraph.exceptions import DataError, IncompatibleModulesError
from hypergraph.graph import HyperGraph
from hypergraph.run import train
from hypergraph.trainers import Callback, TrainContext, TrainState
from results import without_timings

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def make_folder(root: Path, per_class: int, side: int = 12, seed: int = 0) -> Path:
    """``per_class`` noisy PNGs of each colour class under ``root``."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, (side, side, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:04d}.png")
    return root


class ThumbnailKNN(KNNDataloader):
    """kNN over :meth:`DatasetBundle.embedding_features` (what file-backed datasets offer)."""

    requires: ClassVar[frozenset[str]] = frozenset({"features:embedding"})

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        X = bundle.embedding_features()
        ids, dist = self.neighbours(X)
        src = np.repeat(np.arange(X.shape[0]), ids.shape[1])
        return graph_from_pairs(bundle, src, ids.ravel(),
                                similarity_weights(dist.ravel(), self.metric))


@pytest.fixture(scope="module", autouse=True)
def thumbnail_knn() -> Iterator[None]:
    registry.register("dataloader", "test_thumbnail_knn")(ThumbnailKNN)
    yield
    registry.unregister("dataloader", "test_thumbnail_knn")


class Grab(Callback):
    """Keeps the run's store for inspection."""

    store: Any = None

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        self.store = ctx.bundle.store


def run(folder: Path, store: dict[str, Any] | None = None, **params: Any,
        ) -> tuple[dict[str, Any], Any]:
    config = RunConfig.model_validate({
        "seed": 0, "device": "cpu",
        "dataset": {"name": "image_folder", "params": {"path": str(folder), **params}},
        "store": store or "auto",
        "dataloader": {"name": "test_thumbnail_knn", "params": {"k": 5}},
        "model": {"name": "cnn", "params": {"channels": 4, "hidden": 16}},
        "trainer": {"name": "standard", "params": {"epochs": 1, "batch_size": 16}}})
    grab = Grab()
    result = train(config, callbacks=[grab])
    if store is None:
        assert isinstance(grab.store, FileStore)
    return result, grab.store


def test_listing_opens_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_folder(tmp_path / "imgs", 10)
    opened: list[str] = []
    real_open = Image.open

    def spy(path: Any, *args: Any, **kw: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(Image, "open", spy)
    bundle = ImageFolderDataset(path=str(folder), size=8).load(np.random.default_rng(0))
    bundle.check()
    assert opened == []
    assert isinstance(bundle, ImageFolderBundle) and bundle.num_classes == 3
    assert bundle.store.item_shape == (3, 8, 8) and len(bundle) == 30
    x = bundle.store.get(np.array([0, 29, 0]))
    assert x.shape == (3, 3, 8, 8) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert len(opened) == 2  # the repeated row came from the cache
    # classes follow the sorted folder names: blue (row 0), green, red (row 29); channels RGB
    assert bundle.y[0] == 0 and bundle.y[29] == 2
    assert x[0, 2].mean() > x[0, 0].mean() and x[1, 0].mean() > x[1, 2].mean()
    grey = ImageFolderDataset(path=str(folder), size=6, grayscale=True).load(
        np.random.default_rng(0))
    assert grey.store.item_shape == (1, 6, 6)
    thumbs = bundle.embedding_features()
    assert thumbs.shape == (30, 64) and np.isfinite(thumbs).all()


def test_trains_one_epoch_with_cnn(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "imgs", 40)
    result, store = run(folder, size=8)
    assert result["epochs"] == 1 and 0.0 <= result["test"]["accuracy"] <= 1.0
    assert store.misses > 0


def test_cache_stays_bounded_as_the_folder_grows(tmp_path: Path) -> None:
    held, peaks = [], []
    for per_class in (30, 100):
        folder = make_folder(tmp_path / f"imgs{per_class}", per_class, seed=per_class)
        tracemalloc.start()
        _, store = run(folder, size=8, cache_size=16)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert store.misses > store.cache_size  # items were evicted and re-read
        held.append((len(store._cache), sum(a.nbytes for a in store._cache.values())))
    # the decoded images held in memory do not grow with the folder
    assert held[0] == held[1] == (16, 16 * 3 * 8 * 8 * 4)
    assert all(p > 0 for p in peaks)


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs a folder"):
        ImageFolderDataset().load(np.random.default_rng(0))
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderDataset(path=str(tmp_path / "none")).load(np.random.default_rng(0))
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        ImageFolderDataset(path=str(tmp_path / "flat")).load(np.random.default_rng(0))
    folder = make_folder(tmp_path / "imgs", 10)
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match="holds no"):
        ImageFolderDataset(path=str(folder)).load(np.random.default_rng(0))


def test_undecodable_image_named(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "imgs", 10)
    broken = folder / "red" / "0003.png"
    broken.write_bytes(b"not a png at all")
    bundle = ImageFolderDataset(path=str(folder), size=8).load(np.random.default_rng(0))
    with pytest.raises(DataError, match=r"0003\.png"):
        bundle.embedding_features()
    row = list(bundle.store.paths).index(str(broken))  # type: ignore[attr-defined]
    with pytest.raises(DataError, match=r"0003\.png"):
        bundle.store.get(np.array([row]))
    with pytest.raises(DataError, match=r"0003\.png.*could not be decoded"):
        run(folder, size=8)


def test_store_choice_changes_memory_not_results(tmp_path: Path) -> None:
    """`store: memory` reads every image once into an array, `store: file` sets the cache;
    the run's numbers are those of the dataset's own store."""
    folder = make_folder(tmp_path / "imgs", 12)
    results = {}
    results["auto"], own = run(folder, size=8, cache_size=5)
    assert own.cache_size == 5
    results["memory"], held = run(folder, store={"name": "memory"}, size=8, cache_size=5)
    assert isinstance(held, ArrayStore) and held.as_array().shape == (36, 3, 8, 8)
    results["file"], lazy = run(folder, store={"name": "file", "params": {"cache_size": 2}},
                                size=8, cache_size=5)
    assert isinstance(lazy, FileStore) and lazy.cache_size == 2 and lazy.cached <= 2
    assert lazy.misses > 2  # evicted and read again
    same = [without_timings(result) for result in results.values()]
    assert same[0] == same[1] == same[2]


def test_file_store_needs_files() -> None:
    """A dataset held in memory cannot be read lazily from files: refused by tags."""
    config = RunConfig.model_validate({"dataset": "digits", "store": "file"})
    with pytest.raises(IncompatibleModulesError,
                       match=r"store 'file' requires tag 'source:files'.*dataset:image_folder"):
        train(config)
