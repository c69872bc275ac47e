"""Value engines of IValue: per-node values and warp logits from the traversal's observations.

Both engines compute the same values (up to rounding and the tie order of ranks) behind
:class:`ValueEngine`. :class:`ExactEngine` re-propagates over every edge, ranks every node and
stores every logit at each refresh: O(E + n log n) per refresh. :class:`StreamEngine` keeps the
cost of a step independent of the graph's size: confidences decay by one global factor, so the
diffused numerator and denominator are kept per node (scaled by ``exp(t_obs / tau)``) and
updated at a refresh only around the nodes observed since (O(batch x degree^hops), by
linearity); values and logits are computed when needed from these sums. Ranks are read from a
sorted sample of ``min(n, 4096)`` values through a table of mid-ranks over 8192 equal value
bins, and logits are capped at the sample's largest (never binding below 4096 nodes).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from hypergraph.traversals.ivalue._graph import propagate_values

if TYPE_CHECKING:
    from hypergraph.traversals.ivalue._traversal import IValueTraversal

__all__ = ["ENGINES", "NEVER", "ExactEngine", "StreamEngine", "ValueEngine"]

NEVER = -(10**12)  # ``t_obs`` of a node never observed
_SKETCH = 4096  # nodes sampled for the rank sketch (all nodes below this many)
_BINS = 8192  # value bins of the rank lookup table
_REBASE = 30.0  # staleness time constants between exact recomputations of the sums
_SKIP = 20.0  # logit penalty of a judged-noisy node with ``noisy: skip`` (e^-20: floor only)
_MIN_ACCEPT = 0.002  # below this expected acceptance, value draws use a cumulative table


class ValueEngine(ABC):
    """Values and logits of the training nodes of one :class:`IValueTraversal` (``owner``).

    The engine reads the owner's observations (``obs_``, ``t_obs_``, ``step_``) and
    hyperparameters; it holds only what it derives from them. Life cycle: made at every
    ``build``, :meth:`reset` at every ``reset``, :meth:`refresh` every ``refresh`` batches;
    :meth:`observed` hears which nodes' observations changed in between.
    """

    def __init__(self, owner: IValueTraversal) -> None:
        self.owner = owner

    @abstractmethod
    def refresh(self) -> None:
        """Fold the observations made since the last refresh into the values and logits."""

    def reset(self) -> None:
        """Start over from the owner's observations (setup and every graph change)."""
        self.refresh()

    @abstractmethod
    def observed(self, nodes: np.ndarray) -> None:
        """The observations of ``nodes`` changed (folded in at the next refresh)."""

    @abstractmethod
    def values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(estimate, uncertainty)`` of nodes ``x`` as of the last refresh."""

    @abstractmethod
    def logits(self, x: np.ndarray, groups: bool = True) -> np.ndarray:
        """Warp logits of nodes ``x``; ``groups=False`` leaves out ``-log(group size)`` of
        near-duplicate groups (the raw logits value draws accept by)."""

    @abstractmethod
    def raw_bound(self) -> float:
        """An upper bound of every node's raw logit (``groups=False``)."""

    def use_table(self) -> bool:
        """Whether value draws use a cumulative table instead of rejection."""
        return True

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The engine's part of the traversal's ``extra_state``."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` (from the traversal's ``extra_state``)."""

    # ------------------------------------------------------------------ shared
    def tau(self) -> float:
        """Batches for an observation's confidence to fall by 1/e."""
        t = self.owner
        return float(t.staleness * t.steps_per_epoch())

    def _from_scores(self, score: np.ndarray, unc: np.ndarray, x: np.ndarray | None
                     ) -> np.ndarray:
        """Raw logits from a rank quantile (``transform: rank``) or a z-score (``z``) and the
        uncertainty of nodes ``x`` (``None``: all): exploration bonus, label-agreement terms."""
        t = self.owner
        out = np.sqrt(unc)  # then, in place: (score + bonus * sqrt(unc)) times or over a scale
        out *= t.bonus
        out += score
        if t.transform == "rank":  # odds top/bottom = pressure
            out *= math.log(t.pressure)
        else:
            out /= t.temperature
        if t.trust:
            out += t.trust * (t.log_agree_ if x is None else t.log_agree_[x])
        if t.contra > 0:
            out += t.contra * np.log(t.agreement(x))
        if t.noisy == "skip":  # judged-noisy nodes: out of the value draws (floor only)
            out -= _SKIP * t.judged_noisy(x)
        return out


