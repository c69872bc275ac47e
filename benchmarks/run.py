"""Run every performance benchmark and print all ratios in one table, with the machine described.

Usage::

    python benchmarks/run.py             # full sizes (several minutes; the 10^6 kNN build is one)
    python benchmarks/run.py --quick     # tiny sizes: proves the benchmarks run (CI smoke)
    python benchmarks/run.py --only train,traversal --repeats 7 --json results.json

Targets (issue "Performance and scale"):

1. ``train``: samples/s of HyperGraph's trainer vs a hand-written loop and vs ``DataLoader``;
   file-backed image store with background prefetching (share of time waiting for data).
2. ``traversal``: time per traversal step at 10^4, 10^5, 10^6 nodes.
3. ``knn``: approximate kNN graph of 10^6 points: build time, recall@10, bytes per edge,
   save/load time.
4. ``memory``: peak RSS of a training run at several sizes, growth per node, 10^6 nodes.

Every figure is measured against its baseline in the same run (arms interleaved) and reported
as min / median / max over repeats; the verdict is judged on the median.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from _common import Row, machine, table

SUITES = ("train", "traversal", "knn", "memory")


def run_suites(names: list[str], quick: bool, repeats: int | None) -> list[Row]:
    """Run the named suites in order and return all their rows."""
    rows: list[Row] = []
    for name in names:
        if name == "train":
            import bench_train

            rows += bench_train.run(quick, repeats)
        elif name == "traversal":
            import bench_traversal

            rows += bench_traversal.run(quick, repeats)
        elif name == "knn":
            import bench_knn

            rows += bench_knn.run(quick, repeats)
        elif name == "memory":
            import bench_memory

            rows += bench_memory.run(quick, repeats)
        else:
            raise SystemExit(f"Unknown suite '{name}'. Valid choices: {', '.join(SUITES)}.")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--only", default=",".join(SUITES),
                        help=f"comma-separated suites among {', '.join(SUITES)}")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per figure (default: 5 full, 2 quick)")
    parser.add_argument("--json", type=Path, default=None, help="also write rows as JSON")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    info = machine()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.perf_counter()
    rows = run_suites(names, args.quick, args.repeats)
    wall = time.perf_counter() - t0
    cmd = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# HyperGraph performance benchmarks ({'quick' if args.quick else 'full'})\n")
    print(f"Command: `{cmd.strip()}`; started {started}; took {wall:.0f} s.\n")
    print("Machine:\n")
    for key, value in info.items():
        print(f"- {key}: {value}")
    print()
    print(table(rows))
    missed = [r.target for r in rows if r.verdict == "MISSED"]
    print(f"\n{len(rows)} figures; goals missed (median): {', '.join(missed) or 'none'}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "machine": info, "command": cmd, "started": started, "wall_s": wall,
            "rows": [{"target": r.target, "metric": r.metric, "values": r.values,
                      "min_median_max": r.stats, "goal": r.goal, "verdict": r.verdict,
                      "note": r.note} for r in rows]}, indent=2))
    _ = _common
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
