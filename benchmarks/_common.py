"""Shared helpers of the performance benchmarks: machine description, statistics, result rows.

Every benchmark measures HyperGraph and its baseline side by side in the same process, with the
arms interleaved (A B A B ...) so that load from other processes hits both alike, and reports
ratios with min / median / max over the repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))


@dataclass
class Row:
    """One measured figure: a target, its value over repeats, and the goal it is held to.

    Attributes:
        target: Issue target number and short name (``"1 comprehensive / hand loop"``).
        metric: What the values are (``"samples/s ratio"``).
        values: One value per repeat.
        goal: Human-readable goal (``">= 0.95"``); empty for information rows.
        higher_is_better: Direction of the goal; ``None`` for information rows.
        threshold: The goal's number (compared with the median).
        note: Free text (sizes, settings, why a row is missing).
    """

    target: str
    metric: str
    values: list[float]
    goal: str = ""
    higher_is_better: bool | None = None
    threshold: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def stats(self) -> tuple[float, float, float]:
        """``(min, median, max)`` of the values (NaN when there are none)."""
        if not self.values:
            nan = float("nan")
            return nan, nan, nan
        return min(self.values), statistics.median(self.values), max(self.values)

    @property
    def verdict(self) -> str:
        """``met``, ``MISSED`` or ``-`` (no goal), judged on the median."""
        if self.threshold is None or self.higher_is_better is None or not self.values:
            return "-"
        med = self.stats[1]
        ok = med >= self.threshold if self.higher_is_better else med <= self.threshold
        return "met" if ok else "MISSED"


def fmt(x: float) -> str:
    """Compact number formatting for the table."""
    if x != x:  # NaN
        return "n/a"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (min / median / max, goal, verdict, note)."""
    head = "| target | metric | min | median | max | goal | verdict | note |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lo, med, hi = r.stats
        lines.append(f"| {r.target} | {r.metric} | {fmt(lo)} | {fmt(med)} | {fmt(hi)} | "
                     f"{r.goal or '-'} | {r.verdict} | {r.note} |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """CPU model, cores, library versions and thread settings of this machine."""
    import numpy as np
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    info = {
        "cpu": cpu,
        "cores (os.cpu_count)": str(os.cpu_count()),
        "cores usable (sched_getaffinity)": str(len(os.sched_getaffinity(0)))
        if hasattr(os, "sched_getaffinity") else "n/a",
        "load average (1, 5, 15 min) at start": load,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch threads (intra-op / inter-op)":
            f"{torch.get_num_threads()} / {torch.get_num_interop_threads()}",
    }
    try:
        import faiss

        info["faiss"] = f"{faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads)"
    except ImportError:
        info["faiss"] = "not installed"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE"):
        info[var] = os.environ.get(var, "(unset)")
    return info


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ``ru_maxrss`` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cli(run: Callable[[bool, int | None], list[Row]], doc: str | None,
        quick: str = "tiny sizes (smoke run)") -> None:
    """Command line of a benchmark module: ``[--quick] [--repeats N]``, then print its table."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    print(table(run(args.quick, args.repeats)))
