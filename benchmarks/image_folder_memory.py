"""Memory of the lazy ``image_folder`` dataset as the folder grows, against eager loading.

For two folder sizes, one pass over every image in batches (what one epoch reads) is measured
with ``tracemalloc`` (peak Python/NumPy allocations) for:

* lazy: ``ImageFolderDataset`` + its ``FileStore`` with a bounded LRU cache;
* eager (baseline): every image decoded into one in-memory array first.

Prints the peaks, and the growth ratio large/small of each; lazy should stay near 1 while eager
grows with the folder. Usage::

    .venv/bin/python benchmarks/image_folder_memory.py [--small 300] [--large 1200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from hypergraph.datasets import ImageFolderDataset, ImageLoader


def make_folder(root: Path, n: int, side: int = 32) -> Path:
    rng = np.random.default_rng(n)
    for i in range(n):
        cls = root / f"c{i % 4}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(
            cls / f"{i:05d}.png")
    return root


def lazy_peak(root: Path, size: int, cache: int, batch: int = 64) -> int:
    tracemalloc.start()
    bundle = ImageFolderDataset(path=str(root), size=size, cache_size=cache).load(
        np.random.default_rng(0))
    order = np.random.default_rng(1).permutation(len(bundle))
    for lo in range(0, order.size, batch):
        bundle.store.get(order[lo:lo + batch])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def eager_peak(root: Path, size: int) -> int:
    tracemalloc.start()
    loader = ImageLoader(size, grayscale=False)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    arr = np.stack([loader(p) for p in paths])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del arr
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--cache", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        roots = {n: make_folder(Path(tmp) / f"f{n}", n) for n in (args.small, args.large)}
        rows: dict[str, dict[int, list[int]]] = {"lazy": {}, "eager": {}}
        for _ in range(args.repeats):
            for n, root in roots.items():
                rows["lazy"].setdefault(n, []).append(lazy_peak(root, args.size, args.cache))
                rows["eager"].setdefault(n, []).append(eager_peak(root, args.size))
    print(f"image_folder memory: size={args.size} cache={args.cache} repeats={args.repeats}")
    for mode, by_n in rows.items():
        for n, peaks in by_n.items():
            mib = [p / 2**20 for p in peaks]
            print(f"  {mode:5s} n={n:6d} peak MiB min/median/max = {min(mib):.2f} / "
                  f"{statistics.median(mib):.2f} / {max(mib):.2f}")
        growth = statistics.median(by_n[args.large]) / statistics.median(by_n[args.small])
        print(f"  {mode:5s} growth large/small = {growth:.2f}x "
              f"(folder grew {args.large / args.small:.1f}x)")


if __name__ == "__main__":
    main()
