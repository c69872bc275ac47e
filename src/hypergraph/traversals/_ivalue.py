"""IValueTraversal: walkers steered by measured, propagated information value.

The design answers the two failures of an earlier greedy walk (batches far less diverse than
i.i.d. ones; predicted values uncorrelated with the gain actually realised):

* **Values are measured, not predicted.** Every training step already computes each sample's
  loss; the trainer hands those losses back (``feedback``) and the traversal turns them into a
  per-node signal: the loss while the model gives the label more than chance and the bounded
  ``p(1 - p)`` below it (``learnable``, default), the label-probability uncertainty
  ``p(1 - p)``, the loss, the loss change since the node's last visit (``gain``), its spread
  over visits, or the reducible loss (loss minus an irreducible loss: from the node's
  neighbours' labels, or from a small model trained on held-out rows).
* **The whole graph is valued without a forward pass over it.** Every ``refresh`` batches the
  observations, weighted by a confidence that decays with their age, are diffused ``hops``
  times over the row-normalised training subgraph (:func:`propagate_values`): a node never seen
  (or seen long ago) inherits the value of its neighbours, and its uncertainty (how little
  confident mass reached it) earns an exploration bonus. Cost: ``hops`` sparse mat-vecs per
  refresh, amortised over ``refresh`` batches.
* **Batches stay diverse and cover the data.** A share ``sweep`` of every batch comes from a
  shuffled pass over the training nodes without replacement (every node at least once every
  ``1 / sweep`` epochs); the rest from ``walkers`` walkers that either warp to a node anywhere
  drawn in proportion to ``exp(logit)`` mixed with a uniform share ``explore`` (``warp = 1``,
  the default) or move to a neighbour drawn by a softmax of value over its neighbours
  (temperature, not argmax). Nodes picked within the last ``return_delay`` epochs are skipped,
  and a batch never holds a node twice. Value draws keep every class's share of the batch
  (``stratify``: value picks members within a class, not the class mix), and near-duplicate
  nodes (edges of weight >= ``dedup``) are visited as one node per group.

Two engines compute the same values. ``exact`` (the first implementation) re-propagates over
every edge, ranks every node and rebuilds a cumulative warp table every ``refresh`` batches:
O(E + n log n) per refresh. ``stream`` (the default) keeps the cost of a step independent of
the graph's size: confidences decay by one global factor, so the diffused numerator and
denominator are kept per node (scaled by ``exp(t_obs / tau)``) and updated every ``refresh``
batches only around the nodes observed since (O(batch x degree^hops) per batch, by linearity);
a node's value and logit are computed when needed from these sums, as of the last refresh
(the exact engine's values, up to rounding). Ranks are read from a sorted sample of
``min(n, 4096)`` values rebuilt at each refresh, through a table of mid-ranks over 8192 equal
value bins (ties share their mid-rank, where the exact engine breaks them by node order).
Warps draw a node by rejection from uniform proposals against an upper bound of the logits
(exact in distribution, O(1) expected work per draw).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int
from hypergraph.traversals._base import Selection, Traversal
from hypergraph.traversals._baselines import (
    _train_features,
    graph_irreducible_losses,
    holdout_irreducible_losses,
)

__all__ = ["IValueTraversal", "near_duplicate_groups", "propagate_values"]

_NEVER = -(10**12)
_SKETCH = 4096  # nodes sampled for the rank sketch (all nodes below this many)
_BINS = 8192  # value bins of the rank lookup table (stream engine)
_REBASE = 30.0  # staleness time constants between exact recomputations (stream engine)
_MIN_ACCEPT = 0.002  # below this expected acceptance, warps use a cumulative table instead


def _gather_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                 rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries of the given CSR rows: ``(position in rows, column, value)``, O(entries)."""
    offs, lens = _row_offsets(indptr, rows)
    owner = np.repeat(np.arange(rows.size), lens)
    return owner, indices[offs], data[offs]


def _row_offsets(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the entries of the given CSR rows (row by row) and each row's length."""
    start = indptr[rows]
    lens = indptr[rows + 1] - start
    ends = np.cumsum(lens)
    total = int(ends[-1]) if ends.size else 0
    start -= ends - lens  # each entry's position = its rank in the output + its row's shift
    return np.arange(total) + np.repeat(start, lens), lens


def propagate_values(adj: sp.csr_matrix, obs: np.ndarray, conf: np.ndarray, alpha: float,
                     hops: int, prior_mean: float = 0.0, prior_weight: float = 1.0,
                     self_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Confidence-weighted diffusion of node observations over a graph.

    With ``A`` the row-normalised adjacency, ``num_0 = conf * obs`` and ``den_0 = conf``, each hop
    computes ``num = num_0 + alpha * A @ num`` and ``den = den_0 + alpha * A @ den``. The estimate
    is ``(num + prior_weight * prior_mean) / (den + prior_weight)`` and the uncertainty
    ``prior_weight / (den + prior_weight)`` (1 where no confident mass arrived, near 0 for a node
    just observed with full confidence and observed neighbours). ``self_weight`` scales a node's
    own observation in its *own* estimate (its neighbours always see it in full): 0 values a node
    by its neighbourhood only, which ignores an outlying loss such as a flipped label's.

    Args:
        adj: Row-normalised ``(n, n)`` adjacency (rows sum to 1 or 0).
        obs: Observed signal per node (any value where ``conf`` is 0).
        conf: Confidence of each observation in ``[0, 1]``.
        alpha: Weight of the neighbours' mass per hop.
        hops: Number of diffusion steps.
        prior_mean: Value assumed with no evidence.
        prior_weight: Pseudo-confidence of the prior.
        self_weight: Weight of a node's own observation in its estimate.

    Returns:
        ``(estimate, uncertainty)``.
    """
    num0 = conf * np.where(conf > 0, obs, 0.0)
    den0 = np.asarray(conf, np.float64)
    num, den = num0, den0
    for _ in range(hops):
        num = num0 + alpha * (adj @ num)
        den = den0 + alpha * (adj @ den)
    num = num - (1.0 - self_weight) * num0
    den = den - (1.0 - self_weight) * den0
    est = (num + prior_weight * prior_mean) / (den + prior_weight)
    unc = prior_weight / (den + prior_weight)
    return est, unc


def near_duplicate_groups(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                          threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Groups of near-duplicate nodes: connected components of the edges whose weight is at
    least ``threshold`` (a similarity in ``(0, 1]``, as the kNN and threshold builders give).

    Returns ``(group id per node, group size per node)``. Every node is its own group when
    ``threshold`` is 0 or when the weights carry no information (all equal, as in an unweighted
    graph), so grouping never merges a graph whose weights say nothing about similarity.
    """
    n = indptr.size - 1
    alone = (np.arange(n), np.ones(n))
    if threshold <= 0 or weights.size == 0 or float(np.ptp(weights)) == 0.0:
        return alone
    keep = weights >= threshold
    if not keep.any():
        return alone
    rows = np.repeat(np.arange(n), np.diff(indptr))
    adj = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], indices[keep])), shape=(n, n))
    _, group = connected_components(adj, directed=False)
    size = np.bincount(group)
    return group.astype(np.int64), size[group].astype(np.float64)


