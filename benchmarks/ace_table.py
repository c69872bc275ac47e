"""Measure HyperGraph's own module space exhaustively: the real table of the ACE benchmark.

Every tag-valid combination of dataloader x model x traversal x manager (on a fixed dataset,
default ``breast_cancer``) is trained twice over:

- ``score``: one short run (``--short-epochs``, seed 0): minus the validation loss, the cheap and
  noisy signal a search would see;
- ``truth``: the mean over ``--seeds`` long runs (``--long-epochs``, seeds 1..k) of minus the
  test loss, what the search should have found.

Accuracies and run times are written too. A combination whose training fails (e.g. a NaN loss)
is written with empty scores and skipped by the benchmark. In-process runs (``out_dir=None``),
one torch thread. The committed table was made with::

    nice -n 10 .venv/bin/python benchmarks/ace_table.py --out benchmarks/data/hypergraph_table.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import _common  # noqa: F401  (puts src/ on the path)
import torch

from hypergraph.ace import Space
from hypergraph.config import RunConfig
from hypergraph.exceptions import HyperGraphError
from hypergraph.run import train

SLOTS = ("dataloader", "model", "traversal", "manager")


def run_one(combo: dict[str, str], dataset: str, epochs: int, seed: int) -> dict[str, float]:
    cfg = RunConfig.model_validate({
        "seed": seed, "device": "cpu", "dataset": dataset, **combo,
        "trainer": {"name": "standard", "params": {"epochs": epochs}}})
    t0 = time.perf_counter()
    result = train(cfg, None)
    return {"val_loss": result["val"]["loss"], "test_loss": result["test"]["loss"],
            "val_acc": result["val"].get("accuracy", math.nan),
            "test_acc": result["test"].get("accuracy", math.nan),
            "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="breast_cancer")
    parser.add_argument("--models", default="mlp,logreg")
    parser.add_argument("--short-epochs", type=int, default=2)
    parser.add_argument("--long-epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="long runs per combination")
    parser.add_argument("--limit", type=int, default=0, help="first N combinations (testing)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/data/hypergraph_table.csv"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = Space.from_registry(SLOTS, allow={"model": args.models.split(",")},
                                fixed={"dataset": args.dataset, "trainer": "standard"})
    codes = space.valid_codes()
    if args.limit:
        codes = codes[:args.limit]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fields = [*SLOTS, "score", "truth", "short_val_acc", "long_test_acc", "short_seconds",
              "long_seconds"]
    t_start = time.perf_counter()
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for i, code in enumerate(codes):
            combo = space.decode(code)
            row: dict[str, object] = dict(combo)
            try:
                short = run_one(combo, args.dataset, args.short_epochs, 0)
                longs = [run_one(combo, args.dataset, args.long_epochs, s)
                         for s in range(1, args.seeds + 1)]
                row.update(
                    score=-short["val_loss"],
                    truth=-sum(r["test_loss"] for r in longs) / len(longs),
                    short_val_acc=short["val_acc"],
                    long_test_acc=sum(r["test_acc"] for r in longs) / len(longs),
                    short_seconds=round(short["seconds"], 3),
                    long_seconds=round(sum(r["seconds"] for r in longs), 3))
            except HyperGraphError as err:
                print(f"{combo}: {err}", flush=True)
            writer.writerow(row)
            fh.flush()
            print(f"[{i + 1}/{len(codes)} {time.perf_counter() - t_start:.0f}s] {combo} "
                  f"score={row.get('score', '')} truth={row.get('truth', '')}", flush=True)


if __name__ == "__main__":
    main()
