"""IValue of the working tree against IValue of another revision, in one process.

Loads IValue as it was at ``--against`` (``git show`` of ``traversals/_ivalue.py`` or of the
``traversals/ivalue/`` package; needs a git checkout) next to the current class and measures,
arms interleaved:

* ``trainer``: samples/s of HyperGraph's trainer (MLP 256x2, 40,000 rows, batch 64, one epoch,
  1 torch thread) with ``comprehensive``, IValue at the revision, IValue now (and any
  ``--variant``), each divided by the hand-written loop of the same repeat; all arms of a repeat
  run in turns of 16 steps (``bench_train.Turns``), so machine noise hits every arm alike.
* ``flat``: thread CPU time per batch of ``next_batch`` + ``feedback`` (random losses) at
  10^4 and 10^6 nodes (random graph of mean degree 10, 64 walkers, as ``bench_traversal``),
  for both classes: whether the per-step cost still does not grow with the graph.

Run: ``python benchmarks/ivalue_ab.py [--against e469ded] [--repeats 5]
[--variant refresh=16 ...] [--only trainer|flat]``.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from functools import partial
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
import torch

from hypergraph import registry
from hypergraph.registry import load_builtins
from hypergraph.traversals import Traversal

load_builtins()  # register every module before names are resolved

ROOT = Path(__file__).resolve().parents[1]
PATH = "src/hypergraph/traversals/_ivalue.py"  # IValue as one module (until the package)
PACKAGE = "src/hypergraph/traversals/ivalue"  # IValue as a subpackage


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def class_at(rev: str) -> type[Traversal]:
    """``IValueTraversal`` as defined at git revision ``rev`` (not registered): the single
    module of older revisions, or the subpackage, copied to a temporary package whose imports
    of its own modules point at the copy."""
    unregister = '@register("traversal", "ivalue")'
    files = [f for f in _git("ls-tree", "--name-only", f"{rev}:{PACKAGE}").split()
             if f.endswith(".py")] if _git("ls-tree", rev, PACKAGE).strip() else []
    if not files:
        src = _git("show", f"{rev}:{PATH}").replace(unregister, "")
        mod = types.ModuleType(f"ivalue_at_{rev}")
        exec(compile(src, f"{rev}:{PATH}", "exec"), mod.__dict__)
        cls: type[Traversal] = mod.IValueTraversal
        return cls
    name = "ivalue_at_" + re.sub(r"\W", "_", rev)
    folder = Path(tempfile.mkdtemp()) / name
    folder.mkdir()
    for f in files:
        src = _git("show", f"{rev}:{PACKAGE}/{f}").replace(unregister, "")
        (folder / f).write_text(src.replace("hypergraph.traversals.ivalue.", f"{name}."))
    sys.path.insert(0, str(folder.parent))
    try:
        package = importlib.import_module(name)
    finally:
        sys.path.remove(str(folder.parent))
    cls = package.IValueTraversal
    return cls


def _parse(variant: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, variant.split(",")):
        key, value = item.split("=")
        out[key] = float(value) if "." in value else int(value) if value.isdigit() else value
    return out


def trainer(old: type[Traversal], rev: str, variants: list[str], repeats: int) -> None:
    import bench_train as bt

    from hypergraph.dataloaders import KNNDataloader

    torch.set_num_threads(1)
    bundle = bt.make_data(40_000, 32, 10)
    graph = KNNDataloader(k=10).build(bundle, np.random.default_rng(0))
    new = registry.resolve("traversal", "ivalue")
    arms: dict[str, Traversal] = {
        "comprehensive": registry.resolve("traversal", "comprehensive")(),
        f"ivalue at {rev}": old(), "ivalue now": new()}
    for v in variants:
        arms[f"ivalue now, {v}"] = new(**_parse(v))
    speed: dict[str, list[float]] = {k: [] for k in ("hand", *arms)}
    bt.hand_loop(bundle, 1)  # warm-up
    for _ in range(repeats):
        turns = bt.Turns()
        common = (bundle, 1, "mlp", None, turns)
        runs: dict[str, Any] = {"hand": partial(bt.hand_loop, *common)}
        for name, trav in arms.items():
            runs[name] = partial(bt._trainer_arm, graph, trav, *common)
        for name, sps in turns.run(runs).items():
            speed[name].append(sps)
    hand_us = statistics.median(bt.BATCH * 1e6 / s for s in speed["hand"])
    print(f"# trainer, MLP 256x2, 40,000 rows, batch 64, {repeats} repeats in turns; "
          f"hand loop {hand_us:.0f} us/batch (median)\n")
    print("| arm | / hand: min | median | max | us/batch over hand (median) |")
    print("|---|---|---|---|---|")
    for name in arms:
        ratio = [a / b for a, b in zip(speed[name], speed["hand"], strict=True)]
        over = [bt.BATCH * 1e6 * (1 / a - 1 / b)
                for a, b in zip(speed[name], speed["hand"], strict=True)]
        print(f"| {name} | {min(ratio):.3f} | {statistics.median(ratio):.3f} | "
              f"{max(ratio):.3f} | {statistics.median(over):+.0f} |")
    print()


def flat(old: type[Traversal], rev: str, repeats: int, steps: int = 400) -> None:
    import bench_traversal as btr

    new = registry.resolve("traversal", "ivalue")
    sizes = (10_000, 1_000_000)
    travs: dict[tuple[str, int], Traversal] = {}
    for n in sizes:
        g = btr.random_graph(n)
        for name, cls in ((f"at {rev}", old), ("now", new)):
            t = cls(walkers=btr.WALKERS)  # type: ignore[call-arg]
            t.setup(g, btr.WALKERS, np.random.default_rng(1))
            travs[(name, n)] = t
    rng = np.random.default_rng(2)
    losses = [rng.random(btr.WALKERS) for _ in range(16)]
    spent: dict[tuple[str, int], list[float]] = {k: [] for k in travs}
    for _ in range(repeats):
        for key, t in travs.items():
            t0 = time.thread_time()
            for i in range(steps):
                sel = t.next_batch()
                t.feedback(sel.ids, losses[i % 16])
            spent[key].append((time.thread_time() - t0) / steps * 1e6)
    print(f"# flat: us of CPU per batch (next_batch + feedback), {repeats} repeats\n")
    print("| ivalue | n=1e4 (median) | n=1e6 (median) | 1e6 / 1e4: min | median | max |")
    print("|---|---|---|---|---|---|")
    for name in (f"at {rev}", "now"):
        a, b = spent[(name, sizes[0])], spent[(name, sizes[1])]
        r = [y / x for x, y in zip(a, b, strict=True)]
        print(f"| {name} | {statistics.median(a):.0f} | {statistics.median(b):.0f} | "
              f"{min(r):.2f} | {statistics.median(r):.2f} | {max(r):.2f} |")
    print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="e469ded", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", action="append", default=[],
                        help="extra arm of the current class, e.g. refresh=16 (trainer only)")
    parser.add_argument("--only", choices=("trainer", "flat"))
    args = parser.parse_args()
    old_cls = class_at(args.against)
    if args.only in (None, "trainer"):
        trainer(old_cls, args.against, args.variant, args.repeats)
    if args.only in (None, "flat"):
        flat(old_cls, args.against, args.repeats)
