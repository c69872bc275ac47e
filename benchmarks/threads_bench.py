"""How torch's thread count affects a small run, alone and when the cores are shared.

Each arm is a short default-sized run (MLP on digits, 3 epochs, ``comprehensive`` traversal)
timed in a fresh process, with torch limited to N threads. The "shared" arms run the same with
one busy process per core beside it (what a sweep with several workers, a test suite with
xdist, or a busy machine does). Arms are interleaved over the repeats; the report gives the
median wall time of training (data and graph building excluded) and its ratio to one thread.

    python benchmarks/threads_bench.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from hypergraph.config import config_from_mapping
from hypergraph.run import build, prepare
cfg = config_from_mapping({"seed": 0, "device": "cpu", "traversal": "comprehensive",
                           "trainer": {"name": "standard", "params": {"epochs": 3}}})
mods = build(cfg)
ctx = prepare(cfg, mods)
t = time.perf_counter()
mods.trainer.fit(ctx)
print(json.dumps({"train_s": time.perf_counter() - t, "threads": torch.get_num_threads()}))
"""


def _busy(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def run_arm(threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("HYPERGRAPH_THREADS", None)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(threads)], capture_output=True,
                         text=True, env=env, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["train_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2,4,8")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeats):
        for shared in (False, True):
            for n in counts:
                procs = []
                if shared:
                    stop = time.time() + 600
                    procs = [mp.Process(target=_busy, args=(stop,), daemon=True)
                             for _ in range(cores or 1)]
                    for p in procs:
                        p.start()
                try:
                    t = run_arm(n)
                finally:
                    for p in procs:
                        p.terminate()
                times.setdefault(("shared" if shared else "alone", n), []).append(t)
    print(f"cores usable: {cores}; load average at end: {os.getloadavg()[0]:.1f}")
    print(f"{'arm':>8} {'threads':>7} {'median train s':>15} {'vs 1 thread':>12}")
    for mode in ("alone", "shared"):
        base = statistics.median(times[(mode, counts[0])])
        for n in counts:
            med = statistics.median(times[(mode, n)])
            print(f"{mode:>8} {n:>7} {med:>15.2f} {med / base:>12.2f}")


if __name__ == "__main__":
    main()