def _zscore(est: np.ndarray, mean: float, std: float) -> np.ndarray:
    out: np.ndarray = (est - mean) / std if std > 1e-12 else np.zeros_like(est)
    return out


class ExactEngine(ValueEngine):
    """Full propagation, ranking and logit table at every refresh."""

    def refresh(self) -> None:
        t = self.owner
        age = (t.step_ - t.t_obs_) / (t.staleness * t.steps_per_epoch())
        conf = np.where(t.t_obs_ > NEVER, np.exp(-age), 0.0)
        est, unc = propagate_values(t.adj_, t.obs_, conf, t.alpha, t.hops, prior_mean=0.0,
                                    prior_weight=0.5, self_weight=t.self_weight)
        if t.transform == "rank":  # quantile in [0, 1] (1 = most valuable)
            score = np.empty(est.size)
            score[np.argsort(est, kind="stable")] = np.arange(est.size) / max(est.size - 1, 1)
        else:
            score = _zscore(est, est.mean(), float(est.std()))
        self.est_, self.unc_ = est, unc
        self._set_raw(self._from_scores(score, unc, None))

    def observed(self, nodes: np.ndarray) -> None:
        """Nothing to note: every refresh reads every observation."""

    def _set_raw(self, raw: np.ndarray) -> None:
        log_mult = self.owner.log_mult_
        self.raw_ = raw
        self.raw_hi_ = float(raw.max(initial=0.0))
        self.logits_ = raw - log_mult if log_mult is not None else raw

    def values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.est_[x], self.unc_[x]

    def logits(self, x: np.ndarray, groups: bool = True) -> np.ndarray:
        out: np.ndarray = (self.logits_ if groups else self.raw_)[x]
        return out

    def raw_bound(self) -> float:
        return self.raw_hi_

    def state(self) -> dict[str, Any]:
        return {"raw": self.raw_.copy(), "est": self.est_.copy(), "unc": self.unc_.copy()}

    def load_state(self, state: dict[str, Any]) -> None:
        self._set_raw(np.array(state["raw"], np.float64))
        self.est_, self.unc_ = np.array(state["est"]), np.array(state["unc"])


