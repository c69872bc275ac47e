"""Signals of IValue: how the losses of a visit become the value observed there, one table
entry per ``signal`` choice, and the running moments of the loss drop between visits."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hypergraph.traversals.ivalue._draws import stable_order

if TYPE_CHECKING:
    from hypergraph.traversals.ivalue._traversal import IValueTraversal

__all__ = ["SIGNALS", "GainMoments", "Signal", "centre", "judged_noisy", "last_visits"]

Observed = tuple[np.ndarray, np.ndarray | None]
"""The value per visit and which visits it covers (``None``: all)."""


@dataclass(frozen=True)
class Signal:
    """One ``signal`` choice.

    Attributes:
        observe: ``observe(traversal, losses, prev, s)``: the value of visits to training
            positions ``s`` with ``losses``, ``prev`` each node's loss at its previous visit
            (NaN: none).
        per_batch: The value depends on the node's visit count: queued batches are observed
            one at a time (a batch holds a node at most once).
        agreement: Needs the label agreement with graph neighbours (``agrees_``).
        irreducible: Needs the irreducible losses (``irr_``).
        noise: Needs the per-node judgement noisy vs hard (:func:`judged_noisy`).
    """

    observe: Callable[[IValueTraversal, np.ndarray, np.ndarray, np.ndarray], Observed]
    per_batch: bool = False
    agreement: bool = False
    irreducible: bool = False
    noise: bool = False


def _label_p(losses: np.ndarray) -> np.ndarray:
    """The probability the model gives the node's label."""
    out: np.ndarray = np.exp(-losses)
    return out


def _gain(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray) -> Observed:
    seen = np.isfinite(prev)
    return (prev - losses)[seen], seen


def _reducible(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray,
               ) -> Observed:
    return losses - t.irreducible_weight * t.irr_[s], None


def _loss(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray) -> Observed:
    return losses, None


def _gated(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray) -> Observed:
    # loss where the label agrees with the graph neighbourhood (upper half), else the
    # bounded uncertainty p(1 - p): a confidently contradicted label there is likely wrong
    p = _label_p(losses)
    return np.where(t.agrees_[s], losses, p * (1.0 - p)), None


def _learnable(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray,
               ) -> Observed:
    # the loss while the model gives the label more than chance (1 / classes), else the
    # bounded p (1 - p): a label the model contradicts is not worth chasing
    p = _label_p(losses)
    return np.where(p > 1.0 / t.classes_, losses, p * (1.0 - p)), None


def _decided(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray,
             ) -> Observed:
    # the loss unless the node is judged to carry a wrong label (judged_noisy), else the
    # bounded p (1 - p): a hard node the model still contradicts is chased, a noisy one is not
    p = _label_p(losses)
    return np.where(t.judged_noisy(s), p * (1.0 - p), losses), None


def _uncertainty(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray,
                 ) -> Observed:
    p = _label_p(losses)
    a = t.peak / (1.0 - t.peak)
    return (p if a == 1.0 else p ** a) * (1.0 - p), None  # p ** 1 == p exactly


def _variance(t: IValueTraversal, losses: np.ndarray, prev: np.ndarray, s: np.ndarray,
              ) -> Observed:
    # Active Bias: spread of the label probability over the node's visits
    p = _label_p(losses)
    t.p_sum_[s] += p
    t.p_sq_[s] += p * p
    k = t.visits_[s] + 1.0
    mean = t.p_sum_[s] / k
    var = np.maximum(t.p_sq_[s] / k - mean * mean, 0.0)
    return np.sqrt(var + mean * (1.0 - mean) / (k + 1.0)), None


SIGNALS: dict[str, Signal] = {
    "loss": Signal(_loss),
    "gain": Signal(_gain),
    "reducible": Signal(_reducible, irreducible=True),
    "uncertainty": Signal(_uncertainty),
    "variance": Signal(_variance, per_batch=True),
    "gated": Signal(_gated, agreement=True),
    "learnable": Signal(_learnable),
    # per batch: a visit is judged on the visits before its own batch, however queued
    "decided": Signal(_decided, per_batch=True, agreement=True, noise=True),
}
"""The ``signal`` parameter's choices, in the order of its space."""