@register("traversal", "ivalue")
class IValueTraversal(Traversal):
    """Walkers steered by per-node information value measured from training losses.

    See the module docstring for the design. ``signal`` picks the value measured at each visit:
    ``uncertainty`` (``p(1 - p)`` with ``p = exp(-loss)`` the probability given to the node's
    label: high when neither learnt nor contradicted, so flipped labels score low), ``loss``
    (the sample's training loss), ``gain`` (its loss drop since its previous visit),
    ``variance`` (spread of ``p`` over the node's visits, as in Active Bias) or ``reducible``
    (loss minus irreducible loss; ``irreducible`` says whose: ``graph`` = the leave-one-out
    cross-entropy of its neighbours' labels, free; ``holdout`` = a small model trained on
    held-out training rows, cross-fitted, its compute reported in ``overhead_``).
    ``learnable`` (default) is the loss while the model gives the label more than chance, else
    ``p (1 - p)``. Observations are centred on a running mean of the signal, so values stay
    comparable as the loss falls over training. ``sweep`` sets the share of each batch taken
    from a shuffled pass without replacement; ``contra`` adds a label-noise penalty from the
    model's confidence on graph neighbours (:meth:`model_agreement`). ``stratify`` keeps each
    class's share of the value draws; ``dedup`` groups near-duplicate nodes
    (:func:`near_duplicate_groups`).
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:walk",
                                                "traversal:selection"})
    requires: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "per_sample_loss"})
    space = {
        "signal": Categorical(default="learnable",
                              choices=("loss", "gain", "reducible", "uncertainty", "variance",
                                       "gated", "learnable"),
                              help="value measured at each visit"),
        "irreducible": Categorical(default="graph", choices=("graph", "holdout"),
                                   help="source of the irreducible loss (signal=reducible)"),
        "irreducible_weight": Float(default=1.0, low=0.0, high=10.0,
                                    help="weight of the irreducible loss subtracted"),
        "walkers": Int(default=32, low=1, high=65536, log=True, help="walkers moving at once"),
        "transform": Categorical(default="rank", choices=("rank", "z"),
                                 help="value -> logit: by rank (robust) or z-score"),
        "pressure": Float(default=100.0, low=1.0, high=1e8, log=True,
                          help="rank transform: odds of the top- over the bottom-ranked node"),
        "temperature": Float(default=0.5, low=0.01, high=100.0, log=True,
                             help="z transform: softmax temperature over standardised values"),
        "warp": Float(default=1.0, low=0.0, high=1.0,
                      help="probability a walker warps instead of moving to a neighbour"),
        "explore": Float(default=0.1, low=0.0, high=1.0,
                         help="share of warps drawn uniformly (coverage floor)"),
        "return_delay": Float(default=0.0, low=0.0, high=10.0,
                              help="epochs before a picked node may be picked again"),
        "refresh": Int(default=8, low=1, high=100_000, log=True,
                       help="batches between value propagations"),
        "hops": Int(default=1, low=0, high=20, help="diffusion steps per propagation"),
        "alpha": Float(default=0.5, low=0.0, high=1.0, help="weight of neighbours per hop"),
        "trust": Float(default=0.0, low=0.0, high=10.0,
                       help="weight of log label agreement with graph neighbours in the logits"),
        "peak": Float(default=0.5, low=0.01, high=0.99,
                      help="signal=uncertainty: label probability p where the value p^a (1 - p) "
                      "peaks (a = peak / (1 - peak); 0.5 gives p (1 - p))"),
        "sweep": Float(default=0.5, low=0.0, high=1.0,
                       help="share of each batch taken from a shuffled pass over the training "
                       "nodes (without replacement) instead of the walkers"),
        "contra": Float(default=0.0, low=0.0, high=20.0,
                        help="weight of log model-confirmed label agreement with train "
                        "neighbours in the logits (label-noise filter)"),
        "self_weight": Float(default=1.0, low=0.0, high=1.0,
                             help="weight of a node's own observation vs its neighbourhood"),
        "staleness": Float(default=2.0, low=0.01, high=1000.0, log=True,
                           help="epochs for an observation's confidence to fall by 1/e"),
        "bonus": Float(default=0.5, low=0.0, high=10.0,
                       help="exploration bonus per unit of uncertainty (in value std units)"),
        "engine": Categorical(default="stream", choices=("stream", "exact"),
                              help="stream: per-step cost independent of the graph size; "
                              "exact: full propagation and ranking every refresh"),
        "stratify": Categorical(default="label", choices=("none", "label"),
                                help="label: every class gets its share of the value draws "
                                "(value picks members within a class, never the class mix)"),
        "dedup": Float(default=0.995, low=0.0, high=1.0,
                       help="edge weight (similarity) at or above which two training nodes "
                       "are near-duplicates; a group of m near-duplicates is visited as one "
                       "node (each member 1/m as often); 0 turns grouping off"),
    }

    def __init__(self, signal: str = "learnable", irreducible: str = "graph",
                 irreducible_weight: float = 1.0, walkers: int = 32, transform: str = "rank",
                 pressure: float = 100.0, temperature: float = 0.5, warp: float = 1.0,
                 explore: float = 0.1,
                 return_delay: float = 0.0, refresh: int = 8, hops: int = 1,
                 alpha: float = 0.5, trust: float = 0.0, peak: float = 0.5,
                 sweep: float = 0.5, contra: float = 0.0,
                 self_weight: float = 1.0, staleness: float = 2.0,
                 bonus: float = 0.5, engine: str = "stream", dedup: float = 0.995,
                 stratify: str = "label") -> None:
        self.signal = signal
        self.irreducible = irreducible
        self.irreducible_weight = irreducible_weight
        self.walkers = walkers
        self.transform = transform
        self.pressure = pressure
        self.temperature = temperature
        self.warp = warp
        self.explore = explore
        self.return_delay = return_delay
        self.refresh = refresh
        self.hops = hops
        self.alpha = alpha
        self.trust = trust
        self.peak = peak
        self.sweep = sweep
        self.contra = contra
        self.self_weight = self_weight
        self.staleness = staleness
        self.bonus = bonus
        self.engine = engine
        self.dedup = dedup
        self.stratify = stratify

    # ------------------------------------------------------------------ setup
    def _build(self) -> None:
        sub = self.graph_.subgraph(self.train_ids_)
        n = sub.num_nodes
        self.n_ = n
        self.pos_of_ = np.full(self.graph_.num_nodes, -1, np.int64)
        self.pos_of_[self.train_ids_] = np.arange(n)
        wdeg = sub.weighted_degree()
        scale = np.repeat(np.where(wdeg > 0, 1.0 / np.maximum(wdeg, 1e-30), 0.0),
                          np.diff(sub.indptr))
        self.adj_ = sp.csr_matrix((sub.weights * scale, sub.indices, sub.indptr), shape=(n, n))
        self._pad_neighbours(sub.indptr, sub.indices, sub.weights)
        self.group_, self.mult_ = near_duplicate_groups(sub.indptr, sub.indices, sub.weights,
                                                        self.dedup)
        self.grouped_ = bool(self.mult_.max(initial=1) > 1)
        self.log_mult_ = np.log(self.mult_) if self.grouped_ else None
        self.members_ = np.argsort(self.group_, kind="stable")  # nodes ordered by group
        self.starts_ = np.concatenate([[0], np.cumsum(np.bincount(self.group_))])
        labels = np.asarray(sub.label)
        self.classes_ = int(labels.max(initial=1)) + 1 if labels.dtype.kind in "iub" else 2
        self.strata_: np.ndarray | None = None
        if self.stratify == "label" and labels.dtype.kind in "iub" and n:
            self.strata_ = np.unique(labels, return_inverse=True)[1].astype(np.int64)
            mass = np.bincount(self.strata_, 1.0 / self.mult_)
            self.strata_share_ = mass / mass.sum()
        if labels.dtype.kind in "iub":
            same = labels[sub.indices] == np.repeat(labels, np.diff(sub.indptr))
        else:  # regression: no label agreement
            same = np.ones(sub.indices.size, bool)
        self.adj_same_ = sp.csr_matrix((self.adj_.data * same, sub.indices, sub.indptr),
                                       shape=(n, n))
        self.adj_diff_ = sp.csr_matrix((self.adj_.data * ~same, sub.indices, sub.indptr),
                                       shape=(n, n))
        self.overhead_: dict[str, Any] = {"forward_samples": 0.0, "params": 0, "what": ""}
        self.irr_ = np.zeros(n)
        # log-probability of each node's label under its neighbours' labels (free, from the graph)
        need_agree = self.trust > 0 or self.signal == "gated"
        self.log_agree_ = -graph_irreducible_losses(sub) if need_agree else np.zeros(n)
        self.agrees_ = self.log_agree_ >= np.median(self.log_agree_)
        if self.signal == "reducible":
            if self.irreducible == "graph":
                self.irr_ = graph_irreducible_losses(sub)
            else:
                feats = _train_features(self.graph_, self.train_ids_, self.display_name())
                self.irr_, self.overhead_ = holdout_irreducible_losses(
                    feats, self.graph_.label[self.train_ids_],
                    max(1, int(np.max(self.graph_.label, initial=0)) + 1), self.rng_)
        old = getattr(self, "obs_", None)
        if old is None or old.size != n:
            self.obs_ = np.zeros(n)
            self.t_obs_ = np.full(n, _NEVER, np.int64)
            self.last_loss_ = np.full(n, np.nan)
            self.last_pick_ = np.full(n, _NEVER, np.int64)
            self.visits_ = np.zeros(n, np.int64)
            self.pos_ = self.rng_.integers(0, n, size=self.walkers)
            self.step_ = 0
            self.mu_ = math.nan
            self.p_sum_ = np.zeros(n)
            self.p_sq_ = np.zeros(n)
            self.perm_ = self._new_pass()
            self.cursor_ = 0
            self.moments_ = np.zeros(6)  # EMA of 1, x, y, x^2, y^2, xy (x: old loss, y: gain)
        if self.engine == "stream":
            self.adjT_ = self.adj_.T.tocsr()
            self.acc_ = 0.1
            self._rebase()
        self._refresh()

    def _pad_neighbours(self, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                        cap: int = 32) -> None:
        """``(n, D)`` neighbour ids (-1 padded) and log edge weights: the D heaviest per row."""
        n = indptr.size - 1
        rows = np.repeat(np.arange(n), np.diff(indptr))
        order = np.lexsort((-weights, rows))
        rank = np.arange(order.size) - indptr[rows[order]]
        deg = int(min(cap, np.diff(indptr).max(initial=0)))
        keep = rank < deg
        self.nbr_ = np.full((n, max(deg, 1)), -1, np.int64)
        self.logw_ = np.full((n, max(deg, 1)), -np.inf)
        r, c = rows[order][keep], rank[keep]
        self.nbr_[r, c] = indices[order][keep]
        self.logw_[r, c] = np.log(np.maximum(weights[order][keep], 1e-30))

    def _delay(self) -> int:
        return round(self.return_delay * self.steps_per_epoch())

    # ------------------------------------------------------------------ stream engine
    def _tau(self) -> float:
        return float(self.staleness * self.steps_per_epoch())

    def _rebase(self) -> None:
        """Recompute the scaled diffusion sums of every node exactly (setup, and every
        ``_REBASE`` staleness constants so that the scale ``exp(t_obs / tau)`` stays bounded)."""
        self.base_ = self.step_
        seen = self.t_obs_ > _NEVER
        c = np.where(seen, np.exp(np.minimum(self.t_obs_ - self.base_, 0) / self._tau()), 0.0)
        n0 = c * np.where(seen, self.obs_, 0.0)
        nh, dh = n0, c
        for _ in range(self.hops):
            nh = n0 + self.alpha * (self.adj_ @ nh)
            dh = c + self.alpha * (self.adj_ @ dh)
        self.V_ = np.ascontiguousarray(np.stack([n0, c, nh, dh], axis=1))
        self.pending_: list[np.ndarray] = []
        self.obs_hi_ = max(0.0, float(self.obs_[seen].max(initial=0.0)))
        self.agree_hi_ = float(self.log_agree_.max(initial=0.0))

    def _observe(self, u: np.ndarray) -> None:
        """Fold the latest observations of nodes ``u`` (distinct) into the diffusion sums: only
        the nodes within ``hops`` of ``u`` change, by linearity of the diffusion."""
        v = self.V_
        ob = self.obs_[u]
        c = np.exp((self.t_obs_[u] - self.base_) / self._tau())
        new0 = c * ob
        old = np.take(v, u, axis=0)
        d0 = np.empty((2, u.size))  # (numerator, denominator) change per node of u
        np.subtract(new0, old[:, 0], out=d0[0])
        np.subtract(c, old[:, 1], out=d0[1])
        v[u, 0] = new0
        v[u, 1] = c
        if u.size:
            self.obs_hi_ = max(self.obs_hi_, float(ob.max()))
        idx, d = u, d0  # the change of each hop's sums (repeated ids add up)
        at = self.adjT_
        for _ in range(self.hops):
            offs, lens = _row_offsets(at.indptr, idx)
            w = self.alpha * at.data[offs]
            spread = np.repeat(d, lens, axis=1)
            spread *= w
            idx = np.concatenate([u, at.indices[offs]])
            d = np.concatenate([d0, spread], axis=1)
        # one 1-d scatter-add into columns 2 and 3 of V (each entry gets the same additions in
        # the same order as with one scatter per column)
        pos = np.empty((2, idx.size), np.int64)
        np.multiply(idx, 4, out=pos[0])
        pos[0] += 2
        np.add(pos[0], 1, out=pos[1])
        np.add.at(v.reshape(-1), pos.reshape(-1), d.reshape(-1))

    def _node_values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(estimate, uncertainty)`` of nodes ``x`` as of the last refresh, as
        :func:`propagate_values` gives them (prior mean 0, prior weight 0.5)."""
        g = math.exp(-(self.gstep_ - self.base_) / self._tau())
        v = np.take(self.V_, x, axis=0)
        off = 1.0 - self.self_weight
        if off:
            num = g * (v[:, 2] - off * v[:, 0])
            den = g * (v[:, 3] - off * v[:, 1])
        else:  # the same numbers (``x - 0 * y == x`` for finite sums), fewer passes
            num = v[:, 2] * g
            den = v[:, 3] * g
        np.maximum(den, 0.0, out=den)
        den += 0.5
        return num / den, np.divide(0.5, den, out=den)

    def _resketch(self) -> None:
        """Sorted sample of current values (the rank transform's reference) and its moments."""
        n = self.n_
        x = np.arange(n) if n <= _SKETCH else self.rng_.integers(0, n, _SKETCH)
        est, unc = self._node_values(x)
        self.sketch_ = np.sort(est)
        self.sk_mean_ = float(est.mean())
        self.sk_std_ = float(est.std())
        self._rank_table()
        self.z_cap_ = math.inf
        if self.transform == "z":
            # logits capped 1 above the sample's largest (never binding when the sample holds
            # every node), which makes the rejection bound tight
            std = self.sk_std_
            z = (est - self.sk_mean_) / std if std > 1e-12 else np.zeros_like(est)
            self.z_cap_ = float(np.max((z + self.bonus * np.sqrt(unc)) / self.temperature)) + 1.0
        # expected acceptance of a uniform proposal (the sample's mean of exp(logit - bound)):
        # when the values concentrate on few nodes, warps draw from an O(n) table instead
        lg = self._logits_from(x, est, unc)
        self.accept_ = float(np.mean(np.exp(lg - self._logit_bound())))
        self.table_: np.ndarray | None = None

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
        counts = np.bincount(np.minimum(((sk - lo) * self.tab_scale_).astype(np.intp), _BINS - 1),
                             minlength=_BINS)
        leq = np.cumsum(counts)
        less = leq - counts
        self.tab_ = np.clip((less + leq - 1) / (2.0 * max(sk.size - 1, 1)), 0.0, 1.0)

    def _agreement(self, x: np.ndarray, smoothing: float = 0.25) -> np.ndarray:
        """:meth:`model_agreement` of nodes ``x`` only (O(their degree))."""
        sums = []
        for mat in (self.adj_same_, self.adj_diff_):
            owner, col, val = _gather_rows(mat.indptr, mat.indices, mat.data, x)
            ll = self.last_loss_[col]
            p = np.where(np.isfinite(ll), np.exp(-np.nan_to_num(ll)), 0.0)
            sums.append(np.bincount(owner, val * p, minlength=x.size))
        out: np.ndarray = (sums[0] + smoothing) / (sums[0] + sums[1] + smoothing)
        return out

    def _node_logits(self, x: np.ndarray) -> np.ndarray:
        """Current warp logits of nodes ``x`` (stream engine)."""
        est, unc = self._node_values(x)
        return self._logits_from(x, est, unc)

    def _logits_from(self, x: np.ndarray, est: np.ndarray, unc: np.ndarray) -> np.ndarray:
        if self.transform == "rank":
            pos = np.clip((est - self.tab_lo_) * self.tab_scale_, 0, self.tab_.size - 1)
            q = self.tab_[pos.astype(np.intp)]
            out = math.log(self.pressure) * (q + self.bonus * np.sqrt(unc))
        else:
            std = self.sk_std_
            z = (est - self.sk_mean_) / std if std > 1e-12 else np.zeros_like(est)
            out = np.minimum((z + self.bonus * np.sqrt(unc)) / self.temperature, self.z_cap_)
        if self.trust:
            out = out + self.trust * self.log_agree_[x]
        if self.contra > 0:
            out = out + self.contra * np.log(self._agreement(x))
        if self.log_mult_ is not None:
            out = out - self.log_mult_[x]
        return out

    def _logit_bound(self) -> float:
        """An upper bound of every node's current logit (``q <= 1``, ``unc <= 1``, agreements
        <= 1; transform z: the cap of its logits)."""
        extra = self.trust * self.agree_hi_
        if self.transform == "rank":
            return math.log(self.pressure) * (1.0 + self.bonus) + extra
        return self.z_cap_ + extra

    def _draw_stream(self, k: int) -> np.ndarray:
        """``k`` independent draws from ``(1 - explore) softmax(logits) + explore * floor``:
        rejection from uniform proposals (exact in distribution, O(1) expected per draw); an
        exact O(n) inverse-CDF draw only if the acceptance rate collapses."""
        rng, n = self.rng_, self.n_
        if self.accept_ < _MIN_ACCEPT:  # table of the current logits, built once per refresh
            if self.table_ is None:
                lg = self._node_logits(np.arange(n))
                p = np.exp(lg - lg.max())
                self.table_ = np.cumsum((1.0 - self.explore) * p / p.sum()
                                        + self.explore * self._floor())
            cum = self.table_
            return np.minimum(np.searchsorted(cum, rng.random(k) * cum[-1], side="right"),
                              n - 1)
        out = self._uniform(k)
        need = np.flatnonzero(rng.random(k) >= self.explore)
        bound = self._logit_bound()
        got: list[np.ndarray] = []
        have = 0
        for _ in range(32):
            m = int(min(max(1.5 * (need.size - have) / self.acc_, 16), 1 << 16))
            x = rng.integers(0, n, m)
            u = rng.random(m)
            lg = self._node_logits(x) - bound
            ok = u < np.exp(lg, out=lg)
            k_ok = int(np.count_nonzero(ok))
            self.acc_ = min(max(0.8 * self.acc_ + 0.2 * k_ok / m, 1e-4), 1.0)
            got.append(x[ok])
            have += k_ok
            if have >= need.size:
                break
        take = got[0] if len(got) == 1 else np.concatenate(got)
        take = take[:need.size]
        if take.size < need.size:  # pathological bound: exact draw for the rest
            lg = self._node_logits(np.arange(n))
            cum = np.cumsum(np.exp(lg - lg.max()))
            rest = np.searchsorted(cum, rng.random(need.size - take.size) * cum[-1], "right")
            take = np.concatenate([take, np.minimum(rest, n - 1)])
        out[need] = take
        return out

    def _logits_of(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "stream":
            return self._node_logits(x.ravel()).reshape(x.shape)
        out: np.ndarray = self.logits_[x]
        return out

    def _refresh(self) -> None:
        """Propagate the observations and rebuild the logits and the warp table (``exact``
        engine); rebuild the rank sketch (``stream`` engine)."""
        if self.engine == "stream":
            if self.step_ - self.base_ > _REBASE * self._tau():
                self._rebase()
            elif self.pending_:
                self._observe(np.unique(np.concatenate(self.pending_)))
                self.pending_ = []
            self.gstep_ = self.step_
            self._resketch()
            return
        age = (self.step_ - self.t_obs_) / (self.staleness * self.steps_per_epoch())
        conf = np.where(self.t_obs_ > _NEVER, np.exp(-age), 0.0)
        est, unc = propagate_values(self.adj_, self.obs_, conf, self.alpha, self.hops,
                                    prior_mean=0.0, prior_weight=0.5,
                                    self_weight=self.self_weight)
        if self.transform == "rank":
            # quantile in [0, 1] (1 = most valuable); odds top/bottom = pressure
            q = np.empty(est.size)
            q[np.argsort(est, kind="stable")] = np.arange(est.size) / max(est.size - 1, 1)
            self.logits_ = math.log(self.pressure) * (q + self.bonus * np.sqrt(unc))
            self.logits_ += self.trust * self.log_agree_
        else:
            std = float(est.std())
            z = (est - est.mean()) / std if std > 1e-12 else np.zeros_like(est)
            self.logits_ = (z + self.bonus * np.sqrt(unc)) / self.temperature
            self.logits_ += self.trust * self.log_agree_
        if self.contra > 0:
            self.logits_ += self.contra * np.log(self.model_agreement())
        if self.log_mult_ is not None:
            self.logits_ -= self.log_mult_
        p = np.exp(self.logits_ - self.logits_.max())
        p = (1.0 - self.explore) * p / p.sum() + self.explore * self._floor()
        self.cum_ = np.cumsum(p)
        self.est_, self.unc_ = est, unc

    def model_agreement(self, smoothing: float = 0.25) -> np.ndarray:
        """How much the trained model's confident neighbours support each node's label.

        With ``p_j = exp(-loss_j)`` the probability the model gave neighbour ``j``'s label at
        its last visit (0 for a node never visited) and ``A`` the row-normalised training
        subgraph, ``support_i = sum_j A_ij [y_j = y_i] p_j`` and
        ``against_i = sum_j A_ij [y_j != y_i] p_j``; the agreement is
        ``(support_i + s) / (support_i + against_i + s)`` with ``s = smoothing``. It is near 1
        where confident neighbours share the label or where the model is confident nowhere
        nearby (a hard, not a noisy, region), and near 0 where the model confidently
        predicts the neighbours' other labels all around the node: a likely flipped label.
        Uses training labels and training losses only.
        """
        p = np.where(np.isfinite(self.last_loss_), np.exp(-np.nan_to_num(self.last_loss_)),
                     0.0)
        support = self.adj_same_ @ p
        against = self.adj_diff_ @ p
        out: np.ndarray = (support + smoothing) / (support + against + smoothing)
        return out

    # ------------------------------------------------------------------ walking
    def _draw(self, k: int) -> np.ndarray:
        """``k`` value draws; with ``stratify: label`` each class gets its share of them."""
        if self.strata_ is None or k == 0:
            return self._draw_any(k)
        return self._draw_stratified(k)

    def _draw_any(self, k: int) -> np.ndarray:
        if self.engine == "stream":
            return self._draw_stream(k)
        out = np.searchsorted(self.cum_, self.rng_.random(k) * self.cum_[-1], side="right")
        return np.minimum(out, self.n_ - 1)

    def _draw_stratified(self, k: int) -> np.ndarray:
        """Class quotas from the (group-weighted) class shares of the training nodes, filled
        from draws of the whole distribution: the draws of a class kept in order follow the
        value distribution within that class exactly, so value picks *which* members of a
        class, never how many of each class."""
        rng, strata, share = self.rng_, self.strata_, self.strata_share_
        assert strata is not None
        quota = np.floor(k * share).astype(np.int64)
        rest = k - int(quota.sum())
        if rest:
            frac = k * share - quota
            quota[rng.choice(share.size, rest, replace=False, p=frac / frac.sum())] += 1
        out: list[np.ndarray] = []
        for _ in range(16):
            m = 2 * int(quota.sum()) + 16
            x = self._draw_any(m)
            c = strata[x]
            order = np.argsort(c, kind="stable")
            first = np.searchsorted(c[order], c[order], side="left")
            rank = np.empty(m, np.int64)
            rank[order] = np.arange(m) - first
            keep = rank < quota[c]
            out.append(x[keep])
            quota -= np.bincount(c[keep], minlength=share.size)
            if not quota.any():
                break
        for cls in np.flatnonzero(quota):  # a class the values almost never reach: uniform
            members = np.flatnonzero(strata == cls)
            out.append(members[rng.integers(0, members.size, quota[cls])])
        return rng.permutation(np.concatenate(out))

    def _warp(self, k: int, blocked: np.ndarray) -> np.ndarray:
        out = self._draw(k)
        for _ in range(3):
            bad = blocked[out]
            if not bad.any():
                break
            out[bad] = self._draw(int(bad.sum()))
        return out

    def _walk(self, blocked: np.ndarray) -> np.ndarray:
        """One step of every walker; returns the new positions (subgraph ids)."""
        pos, rng = self.pos_, self.rng_
        if self.warp >= 1.0 and pos.size:  # every walker warps (uniforms are < 1): same draws
            rng.random(pos.size)
            nxt = self.pos_ = self._warp(pos.size, blocked)
            return nxt
        nxt = np.empty(pos.size, np.int64)
        jump = rng.random(pos.size) < self.warp
        local = np.flatnonzero(~jump)
        if local.size:
            at = pos[local]
            nb = self.nbr_[at]
            valid = nb >= 0
            valid[valid] &= ~blocked[nb[valid]]
            gumbel = -np.log(-np.log(rng.random(nb.shape) + 1e-300) + 1e-300)
            score = np.where(valid, self._logits_of(np.maximum(nb, 0)) + self.logw_[at] + gumbel,
                             -np.inf)
            nxt[local] = nb[np.arange(local.size), score.argmax(axis=1)]
            jump[local[~valid.any(axis=1)]] = True  # dead end or all neighbours blocked
        if jump.any():
            nxt[jump] = self._warp(int(jump.sum()), blocked)
        self.pos_ = nxt
        return nxt

    def _uniform(self, k: int) -> np.ndarray:
        """``k`` draws of the exploration floor: uniform over the training nodes, or with
        near-duplicate groups a uniform group, then a uniform member of it."""
        if not self.grouped_:
            return self.rng_.integers(0, self.n_, k)
        g = self.rng_.integers(0, self.starts_.size - 1, k)
        size = self.starts_[g + 1] - self.starts_[g]
        return self.members_[self.starts_[g] + (self.rng_.random(k) * size).astype(np.int64)]

    def _floor(self) -> np.ndarray | float:
        """Probability of each node under :meth:`_uniform`."""
        if not self.grouped_:
            return 1.0 / self.n_
        out: np.ndarray = 1.0 / ((self.starts_.size - 1) * self.mult_)
        return out

    def _new_pass(self) -> np.ndarray:
        """A shuffled pass: every training node, or with near-duplicate groups one random
        member of each group (so a group of ``m`` copies is swept as often as a unique node)."""
        if not self.grouped_:
            return self.rng_.permutation(self.n_)
        key = self.rng_.random(self.n_)
        order = np.lexsort((key, self.group_))
        first = np.ones(order.size, bool)
        first[1:] = self.group_[order[1:]] != self.group_[order[:-1]]
        return self.rng_.permutation(order[first])

    def _sweep(self, k: int) -> np.ndarray:
        """The next ``k`` distinct nodes of a shuffled pass (a new shuffle at its end)."""
        out = self.perm_[self.cursor_:self.cursor_ + k]
        self.cursor_ += out.size
        if out.size < k:
            self.perm_ = self._new_pass()
            rest = self.perm_[~np.isin(self.perm_, out)][:k - out.size]
            self.cursor_ = 0
            # the new pass starts with the nodes not just taken; those taken come back later
            self.perm_ = np.concatenate([rest, self.perm_[~np.isin(self.perm_, rest)]])
            self.cursor_ = rest.size
            out = np.concatenate([out, rest])
        return out

    def next_batch(self) -> Selection:
        ids = self._select(self._delay())
        self.last_pick_[ids] = self.step_
        return Selection(self.train_ids_[ids])

    def _select(self, delay: int) -> np.ndarray:
        """Subgraph ids of the next batch (``last_pick_`` is stamped by the caller)."""
        need = min(self.batch_size_, self.n_)
        if delay > 0:
            blocked = (self.step_ - self.last_pick_) <= delay
            if blocked.sum() > self.n_ - need:  # never block so much that a batch cannot fill
                blocked[:] = False
        else:  # only this batch's picks are blocked: a reused mask, reset below (O(batch))
            mark: np.ndarray | None = getattr(self, "mark_", None)
            if mark is None or mark.size != self.n_:
                mark = self.mark_ = np.zeros(self.n_, bool)
            blocked = mark
        chosen: list[np.ndarray] = []
        have = 0
        k_sweep = min(round(self.sweep * need), need)
        if k_sweep:
            taken = self._sweep(k_sweep)
            if delay > 0:  # else nothing is blocked yet (the mask is reset after every batch)
                taken = taken[~blocked[taken]]
            chosen.append(taken)
            blocked[taken] = True
            have += taken.size
        for attempt in range(64):
            # all walkers step once per batch; missing places are filled by extra warps
            nxt = self._walk(blocked) if attempt == 0 else self._warp(2 * (need - have), blocked)
            nxt = nxt[~blocked[nxt]]
            if nxt.size > 1:
                srt = np.sort(nxt)
                if (srt[1:] == srt[:-1]).any():  # repeats: keep first occurrences, in order
                    nxt = nxt[np.sort(np.unique(nxt, return_index=True)[1])]
            chosen.append(nxt)
            blocked[nxt] = True
            have += nxt.size
            if have >= need:
                break
        picked = np.concatenate(chosen) if len(chosen) > 1 else chosen[0]
        ids = picked[:need]
        topped = ids.size < need
        if topped:  # pathological graphs: top up uniformly among unblocked nodes
            free = np.flatnonzero(~blocked)
            ids = np.concatenate([ids, self.rng_.choice(free, need - ids.size, replace=False)])
        if delay <= 0:
            blocked[picked] = False
            if topped:
                blocked[ids] = False
        return ids

    # ------------------------------------------------------------------ feedback
    def feedback(self, ids: np.ndarray, losses: np.ndarray) -> None:
        given = losses
        losses = np.asarray(given, np.float64)
        finite = np.isfinite(losses)
        if not finite.all():  # a diverged step (the trainer stops on it): no observation
            ids, losses = np.asarray(ids)[finite], losses[finite]
        s = self.pos_of_[ids]
        if losses is given:  # kept for the gain moments: a private copy
            losses = losses.copy()
        self._gains.append((self.last_loss_[s], losses))  # folded into moments_ lazily
        if self.signal == "gain":
            prev = self.last_loss_[s]
            seen = np.isfinite(prev)
            sig, s_obs = (prev - losses)[seen], s[seen]
        elif self.signal == "reducible":
            sig, s_obs = losses - self.irreducible_weight * self.irr_[s], s
        elif self.signal == "gated":
            # loss where the label agrees with the graph neighbourhood (upper half), else the
            # bounded uncertainty p(1 - p): a confidently contradicted label there is likely wrong
            p = np.exp(-losses)
            sig, s_obs = np.where(self.agrees_[s], losses, p * (1.0 - p)), s
        elif self.signal == "learnable":
            # the loss while the model gives the label more than chance (1 / classes), else
            # the bounded p (1 - p): a label the model contradicts is not worth chasing
            p = np.exp(-losses)
            sig, s_obs = np.where(p > 1.0 / self.classes_, losses, p * (1.0 - p)), s
        elif self.signal == "uncertainty":
            p = np.exp(-losses)  # probability the model gives the node's label
            a = self.peak / (1.0 - self.peak)
            sig, s_obs = (p if a == 1.0 else p ** a) * (1.0 - p), s  # p ** 1 == p exactly
        elif self.signal == "variance":
            # Active Bias: spread of the label probability over the node's visits
            p = np.exp(-losses)
            self.p_sum_[s] += p
            self.p_sq_[s] += p * p
            k = self.visits_[s] + 1.0
            mean = self.p_sum_[s] / k
            var = np.maximum(self.p_sq_[s] / k - mean * mean, 0.0)
            sig, s_obs = np.sqrt(var + mean * (1.0 - mean) / (k + 1.0)), s
        else:
            sig, s_obs = losses, s
        if sig.size:
            mean = float(np.add.reduce(sig)) / sig.size  # sig.mean(), without its wrapper
            self.mu_ = mean if math.isnan(self.mu_) else 0.9 * self.mu_ + 0.1 * mean
            self.obs_[s_obs] = sig - self.mu_
            self.t_obs_[s_obs] = self.step_
            if self.engine == "stream":
                self.pending_.append(s_obs)
        self.last_loss_[s] = losses
        self.visits_[s] += 1
        self.step_ += 1
        if self.step_ % self.refresh == 0 or len(self._gains) >= 64:
            self._fold_gains()
        if self.step_ % self.refresh == 0:
            self._refresh()

    @property
    def moments_(self) -> np.ndarray:
        """EMA over batches of 1, x, y, x^2, y^2, xy (x: a revisited node's loss at its previous
        visit, y: the loss drop since). ``feedback`` logs each batch's losses and the batches
        are folded in, in order, at the next refresh or read: the same numbers, computed
        outside the training step that follows each batch."""
        self._fold_gains()
        return self._moments

    @moments_.setter
    def moments_(self, value: np.ndarray) -> None:
        self._moments = value
        self._gains: list[tuple[np.ndarray, np.ndarray]] = []

    def _fold_gains(self) -> None:
        gains = self._gains
        if not gains:
            return
        moments = self._moments
        add = np.add.reduce
        for prev_all, losses in gains:
            seen_all = np.isfinite(prev_all)
            n_seen = int(np.count_nonzero(seen_all))
            if n_seen:
                if n_seen == prev_all.size:
                    x, y = prev_all, prev_all - losses
                else:
                    x = prev_all[seen_all]
                    y = x - losses[seen_all]
                batch = np.array([x.size, add(x), add(y), x @ x, y @ y, x @ y]) / x.size
                moments = 0.95 * moments + 0.05 * batch
        self._moments = moments
        gains.clear()

    # ------------------------------------------------------------------ inspection / state
    def gain_correlation(self) -> float:
        """Running correlation between a node's loss at its previous visit and the loss drop
        realised since (NaN before any revisit): positive when high loss means learnable."""
        w, mx, my, mxx, myy, mxy = self.moments_
        if w <= 0:
            return math.nan
        mx, my, mxx, myy, mxy = mx / w, my / w, mxx / w, myy / w, mxy / w
        var = (mxx - mx * mx) * (myy - my * my)
        return float((mxy - mx * my) / math.sqrt(var)) if var > 1e-18 else math.nan

    def values(self) -> dict[str, np.ndarray]:
        """Current estimate, uncertainty and visit count per training node (train order)."""
        if self.engine == "stream":
            est, unc = self._node_values(np.arange(self.n_))
            return {"value": est, "uncertainty": unc, "visits": self.visits_.copy()}
        return {"value": self.est_.copy(), "uncertainty": self.unc_.copy(),
                "visits": self.visits_.copy()}

    def extra_state(self) -> dict[str, Any]:
        if self.engine == "stream":
            pending = np.concatenate(self.pending_) if self.pending_ else np.empty(0, np.int64)
            return {**self._common_state(), "V": self.V_.copy(), "base": self.base_,
                    "gstep": self.gstep_, "pending": pending,
                    "sketch": self.sketch_.copy(), "sk_mean": self.sk_mean_,
                    "sk_std": self.sk_std_, "acc": self.acc_, "obs_hi": self.obs_hi_,
                    "z_cap": self.z_cap_, "accept": self.accept_,
                    "table": np.empty(0) if self.table_ is None else self.table_.copy()}
        return {**self._common_state(), "logits": self.logits_.copy(), "cum": self.cum_.copy(),
                "est": self.est_.copy(), "unc": self.unc_.copy()}

    def _common_state(self) -> dict[str, Any]:
        return {"obs": self.obs_.copy(), "t_obs": self.t_obs_.copy(),
                "last_loss": self.last_loss_.copy(), "last_pick": self.last_pick_.copy(),
                "visits": self.visits_.copy(), "pos": self.pos_.copy(), "step": self.step_,
                "mu": self.mu_, "irr": self.irr_.copy(), "moments": self.moments_.copy(),
                "p_sum": self.p_sum_.copy(), "p_sq": self.p_sq_.copy(),
                "perm": self.perm_.copy(), "cursor": self.cursor_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for key in ("obs", "t_obs", "last_loss", "last_pick", "visits", "pos", "irr", "moments",
                    "p_sum", "p_sq"):
            setattr(self, f"{key}_", np.asarray(state[key]))
        if self.engine == "stream":
            self.V_ = np.ascontiguousarray(state["V"], np.float64).copy()
            self.sketch_ = np.asarray(state["sketch"])
            self._rank_table()
            self.z_cap_ = float(state["z_cap"])
            self.accept_ = float(state["accept"])
            table = np.asarray(state["table"], np.float64)
            self.table_ = table if table.size else None
            self.base_ = int(state["base"])
            self.gstep_ = int(state["gstep"])
            self.pending_ = [np.asarray(state["pending"], np.int64)]
            self.sk_mean_, self.sk_std_ = float(state["sk_mean"]), float(state["sk_std"])
            self.acc_, self.obs_hi_ = float(state["acc"]), float(state["obs_hi"])
        else:
            for key in ("logits", "cum", "est", "unc"):
                setattr(self, f"{key}_", np.asarray(state[key]))
        self.perm_ = np.asarray(state["perm"])
        self.cursor_ = int(state["cursor"])
        self.step_ = int(state["step"])
        self.mu_ = float(state["mu"])
