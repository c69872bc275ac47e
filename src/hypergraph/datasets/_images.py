"""A folder of image files, one subfolder per class, read lazily through a :class:`FileStore`.

Start-up only lists the files: pixels are read when a batch asks for them, resized, and kept in
the store's bounded LRU cache. Graph builders that need features in memory call
:meth:`ImageFolderBundle.embedding_features`, a small grayscale thumbnail per image computed by
streaming over the files once (never holding more than one image at full size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hypergraph.data import FileStore
from hypergraph.datasets._base import Dataset, DatasetBundle, stratified_split
from hypergraph.datasets._prep import FRACTIONS
from hypergraph.exceptions import DataError
from hypergraph.logging import get_logger
from hypergraph.registry import register
from hypergraph.spaces import Categorical, Fixed, Int

__all__ = ["IMAGE_SUFFIXES", "ImageFolderBundle", "ImageFolderDataset", "ImageLoader"]

logger = get_logger(__name__)

#: File endings read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageLoader:
    """Reads one image file into a ``float32`` array ``(C, size, size)`` in ``[0, 1]``.

    Args:
        size: Side of the square the image is resized to.
        grayscale: One channel (``L``) instead of three (``RGB``).
    """

    def __init__(self, size: int, grayscale: bool) -> None:
        self.size = size
        self.grayscale = grayscale

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of a loaded item."""
        return (1 if self.grayscale else 3, self.size, self.size)

    def __call__(self, path: str) -> np.ndarray:
        from PIL import Image

        mode = "L" if self.grayscale else "RGB"
        with Image.open(path) as img:
            img.draft(mode, (self.size, self.size))
            small = img.convert(mode).resize((self.size, self.size), Image.Resampling.BILINEAR)
            arr = np.asarray(small, dtype=np.float32) / 255.0
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@dataclass
class ImageFolderBundle(DatasetBundle):
    """A bundle over image files; adds a cheap in-memory embedding for graph builders.

    Attributes:
        thumbnail: Side of the grayscale thumbnail of :meth:`embedding_features`.
        paths: The image file of each row (the thumbnails are read from them whatever store
            the run chose).
    """

    thumbnail: int = 8
    paths: Sequence[str] = ()

    def embedding_features(self) -> np.ndarray:
        """``float32[rows, thumbnail**2]`` grayscale thumbnails, computed once by streaming.

        Files are read one at a time and only the thumbnail is kept, so memory grows with the
        number of images times ``thumbnail**2`` floats, never with the image size.

        Raises:
            DataError: an image that does not decode (naming the file).
        """
        cached: np.ndarray | None = self.__dict__.get("_embedding")
        if cached is not None:
            return cached
        loader = ImageLoader(self.thumbnail, grayscale=True)
        out = np.empty((len(self.paths), self.thumbnail**2), np.float32)
        for row, path in enumerate(self.paths):
            try:
                out[row] = loader(path).reshape(-1)
            except (OSError, ValueError) as err:
                raise DataError(f"Image file '{path}' could not be decoded ({err}); remove or "
                                "replace it.") from err
        self.__dict__["_embedding"] = out
        return out


@register("dataset", "image_folder")
class ImageFolderDataset(Dataset):
    """Images in ``path/<class name>/*.png|jpg``, loaded lazily, resized to ``size`` x ``size``.

    Class ids follow the sorted subfolder names. Features have shape ``(C, size, size)`` in
    ``[0, 1]`` (``C`` = 1 with ``grayscale``, else 3). The store keeps at most ``cache_size``
    decoded images in memory. Graph builders see :meth:`ImageFolderBundle.embedding_features`
    (tag ``features:embedding``), not the pixels. Its items are files (tag ``source:files``):
    run it with ``store: memory`` to read every image once into memory, or ``store: file``
    to set the cache there (``cache_size`` here is the cache of the default ``store: auto``).
    """

    tags: ClassVar[frozenset[str]] = frozenset(
        {"task:classification", "features:image", "features:embedding", "source:files",
         "user_data"})
    space = {
        "path": Fixed(types=(str,), help="folder holding one subfolder per class"),
        "size": Int(low=4, high=1024, help="side images are resized to"),
        "grayscale": Categorical(choices=(False, True),
                                 help="one channel instead of RGB"),
        "cache_size": Int(low=0, high=10_000_000,
                          help="decoded images kept in memory (LRU)"),
        "thumbnail": Int(low=2, high=64,
                         help="side of the grayscale thumbnail graph builders see"),
        **FRACTIONS,
    }

    def __init__(self, path: str | None = None, size: int = 32, grayscale: bool = False,
                 cache_size: int = 4096, thumbnail: int = 8, val_fraction: float = 0.15,
                 test_fraction: float = 0.2) -> None:
        self.path = path
        self.size = size
        self.grayscale = grayscale
        self.cache_size = cache_size
        self.thumbnail = thumbnail
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    @classmethod
    def _contract_params(cls, tmp_dir: Path) -> dict[str, Any]:
        from PIL import Image

        rng = np.random.default_rng(0)
        root = Path(tmp_dir) / "contract_images"
        for cid, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
            (root / f"class{cid}").mkdir(parents=True, exist_ok=True)
            for i in range(12):
                noise = rng.integers(-30, 30, (8, 8, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / f"class{cid}" / f"{i:02d}.png")
        return {"path": str(root), "size": 8, "cache_size": 16}

    def list_files(self) -> tuple[list[str], np.ndarray, list[str]]:
        """``(paths, labels, class names)`` from the folder layout (no file is opened)."""
        if self.path is None:
            raise DataError("dataset 'image_folder' needs a folder: set dataset.path to a "
                            "folder holding one subfolder of images per class.")
        root = Path(self.path).expanduser()
        if root.is_file():
            raise DataError(f"Image folder '{root}' is a file, expected a folder holding one "
                            "subfolder of images per class.")
        if not root.is_dir():
            raise DataError(f"Image folder '{root}' does not exist.")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not classes:
            raise DataError(f"Image folder '{root}' has no class subfolders; put the images "
                            "of each class in their own subfolder.")
        paths: list[str] = []
        labels: list[int] = []
        for cid, name in enumerate(classes):
            files = sorted(str(p) for p in (root / name).iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise DataError(f"Class folder '{root / name}' holds no "
                                f"{'/'.join(IMAGE_SUFFIXES)} files; add images or remove it.")
            paths += files
            labels += [cid] * len(files)
        if len(classes) < 2:
            raise DataError(f"Image folder '{root}' has one class subfolder ('{classes[0]}'); "
                            "classification needs at least two classes (a model would learn "
                            "nothing and score accuracy 1.0). Add a subfolder of images per "
                            "class.")
        return paths, np.asarray(labels, np.int64), classes

    def load(self, rng: np.random.Generator) -> DatasetBundle:
        paths, y, classes = self.list_files()
        loader = ImageLoader(self.size, self.grayscale)
        store = FileStore(paths, loader, loader.shape, cache_size=self.cache_size)
        split = stratified_split(y, self.val_fraction, self.test_fraction, rng)
        logger.info("Image folder '%s': %d images in %d classes", self.path, len(paths),
                    len(classes))
        return ImageFolderBundle(store, y, split, "classification", len(classes),
                                 "image_folder", thumbnail=self.thumbnail, paths=paths)
