"""Statistics of the bench: paired t-intervals and bootstrap intervals (scipy does the work)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_interval", "paired_interval", "parse_seeds"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval over ``n`` seeds."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0

    def text(self, spec: str = "+.4f") -> str:
        """``+0.0123 [+0.0050, +0.0196]`` (``n/a`` where undefined, ``inf`` where infinite)."""
        def f(x: float) -> str:
            if math.isinf(x):
                return "inf" if x > 0 else "-inf"
            return "n/a" if math.isnan(x) else format(x, spec)
        return f"{f(self.mean)} [{f(self.low)}, {f(self.high)}]"


def paired_interval(differences: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of seed-paired differences with its Student-t interval (``nan`` bounds for n < 2).

    Args:
        differences: One difference per seed (arm A minus arm B on the same seed).
        level: Confidence level of the interval.
    """
    from scipy import stats

    d = np.asarray(differences, np.float64)
    n = int(d.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(d.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0.0:
        return Interval(mean, mean, mean, n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    return Interval(mean, mean - half, mean + half, n)


def bootstrap_interval(values: Sequence[float], statistic: Callable[..., float] = np.median,
                       level: float = 0.95, resamples: int = 2000, seed: int = 0,
                       ) -> Interval:
    """A statistic of per-seed values with a percentile bootstrap interval over seeds.

    Values may be ``inf`` (e.g. a target never reached); the statistic and its bounds are then
    ``inf`` where the resampled data make them so. Deterministic for a given ``seed``.
    """
    x = np.asarray(values, np.float64)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    point = float(statistic(x))
    if n < 2:
        return Interval(point, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    boot = np.array([statistic(x[p]) for p in picks], np.float64)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method="lower")
    return Interval(point, float(low), float(high), n)


def parse_seeds(text: str, first: int = 0) -> list[int]:
    """Seeds from ``"100-119"``, ``"0,1,5"``, ``"0-4,10"``, or a count ``"5"`` (``first`` ..
    ``first + 4``). Raises ``ValueError`` with a readable message on anything else."""
    text = text.strip()
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise ValueError("a seed count must be at least 1")
        return list(range(first, first + count))
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"'{part}' is neither a seed, a count nor a range a-b")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"the range '{part}' runs backwards")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError("a seed is listed twice")
    return seeds