class StreamEngine(ValueEngine):
    """Diffusion sums updated around the observed nodes; ranks from a sketch (O(1) per node).

    The per-node sums are kept as two ``(n, 2)`` arrays, ``own_`` (each node's own scaled
    numerator and confidence) and ``sums_`` (the diffused ones, all that values read), so that
    the reads of a refresh and of value draws touch half the memory of one ``(n, 4)`` table.
    """

    def __init__(self, owner: IValueTraversal) -> None:
        super().__init__(owner)
        at = owner.adj_.T.tocsr()
        # per node, the span of its column of the adjacency; per entry, the row it reaches and
        # ``alpha`` times its weight, side by side (one gather per entry when spreading)
        self.span_ = np.stack([at.indptr[:-1], at.indptr[1:]], axis=1).astype(np.int64)
        edges = np.empty(at.nnz, [("i", np.int64), ("w", np.float64)])
        edges["i"] = at.indices
        edges["w"] = owner.alpha * at.data
        self.edges_ = edges
        self.cap_ = math.inf  # logits' cap (set at every refresh)
        self.observed_: list[np.ndarray] = []  # nodes observed since, not yet in the sums
        self.all_ = np.arange(owner.n_) if owner.n_ <= _SKETCH else None  # the whole sketch
        self.count_ = np.arange(0)  # 0, 1, 2, ... (grown on demand)

    def reset(self) -> None:
        self._rebase()
        self.refresh()

    def refresh(self) -> None:
        t = self.owner
        if t.step_ - self.base_ > _REBASE * self.tau():
            self._rebase()
        elif self.observed_:
            seen = self.observed_
            u = seen[0]
            # one ingest per refresh hands over its nodes sorted and distinct (what np.unique
            # would return); anything else is merged
            if len(seen) > 1 or not (u.size < 2 or bool((u[1:] > u[:-1]).all())):
                u = np.unique(np.concatenate(seen))
            if self._spread_size(u.size) > self._rebase_limit():
                self._rebase()  # many hops: walking out from u would cost more than all sums
            else:
                self._observe(u)
            self.observed_ = []
        self.gstep_ = t.step_
        self._resketch()

    def observed(self, nodes: np.ndarray) -> None:
        self.observed_.append(nodes)

    def _rebase(self) -> None:
        """Recompute the scaled diffusion sums of every node exactly (reset, and every
        ``_REBASE`` staleness constants so that the scale ``exp(t_obs / tau)`` stays bounded)."""
        t = self.owner
        self.base_ = t.step_
        seen = t.t_obs_ > NEVER
        c = np.where(seen, np.exp(np.minimum(t.t_obs_ - self.base_, 0) / self.tau()), 0.0)
        n0 = c * np.where(seen, t.obs_, 0.0)
        nh, dh = n0, c
        for _ in range(t.hops):
            nh = n0 + t.alpha * (t.adj_ @ nh)
            dh = c + t.alpha * (t.adj_ @ dh)
        self.own_ = np.ascontiguousarray(np.stack([n0, c], axis=1))
        self.sums_ = np.ascontiguousarray(np.stack([nh, dh], axis=1))
        self.observed_ = []

    def _spread_size(self, observed: int) -> float:
        """Expected entries :meth:`_observe` gathers at its last hop for ``observed`` nodes:
        ``s_0 = observed``, ``s_h = observed + degree * s_(h-1)`` with the mean degree; it grows
        as ``degree ** hops``."""
        degree = self.edges_.size / max(self.owner.n_, 1)
        size = float(observed)
        for _ in range(self.owner.hops):
            size = observed + degree * size
            if size > 1e18:
                break
        return size

    def _rebase_limit(self) -> float:
        """Spread size above which an exact :meth:`_rebase` (``hops`` sparse products over the
        whole graph) is cheaper. Never reached with one hop (at most ``n + nnz`` entries), so
        the default's selections do not depend on it."""
        return max(4.0 * self.owner.hops * (self.edges_.size + self.owner.n_), 1e6)

    def _counting(self, total: int) -> np.ndarray:
        """``0, 1, ..., total - 1`` (a view of a cached range)."""
        if self.count_.size < total:
            self.count_ = np.arange(max(total, 2 * self.count_.size))
        return self.count_[:total]

    def _observe(self, u: np.ndarray) -> None:
        """Fold the latest observations of nodes ``u`` (distinct) into the diffusion sums: only
        the nodes within ``hops`` of ``u`` change, by linearity of the diffusion."""
        t, own, sums = self.owner, self.own_, self.sums_
        ob = t.obs_[u]
        c = np.exp((t.t_obs_[u] - self.base_) / self.tau())
        new0 = c * ob
        old = np.take(own, u, axis=0)
        d0 = np.empty((2, u.size))  # (numerator, denominator) change per node of u
        np.subtract(new0, old[:, 0], out=d0[0])
        np.subtract(c, old[:, 1], out=d0[1])
        old[:, 0] = new0
        old[:, 1] = c
        own[u] = old
        idx, d = u, d0  # the change of each hop's sums (repeated ids add up)
        for _ in range(t.hops):
            span = np.take(self.span_, idx, axis=0)
            lens = span[:, 1] - span[:, 0]
            ends = np.cumsum(lens)
            shift = span[:, 0] - ends  # each entry's position = its rank in the output + shift
            shift += lens
            offs = np.repeat(shift, lens)
            offs += self._counting(offs.size)
            reach = self.edges_[offs]
            spread = np.repeat(d, lens, axis=1)
            spread *= reach["w"]
            idx = np.concatenate([u, reach["i"]])
            d = np.concatenate([d0, spread], axis=1)
        # a scatter-add per column: each entry gets the same additions in the same order
        np.add.at(sums[:, 0], idx, d[0])
        np.add.at(sums[:, 1], idx, d[1])

    def values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :func:`propagate_values` gives them (prior mean 0, prior weight 0.5)."""
        g = math.exp(-(self.gstep_ - self.base_) / self.tau())
        v = np.take(self.sums_, x, axis=0)
        off = 1.0 - self.owner.self_weight
        if off:
            o = np.take(self.own_, x, axis=0)
            num = g * (v[:, 0] - off * o[:, 0])
            den = g * (v[:, 1] - off * o[:, 1])
        else:  # the same numbers (``x - 0 * y == x`` for finite sums), fewer passes
            v *= g
            num, den = v[:, 0], v[:, 1]
        np.maximum(den, 0.0, out=den)
        den += 0.5
        return num / den, np.divide(0.5, den)

    def _resketch(self) -> None:
        """Sorted sample of current values (the rank transform's reference), its moments (z
        transform) and the logits' cap: the sample's largest raw logit. Logits are capped
        there, which never binds when the sample holds every node (``n <= 4096``) and makes
        the rejection bound of value draws tight."""
        t = self.owner
        x = self.all_ if self.all_ is not None else t.rng_.integers(0, t.n_, _SKETCH)
        est, unc = self.values(x)
        self.sketch_ = np.sort(est)
        self.sk_mean_, self.sk_std_ = ((float(est.mean()), float(est.std()))
                                       if t.transform == "z" else (0.0, 1.0))
        self._rank_table()
        self.cap_ = math.inf
        raw = self._logits_from(x, est, unc, groups=False)
        self.cap_ = float(raw.max(initial=-math.inf))
        # expected acceptance of a uniform proposal (the sample's mean of exp(logit - cap)):
        # when the values concentrate on few nodes, value draws use an O(n) table instead
        if raw.size:
            raw -= self.cap_
            self.accept_ = float(np.mean(np.exp(raw, out=raw)))
        else:
            self.accept_ = 1.0

    def _rank_table(self) -> None:
        """Mid-rank quantile of each of ``_BINS`` equal value bins spanning the sketch (ties in
        a bin share its mid-rank): an O(1) rank lookup for any value."""
        sk = self.sketch_
        lo, hi = float(sk[0]), float(sk[-1])
        self.tab_lo_ = lo
        if not hi - lo > 1e-12 * max(abs(lo), abs(hi), 1e-300):
            self.tab_scale_ = 0.0
            self.tab_ = np.full(1, 0.5)
            return
        self.tab_scale_ = _BINS / (hi - lo)
        at = ((sk - lo) * self.tab_scale_).astype(np.intp)
        np.minimum(at, _BINS - 1, out=at)
        counts = np.bincount(at, minlength=_BINS)
        mid = np.cumsum(counts)  # values in bins up to each: then (less + leq - 1) in place
        mid += mid
        mid -= counts
        mid -= 1
        tab = np.divide(mid, 2.0 * max(sk.size - 1, 1))
        np.maximum(tab, 0.0, out=tab)
        self.tab_ = np.minimum(tab, 1.0, out=tab)

    def logits(self, x: np.ndarray, groups: bool = True) -> np.ndarray:
        est, unc = self.values(x)
        return self._logits_from(x, est, unc, groups)

    def _logits_from(self, x: np.ndarray, est: np.ndarray, unc: np.ndarray,
                     groups: bool) -> np.ndarray:
        if self.owner.transform == "rank":
            pos = np.subtract(est, self.tab_lo_)
            pos *= self.tab_scale_
            np.maximum(pos, 0, out=pos)
            np.minimum(pos, self.tab_.size - 1, out=pos)
            score = self.tab_[pos.astype(np.intp)]
        else:
            score = _zscore(est, self.sk_mean_, self.sk_std_)
        out = self._from_scores(score, unc, x)
        if self.cap_ < math.inf:
            np.minimum(out, self.cap_, out=out)
        log_mult = self.owner.log_mult_
        if groups and log_mult is not None:
            out = out - log_mult[x]
        return out

    def raw_bound(self) -> float:
        return self.cap_

    def use_table(self) -> bool:
        """When rejection's acceptance has collapsed."""
        return self.accept_ < _MIN_ACCEPT

    def state(self) -> dict[str, Any]:
        pending = np.concatenate(self.observed_) if self.observed_ else np.empty(0, np.int64)
        return {"V": np.concatenate([self.own_, self.sums_], axis=1), "base": self.base_,
                "gstep": self.gstep_, "pending": pending, "sketch": self.sketch_.copy(),
                "sk_mean": self.sk_mean_, "sk_std": self.sk_std_, "cap": self.cap_,
                "accept": self.accept_}

    def load_state(self, state: dict[str, Any]) -> None:
        V = np.asarray(state["V"], np.float64)  # columns: own numerator, own confidence, sums
        self.own_ = np.ascontiguousarray(V[:, :2]).copy()
        self.sums_ = np.ascontiguousarray(V[:, 2:]).copy()
        self.sketch_ = np.asarray(state["sketch"])
        self._rank_table()
        self.cap_ = float(state["cap"])
        self.accept_ = float(state["accept"])
        self.base_ = int(state["base"])
        self.gstep_ = int(state["gstep"])
        self.observed_ = [np.asarray(state["pending"], np.int64)]
        self.sk_mean_, self.sk_std_ = float(state["sk_mean"]), float(state["sk_std"])


ENGINES: dict[str, type[ValueEngine]] = {"stream": StreamEngine, "exact": ExactEngine}
"""The ``engine`` parameter's choices."""
