"""Target 4: peak memory of a training run grows linearly with nodes; 10^6 nodes under 2 GiB.

Each size runs in a fresh subprocess (so peaks do not mix): ``n`` rows of 32 float32 features,
10 classes, a graph with 10 random out-edges per node symmetrised like a k=10 kNN graph (built
by ``HyperGraph.from_edges``, the code path of every builder), and one epoch of HyperGraph's
trainer (default MLP, ``comprehensive`` traversal, batch 4096, 2 % validation, 2 % test).
Peak resident memory is the process's high-water mark (``VmHWM`` of ``/proc/self/status``,
else ``ru_maxrss``) at the end of the run; a run with ``n = 0`` (imports only) gives the fixed
cost. Linearity: the peak at each middle
size is compared with the straight line through the smallest and largest sizes.

Run alone: ``python benchmarks/bench_memory.py [--quick]``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import _common  # noqa: F401  (puts src/ on the path)
from _common import ROOT, Row, cli

CHILD = r"""
import json, resource, sys
sys.path.insert(0, {src!r})
import numpy as np, torch
torch.set_num_threads(1)
from hypergraph.registry import load_builtins

from hypergraph.datasets import in_memory
from hypergraph.graph import HyperGraph
from hypergraph.managers import StaticManager
from hypergraph.models import MLPModel
from hypergraph.rng import RngStreams
from hypergraph.trainers import StandardTrainer, TrainContext
from hypergraph.traversals import ComprehensiveTraversal

load_builtins()  # register every module before names are resolved

def rss():
    # VmHWM: peak RSS of this process image (ru_maxrss would keep the parent's peak across
    # fork + exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

n = {n}
out = {{"base": rss()}}
if n:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 32), dtype=np.float32)
    y = (X[:, :10]).argmax(1).astype(np.int64)
    split = np.zeros(n, np.int8)
    split[rng.random(n) < 0.04] = 1
    split[rng.random(n) < 0.02] = 2
    bundle = in_memory("mem", X, y, split, "classification", 10)
    del X
    out["data"] = rss()
    src = np.repeat(np.arange(n, dtype=np.int64), 10)
    dst = rng.integers(0, n, src.size)
    g = HyperGraph.from_edges(n, src, dst, rng.random(src.size, dtype=np.float32) + 0.1,
                              split=split, label=y)
    del src, dst
    g.store = bundle.store
    out["graph"] = rss()
    out["graph_nbytes"] = g.nbytes
    out["edges"] = g.num_edges
    model = MLPModel()
    model.setup((32,), 10, "classification", "cpu", seed=0)
    ctx = TrainContext(bundle, g, model, ComprehensiveTraversal(), StaticManager(),
                       RngStreams(0), torch.device("cpu"))
    StandardTrainer(epochs=1, batch_size=4096, patience=0).fit(ctx)
out["peak"] = rss()
print(json.dumps(out))
"""


def measure(n: int) -> dict[str, float]:
    """Peak RSS (bytes) of one training run of ``n`` nodes, in a fresh interpreter."""
    code = CHILD.format(src=str(ROOT / "src"), n=n)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory run n={n} failed: {proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False, repeats: int | None = None) -> list[Row]:
    """Peak RSS per size, bytes per node, linearity and the 10^6 figure."""
    sizes = (2_000, 8_000) if quick else (100_000, 300_000, 1_000_000)
    reps = repeats or 1
    base = [measure(0)["peak"] for _ in range(1 if quick else reps)]
    peaks: dict[int, list[float]] = {n: [] for n in sizes}
    detail: dict[int, dict[str, float]] = {}
    for _ in range(reps):
        for n in sizes:
            res = measure(n)
            peaks[n].append(res["peak"])
            detail[n] = res
    mib = 2**20
    rows = [Row("4 fixed cost", "peak RSS MiB (imports only)", [b / mib for b in base])]
    for n in sizes:
        d = detail[n]
        rows.append(Row(f"4 peak RSS n={n:.0e}", "MiB", [p / mib for p in peaks[n]],
                        "< 2048" if n == 1_000_000 else "", False if n == 1_000_000 else None,
                        2048.0 if n == 1_000_000 else None,
                        note=f"after data {d['data'] / mib:.0f}, after graph "
                             f"{d['graph'] / mib:.0f} MiB; {d['edges']:,.0f} edges "
                             f"({d['graph_nbytes'] / mib:.0f} MiB)"))
    lo, hi = sizes[0], sizes[-1]
    slope = [(a - b) / (hi - lo) for a, b in zip(peaks[hi], peaks[lo], strict=True)]
    rows.append(Row("4 growth", "bytes per node", slope,
                    note=f"(peak at {hi:.0e} - peak at {lo:.0e}) / nodes"))
    for mid in sizes[1:-1]:
        dev = []
        for p_lo, p_mid, p_hi in zip(peaks[lo], peaks[mid], peaks[hi], strict=True):
            line = p_lo + (p_hi - p_lo) * (mid - lo) / (hi - lo)
            dev.append(p_mid / line)
        rows.append(Row(f"4 linearity n={mid:.0e}", "peak / straight-line prediction", dev,
                        "0.9 .. 1.1", None, None, note="1.0 = exactly linear"))
    return rows


if __name__ == "__main__":
    cli(run, __doc__, quick="small sizes (smoke run)")