def judged_noisy(loss_sum: np.ndarray, visits: np.ndarray, log_agree: np.ndarray,
                 classes: int) -> np.ndarray:
    """Whether each node looks like a wrong label rather than a hard point: after at least two
    visits, the model's mean loss over its visits is above chance (``ln classes``: on average
    it gave the label less than ``1 / classes``) **and** the node's graph neighbours' labels
    give it less than chance too (``log_agree`` below ``-ln classes``). A hard point near a
    class boundary keeps neighbours of its own label; a flipped label sits among neighbours of
    another. Uses training labels and training losses only; no rank, no noise rate assumed
    (issue 15, item 4: AUC and precision in ``docs/ivalue.md``)."""
    chance = math.log(max(classes, 2))
    seen = visits >= 2
    out: np.ndarray = seen & (loss_sum > chance * np.maximum(visits, 1)) & (log_agree < -chance)
    return out


def last_visits(s: np.ndarray, bound: int | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, later, last)`` of visits ``s``: the stable order by node, whether each sorted
    visit repeats the node of the one before it, whether it is its node's last. ``bound``
    (``|s| < bound``, optional) allows a faster sort."""
    if bound is None:
        order = np.argsort(s, kind="stable")
        srt = s[order]
    else:
        order, srt = stable_order(s, bound)
    later = np.zeros(s.size, bool)
    np.equal(srt[1:], srt[:-1], out=later[1:])
    last = np.ones(s.size, bool)
    np.logical_not(later[1:], out=last[:-1])
    return order, later, last


def centre(sig: np.ndarray, batch: np.ndarray, batches: int, mu: float,
           counts: list[int] | None = None) -> tuple[np.ndarray, float]:
    """``sig`` (values of visits in batches ``batch``) minus a running mean of the signal
    updated once per batch, in order (``mu``: the mean so far, NaN before any); returns the
    centred values and the new running mean. ``counts``: the visits per batch, if known."""
    sums = np.bincount(batch, sig, minlength=batches).tolist()
    if counts is None:
        counts = np.bincount(batch, minlength=batches).tolist()
    mus = []
    for total, count in zip(sums, counts, strict=True):
        if count:
            mean = total / count
            mu = mean if math.isnan(mu) else 0.9 * mu + 0.1 * mean
        mus.append(mu)
    out: np.ndarray = sig - np.asarray(mus)[batch]
    return out, mu


class GainMoments:
    """EMA over batches of 1, x, y, x^2, y^2, xy (x: a revisited node's loss at its previous
    visit, y: the loss drop since). Batches are queued (:meth:`add`) and folded in, batch by
    batch in order, when read or when ``limit`` batches wait: the same numbers whichever way
    the queue is split, computed outside the training steps."""

    def __init__(self, value: np.ndarray, limit: int) -> None:
        self._value = np.asarray(value)
        self._limit = limit
        self._queue: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []

    def add(self, prev: np.ndarray, losses: np.ndarray, batch: np.ndarray, batches: int,
            ) -> None:
        """Queue visits of ``batches`` batches (``batch``: each visit's batch index)."""
        self._queue.append((prev, losses, batch, batches))
        if len(self._queue) >= self._limit:
            self._fold()

    def value(self) -> np.ndarray:
        """The moments with every queued batch folded in."""
        self._fold()
        return self._value

    def correlation(self) -> float:
        """Correlation of x and y over the folded batches (NaN before any revisit)."""
        w, mx, my, mxx, myy, mxy = self.value()
        if w <= 0:
            return math.nan
        mx, my, mxx, myy, mxy = mx / w, my / w, mxx / w, myy / w, mxy / w
        var = (mxx - mx * mx) * (myy - my * my)
        return float((mxy - mx * my) / math.sqrt(var)) if var > 1e-18 else math.nan

    def _fold(self) -> None:
        gains = self._queue
        if not gains:
            return
        self._queue = []
        if len(gains) == 1:
            prev, losses, batch, nb = gains[0]
        else:
            offsets = np.cumsum([0] + [g[3] for g in gains[:-1]])
            prev = np.concatenate([g[0] for g in gains])
            losses = np.concatenate([g[1] for g in gains])
            batch = np.concatenate([g[2] + o for g, o in zip(gains, offsets, strict=True)])
            nb = int(sum(g[3] for g in gains))
        seen = np.isfinite(prev)
        x = np.where(seen, prev, 0.0)
        y = np.where(seen, prev - losses, 0.0)
        stats = [np.bincount(batch, w, minlength=nb).tolist()
                 for w in (seen.astype(np.float64), x, y, x * x, y * y, x * y)]
        m = self._value.tolist()
        for row in zip(*stats, strict=True):
            w = row[0]
            if w:
                m = [0.95 * a + 0.05 * (b / w) for a, b in zip(m, row, strict=True)]
        self._value = np.asarray(m)
