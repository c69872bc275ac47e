"""IValueTraversal: walkers steered by measured, propagated information value.

The design answers the two failures of an earlier greedy walk (batches far less diverse than
i.i.d. ones; predicted values uncorrelated with the gain actually realised):

* **Values are measured, not predicted.** Every training step already computes each sample's
  loss; the trainer hands those losses back (``feedback``) and the traversal turns them into a
  per-node signal: the label-probability uncertainty ``p(1 - p)`` (default), the loss, the
  loss change since the node's last visit (``gain``), its spread over visits, or the reducible
  loss (loss minus an irreducible loss: from the node's neighbours' labels, or from a small
  model trained on held-out rows).
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
  and a batch never holds a node twice.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from hypergraph.registry import register
from hypergraph.spaces import Categorical, Float, Int
from hypergraph.traversals._base import Selection, Traversal
from hypergraph.traversals._baselines import (
    _train_features,
    graph_irreducible_losses,
    holdout_irreducible_losses,
)

__all__ = ["IValueTraversal", "propagate_values"]

_NEVER = -(10**12)


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
    ``learnable`` is the loss while the model gives the label more than chance, else
    ``p (1 - p)``. Observations are centred on a running mean of the signal, so values stay
    comparable as the loss falls over training. ``sweep`` sets the share of each batch taken
    from a shuffled pass without replacement; ``contra`` adds a label-noise penalty from the
    model's confidence on graph neighbours (:meth:`model_agreement`).
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:walk",
                                                "traversal:selection"})
    requires: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "per_sample_loss"})
    space = {
        "signal": Categorical(default="uncertainty",
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
    }

    def __init__(self, signal: str = "uncertainty", irreducible: str = "graph",
                 irreducible_weight: float = 1.0, walkers: int = 32, transform: str = "rank",
                 pressure: float = 100.0, temperature: float = 0.5, warp: float = 1.0,
                 explore: float = 0.1,
                 return_delay: float = 0.0, refresh: int = 8, hops: int = 1,
                 alpha: float = 0.5, trust: float = 0.0, peak: float = 0.5,
                 sweep: float = 0.5, contra: float = 0.0,
                 self_weight: float = 1.0, staleness: float = 2.0,
                 bonus: float = 0.5) -> None:
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
        labels = np.asarray(sub.label)
        self.classes_ = int(labels.max(initial=1)) + 1 if labels.dtype.kind in "iub" else 2
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
            self.perm_ = self.rng_.permutation(n)
            self.cursor_ = 0
            self.moments_ = np.zeros(6)  # EMA of 1, x, y, x^2, y^2, xy (x: old loss, y: gain)
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

    def _refresh(self) -> None:
        """Propagate the observations and rebuild the logits and the warp table."""
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
        p = np.exp(self.logits_ - self.logits_.max())
        p = (1.0 - self.explore) * p / p.sum() + self.explore / self.n_
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
    def _warp(self, k: int, blocked: np.ndarray) -> np.ndarray:
        out = np.searchsorted(self.cum_, self.rng_.random(k) * self.cum_[-1], side="right")
        out = np.minimum(out, self.n_ - 1)
        for _ in range(3):
            bad = blocked[out]
            if not bad.any():
                break
            out[bad] = np.minimum(np.searchsorted(
                self.cum_, self.rng_.random(int(bad.sum())) * self.cum_[-1], side="right"),
                self.n_ - 1)
        return out

    def _walk(self, blocked: np.ndarray) -> np.ndarray:
        """One step of every walker; returns the new positions (subgraph ids)."""
        pos, rng = self.pos_, self.rng_
        nxt = np.empty(pos.size, np.int64)
        jump = rng.random(pos.size) < self.warp
        local = np.flatnonzero(~jump)
        if local.size:
            at = pos[local]
            nb = self.nbr_[at]
            valid = nb >= 0
            valid[valid] &= ~blocked[nb[valid]]
            gumbel = -np.log(-np.log(rng.random(nb.shape) + 1e-300) + 1e-300)
            score = np.where(valid, self.logits_[np.maximum(nb, 0)] + self.logw_[at] + gumbel,
                             -np.inf)
            nxt[local] = nb[np.arange(local.size), score.argmax(axis=1)]
            jump[local[~valid.any(axis=1)]] = True  # dead end or all neighbours blocked
        if jump.any():
            nxt[jump] = self._warp(int(jump.sum()), blocked)
        self.pos_ = nxt
        return nxt

    def _sweep(self, k: int) -> np.ndarray:
        """The next ``k`` distinct nodes of a shuffled pass (a new shuffle at its end)."""
        out = self.perm_[self.cursor_:self.cursor_ + k]
        self.cursor_ += out.size
        if out.size < k:
            self.perm_ = self.rng_.permutation(self.n_)
            rest = self.perm_[~np.isin(self.perm_, out)][:k - out.size]
            self.cursor_ = 0
            # the new pass starts with the nodes not just taken; those taken come back later
            self.perm_ = np.concatenate([rest, self.perm_[~np.isin(self.perm_, rest)]])
            self.cursor_ = rest.size
            out = np.concatenate([out, rest])
        return out

    def next_batch(self) -> Selection:
        need = min(self.batch_size_, self.n_)
        delay = self._delay()
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
            taken = taken[~blocked[taken]]
            chosen.append(taken)
            blocked[taken] = True
            have += taken.size
        for attempt in range(64):
            # all walkers step once per batch; missing places are filled by extra warps
            nxt = self._walk(blocked) if attempt == 0 else self._warp(2 * (need - have), blocked)
            nxt = nxt[~blocked[nxt]]
            nxt = nxt[np.sort(np.unique(nxt, return_index=True)[1])]
            chosen.append(nxt)
            blocked[nxt] = True
            have += nxt.size
            if have >= need:
                break
        ids = np.concatenate(chosen)[:need]
        if ids.size < need:  # pathological graphs: top up uniformly among unblocked nodes
            free = np.flatnonzero(~blocked)
            ids = np.concatenate([ids, self.rng_.choice(free, need - ids.size, replace=False)])
        self.last_pick_[ids] = self.step_
        if delay <= 0:
            blocked[np.concatenate(chosen)] = False
            blocked[ids] = False
        return Selection(self.train_ids_[ids])

    # ------------------------------------------------------------------ feedback
    def feedback(self, ids: np.ndarray, losses: np.ndarray) -> None:
        s = self.pos_of_[ids]
        losses = np.asarray(losses, np.float64)
        prev_all = self.last_loss_[s]
        seen_all = np.isfinite(prev_all)
        if seen_all.any():
            x, y = prev_all[seen_all], prev_all[seen_all] - losses[seen_all]
            batch = np.array([x.size, x.sum(), y.sum(), x @ x, y @ y, x @ y]) / x.size
            self.moments_ = 0.95 * self.moments_ + 0.05 * batch
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
            sig, s_obs = p ** a * (1.0 - p), s
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
            mean = float(sig.mean())
            self.mu_ = mean if math.isnan(self.mu_) else 0.9 * self.mu_ + 0.1 * mean
            self.obs_[s_obs] = sig - self.mu_
            self.t_obs_[s_obs] = self.step_
        self.last_loss_[s] = losses
        self.visits_[s] += 1
        self.step_ += 1
        if self.step_ % self.refresh == 0:
            self._refresh()

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
        return {"value": self.est_.copy(), "uncertainty": self.unc_.copy(),
                "visits": self.visits_.copy()}

    def extra_state(self) -> dict[str, Any]:
        return {"obs": self.obs_.copy(), "t_obs": self.t_obs_.copy(),
                "last_loss": self.last_loss_.copy(), "last_pick": self.last_pick_.copy(),
                "visits": self.visits_.copy(), "pos": self.pos_.copy(), "step": self.step_,
                "mu": self.mu_, "irr": self.irr_.copy(), "moments": self.moments_.copy(),
                "p_sum": self.p_sum_.copy(), "p_sq": self.p_sq_.copy(),
                "perm": self.perm_.copy(), "cursor": self.cursor_,
                "logits": self.logits_.copy(),
                "cum": self.cum_.copy(), "est": self.est_.copy(), "unc": self.unc_.copy()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for key in ("obs", "t_obs", "last_loss", "last_pick", "visits", "pos", "irr", "moments",
                    "p_sum", "p_sq",
                    "logits",
                    "cum", "est", "unc"):
            setattr(self, f"{key}_", np.asarray(state[key]))
        self.perm_ = np.asarray(state["perm"])
        self.cursor_ = int(state["cursor"])
        self.step_ = int(state["step"])
        self.mu_ = float(state["mu"])
