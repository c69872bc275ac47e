"""The IValue traversal: batch assembly (sweep, walks, warps, per-refresh plans), feedback
(queued, then observed in one pass per refresh) and state. The design is described in the
package docstring (:mod:`hypergraph.traversals.ivalue`)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from hypergraph.registry import register
from hypergraph.traversals._base import Selection, Traversal
from hypergraph.traversals._irreducible import (
    graph_irreducible_losses,
    holdout_irreducible_losses,
    train_features,
)
from hypergraph.traversals.ivalue._draws import (
    Strata,
    fill,
    make_strata,
    quotas,
    shuffled_pass,
    stable_order,
    take_from_pass,
)
from hypergraph.traversals.ivalue._engines import ENGINES, NEVER, ValueEngine
from hypergraph.traversals.ivalue._graph import (
    label_agreement,
    near_duplicate_groups,
    pad_neighbours,
    row_normalised,
    split_by_label,
)
from hypergraph.traversals.ivalue._signals import (
    SIGNALS,
    GainMoments,
    centre,
    judged_noisy,
    last_visits,
)
from hypergraph.traversals.ivalue._space import SPACE

__all__ = ["IValueTraversal"]

_QUEUE = 64  # most batches of feedback held before they are folded in
_NEVER_STEP = 2**62  # ``_anneal_at`` without an annealed tail


@register("traversal", "ivalue")
class IValueTraversal(Traversal):
    """Walkers steered by per-node information value measured from training losses.

    See the package docstring for the design. ``signal`` picks the value measured at each visit:
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
    (:func:`near_duplicate_groups`). ``noisy: skip`` leaves the nodes judged to carry a wrong
    label (:meth:`judged_noisy`) out of the sweep and the value draws (the exploration floor
    still reaches them); ``signal: decided`` chases the loss of every node not judged noisy.
    ``anneal`` turns the last share of the training budget (``context.max_steps``, else the
    planned epochs) into epoch order over the groups: every batch from the shuffled pass.
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:walk",
                                                "traversal:selection"})
    requires: ClassVar[frozenset[str]] = frozenset({"graph:pairwise", "per_sample_loss"})
    space = SPACE

    def __init__(self, signal: str = "learnable", irreducible: str = "graph",
                 irreducible_weight: float = 1.0, walkers: int = 32, transform: str = "rank",
                 pressure: float = 100.0, temperature: float = 0.5, warp: float = 1.0,
                 explore: float = 0.1,
                 return_delay: float = 0.0, refresh: int = 32, hops: int = 0,
                 alpha: float = 0.5, trust: float = 0.0, peak: float = 0.5,
                 sweep: float = 0.5, contra: float = 0.0,
                 self_weight: float = 1.0, staleness: float = 2.0,
                 bonus: float = 0.5, engine: str = "stream", dedup: float = 0.995,
                 stratify: str = "label", noisy: str = "keep", anneal: float = 0.0) -> None:
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
        self.noisy = noisy
        self.anneal = anneal

    # ------------------------------------------------------------------ life cycle
    def before_graph_change(self) -> None:
        self._flush()  # feedback still queued belongs to the previous graph's positions

    def build(self) -> None:
        sub = self.graph_.subgraph(self.train_ids_)
        n = sub.num_nodes
        self.n_ = n
        self.mark_ = np.zeros(n, bool)  # this batch's picks (see _select); all False between
        self.adj_ = row_normalised(sub)
        self.nbr_, self.logw_ = pad_neighbours(sub.indptr, sub.indices, sub.weights)
        self.group_, self.mult_ = near_duplicate_groups(sub.indptr, sub.indices, sub.weights,
                                                        self.dedup)
        grouped = bool(self.mult_.max(initial=1) > 1)
        self.groups_ = self.group_ if grouped else None  # group ids, None without groups
        self.log_mult_ = np.log(self.mult_) if grouped else None
        labels = np.asarray(sub.label)
        self.classes_ = int(labels.max(initial=1)) + 1 if labels.dtype.kind in "iub" else 2
        self.strata_: np.ndarray | None = None
        if self.stratify == "label" and labels.dtype.kind in "iub" and n:
            self.strata_ = np.unique(labels, return_inverse=True)[1].astype(np.int64)
        self.all_ = make_strata(np.zeros(n, np.int64), self.mult_, self.groups_)
        self.by_class_ = (self.all_ if self.strata_ is None
                          else make_strata(self.strata_, self.mult_, self.groups_))
        self.strata_share_ = self.by_class_.share
        # batches up to the next refresh depend on nothing feedback changes: planned together
        self.window_ = self.warp >= 1.0 and self.return_delay <= 0 and self.contra <= 0
        self.plan_ = np.empty((0, 0), np.int64)
        self.plan_at_ = 0
        self.plan_ids_: np.ndarray | None = None  # train_ids_[plan_], gathered when first used
        self.adj_same_, self.adj_diff_ = split_by_label(self.adj_, labels)
        self.overhead_: dict[str, Any] = {"forward_samples": 0.0, "params": 0, "what": ""}
        self.irr_ = np.zeros(n)
        # log-probability of each node's label under its neighbours' labels (free, from the graph)
        # per-node noisy-vs-hard judgement: mean loss over visits and the graph's labels
        self.track_noise_ = self.noisy != "keep" or SIGNALS[self.signal].noise
        need_agree = self.trust > 0 or SIGNALS[self.signal].agreement or self.track_noise_
        self.log_agree_ = -graph_irreducible_losses(sub) if need_agree else np.zeros(n)
        self.agrees_ = self.log_agree_ >= np.median(self.log_agree_)
        if SIGNALS[self.signal].irreducible:
            if self.irreducible == "graph":
                self.irr_ = graph_irreducible_losses(sub)
            else:
                feats = train_features(self.graph_, self.train_ids_, self.display_name())
                self.irr_, self.overhead_ = holdout_irreducible_losses(
                    feats, self.graph_.label[self.train_ids_],
                    max(1, int(np.max(self.graph_.label, initial=0)) + 1), self.rng_)
        self.engine_: ValueEngine = ENGINES[self.engine](self)

    def init_state(self) -> None:
        n = self.n_
        self.fbq_: list[tuple[np.ndarray, np.ndarray, int]] = []  # feedback not folded in yet
        self.batch_of_: dict[tuple[int, int], np.ndarray] = {}  # batch index per queued visit
        self.obs_ = np.zeros(n)
        self.t_obs_ = np.full(n, NEVER, np.int64)
        self.last_loss_ = np.full(n, np.nan)
        self.last_pick_ = np.full(n, NEVER, np.int64)
        self.visits_ = np.zeros(n, np.int64)
        self.walker_pos_ = self.rng_.integers(0, n, size=self.walkers)
        self.step_ = 0
        self.mu_ = math.nan
        self.p_sum_ = np.zeros(n)
        self.p_sq_ = np.zeros(n)
        self.loss_sum_ = np.zeros(n)  # sum of the losses over visits (judged_noisy)
        self.perm_ = shuffled_pass(self.rng_, self.n_, self.groups_)
        self.cursor_ = 0
        self.gains_ = GainMoments(np.zeros(6), _QUEUE)

    def reset(self) -> None:
        self.all_.table = self.by_class_.table = None
        self.engine_.reset()

    def _delay(self) -> int:
        return round(self.return_delay * self.steps_per_epoch())

    def _refresh(self) -> None:
        """Fold the observations into the values (the engine's refresh); value-draw tables are
        rebuilt when next needed."""
        self.all_.table = self.by_class_.table = None
        self.engine_.refresh()

    def agreement(self, x: np.ndarray | None = None) -> np.ndarray:
        """:meth:`model_agreement` of every node, or of nodes ``x`` only (O(their degree)), as of
        the feedback folded in so far."""
        return label_agreement(self.adj_same_, self.adj_diff_, self.last_loss_, x)

    def judged_noisy(self, x: np.ndarray | None = None) -> np.ndarray:
        """Whether each node (or nodes ``x``) is judged to carry a wrong label rather than to
        be hard (:func:`~hypergraph.traversals.ivalue._signals.judged_noisy`: mean loss over
        its visits and its graph neighbours' labels both below chance), as of the feedback
        folded in so far. All False unless ``noisy`` or ``signal`` uses the judgement."""
        if not self.track_noise_:
            return np.zeros(self.n_ if x is None else np.size(x), bool)
        if x is None:
            return judged_noisy(self.loss_sum_, self.visits_, self.log_agree_, self.classes_)
        return judged_noisy(self.loss_sum_[x], self.visits_[x], self.log_agree_[x],
                            self.classes_)

    def model_agreement(self) -> np.ndarray:
        """How much the trained model's confident neighbours support each node's label: near 1
        where confident neighbours share the label or where the model is confident nowhere
        nearby (a hard, not a noisy, region), near 0 where the model confidently predicts the
        neighbours' other labels all around the node (a likely flipped label); see
        :func:`~hypergraph.traversals.ivalue._graph.label_agreement`. Uses training labels and
        training losses only."""
        self._flush()
        return self.agreement()

    # ------------------------------------------------------------------ walking
    def _draw(self, k: int) -> np.ndarray:
        """``k`` value draws; with ``stratify: label`` every class gets its share of them
        (:func:`quotas`) and value picks which members of a class, never the class mix."""
        st = self.by_class_
        out = self._fill(st, quotas(self.rng_, st, np.array([k])))
        return self.rng_.permutation(out) if st.share.size > 1 else out

    def _fill(self, st: Strata, cls: np.ndarray) -> np.ndarray:
        """One draw per slot, slot ``j`` from stratum ``cls[j]`` (:func:`fill`)."""
        return fill(self.rng_, st, cls, self.explore, self.engine_)

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
        pos, rng = self.walker_pos_, self.rng_
        if self.warp >= 1.0 and pos.size:  # every walker warps (uniforms are < 1): same draws
            rng.random(pos.size)
            nxt = self.walker_pos_ = self._warp(pos.size, blocked)
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
            lg = self.engine_.logits(np.maximum(nb, 0).ravel()).reshape(nb.shape)
            score = np.where(valid, lg + self.logw_[at] + gumbel, -np.inf)
            nxt[local] = nb[np.arange(local.size), score.argmax(axis=1)]
            jump[local[~valid.any(axis=1)]] = True  # dead end or all neighbours blocked
        if jump.any():
            nxt[jump] = self._warp(int(jump.sum()), blocked)
        self.walker_pos_ = nxt
        return nxt

    def _anneal_at(self) -> int:
        """The step from which every batch comes from the shuffled pass (``anneal``)."""
        if self.anneal <= 0:
            return _NEVER_STEP
        budget = self.context_.max_steps or self.context_.epochs * self.steps_per_epoch()
        return math.ceil((1.0 - self.anneal) * budget)

    def _sweep_share(self) -> float:
        """This step's share of the batch taken from the shuffled pass."""
        return 1.0 if self.step_ >= self._anneal_at() else self.sweep

    def _sweep(self, k: int) -> np.ndarray:
        """The next ``k`` distinct nodes of a shuffled pass (a new shuffle at its end)."""
        out, self.perm_, self.cursor_ = take_from_pass(self.rng_, self.perm_, self.cursor_, k,
                                                       self.n_, self.groups_)
        return out

    def next_batch(self) -> Selection:
        if self.window_:
            if self.plan_at_ >= self.plan_.shape[0]:
                self._plan()
            if self.plan_ids_ is None:  # the window's graph ids, gathered once
                self.plan_ids_ = self.train_ids_[self.plan_]
            at = self.plan_at_
            self.plan_at_ += 1
            self.last_pick_[self.plan_[at]] = self.step_
            return Selection(self.plan_ids_[at])
        ids = self._select(self._delay())
        self.last_pick_[ids] = self.step_
        return Selection(self.train_ids_[ids])

    def _plan(self) -> None:
        """Select every batch up to the next refresh in one vectorised pass (``window_``: no
        node held back by ``return_delay``, no local walks, ``contra`` 0, so nothing a batch
        depends on changes before the refresh). Each batch is what :meth:`_select` would pick:
        its share ``sweep`` from the shuffled pass, the rest value draws with class quotas,
        never a node twice (a clash is redrawn from the same stratum)."""
        r = max(1, min(self.refresh - self.step_ % self.refresh, _QUEUE))
        switch = self._anneal_at()
        if self.step_ < switch:  # a window never straddles the start of the annealed tail
            r = min(r, switch - self.step_)
        need = min(self.batch_size_, self.n_)
        k_sweep = min(round(self._sweep_share() * need), need)
        n = self.n_
        if k_sweep and self.cursor_ + r * k_sweep <= self.perm_.size:
            # the window's sweep places, as r calls of _sweep would take them (no new pass)
            block = self.perm_[self.cursor_:self.cursor_ + r * k_sweep].reshape(r, k_sweep)
            self.cursor_ += r * k_sweep
            sweeps = list(block)
        else:
            empty = np.empty(0, np.int64)
            sweeps = [self._sweep(k_sweep) for _ in range(r)] if k_sweep else [empty] * r
            block = None
        if self.noisy == "skip":  # judged-noisy sweep places go to value draws instead
            keep = [~self.judged_noisy(x) for x in sweeps]
            if not all(k.all() for k in keep):
                sweeps = [x[k] for x, k in zip(sweeps, keep, strict=True)]
                block = None
        taken = np.array([x.size for x in sweeps])
        v = need - taken
        st = self.by_class_
        cls = quotas(self.rng_, st, v)
        picks = self._fill(st, cls)
        batch = np.repeat(np.arange(r), v)
        fixed = np.repeat(np.arange(r) * n, taken)
        fixed += block.ravel() if block is not None else np.concatenate(sweeps)
        keys = np.concatenate([fixed, batch * n + picks])
        for attempt in range(17):
            order, srt = stable_order(keys, r * n)
            clash = order[1:][srt[1:] == srt[:-1]] - fixed.size  # later copies: always picks
            if not clash.size:
                break
            if attempt < 16:
                picks[clash] = self._fill(st, cls[clash])
                keys[fixed.size + clash] = batch[clash] * n + picks[clash]
                continue
            for j in clash:  # strata smaller than their quota: a uniform node not in the batch
                b = batch[j]
                used = np.concatenate([sweeps[b], picks[batch == b]])
                picks[j] = self.rng_.choice(np.setdiff1d(np.arange(self.n_), used))
        if (v == v[0]).all():
            plan = np.empty((r, need), np.int64)
            plan[:, :need - v[0]] = block if block is not None else np.reshape(
                np.concatenate(sweeps), (r, need - v[0]))
            plan[:, need - v[0]:] = picks.reshape(r, v[0])
        else:
            plan = np.stack([np.concatenate([sweeps[b], picks[batch == b]]) for b in range(r)])
        self.plan_, self.plan_at_, self.plan_ids_ = plan, 0, None

    def _select(self, delay: int) -> np.ndarray:
        """Subgraph ids of the next batch (``last_pick_`` is stamped by the caller)."""
        need = min(self.batch_size_, self.n_)
        if delay > 0:
            blocked = (self.step_ - self.last_pick_) <= delay
            if blocked.sum() > self.n_ - need:  # never block so much that a batch cannot fill
                blocked[:] = False
        else:  # only this batch's picks are blocked: a reused mask, reset below (O(batch))
            blocked = self.mark_
        chosen: list[np.ndarray] = []
        have = 0
        k_sweep = min(round(self._sweep_share() * need), need)
        if k_sweep:
            taken = self._sweep(k_sweep)
            if delay > 0:  # else nothing is blocked yet (the mask is reset after every batch)
                taken = taken[~blocked[taken]]
            if self.noisy == "skip":
                taken = taken[~self.judged_noisy(taken)]
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
        """Queue the batch's losses; the queue is folded in (:meth:`_flush`) at the next
        refresh, read of the state, or right away when batches are selected one at a time."""
        self.fbq_.append((np.array(ids, np.int64), np.array(losses, np.float64), self.step_))
        self.step_ += 1
        due = self.step_ % self.refresh == 0
        if due or not self.window_ or len(self.fbq_) >= _QUEUE:
            self._flush()
        if due:
            self._refresh()

    def _flush(self) -> None:
        """Fold the queued feedback into the per-node state, in batch order (the same state
        whichever way the queue is split)."""
        queue = self.fbq_
        if not queue:
            return
        self.fbq_ = []
        if SIGNALS[self.signal].per_batch:
            for item in queue:
                self._ingest([item])
        else:
            self._ingest(queue)

    def _ingest(self, queue: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        """Observe queued batches ``(ids, losses, step)`` in one pass: per-node loss, visit
        count, signal (centred on a running mean updated once per batch, in order), and the
        nodes whose observation changed (folded into the values at the next refresh)."""
        r = len(queue)
        ids = np.concatenate([q[0] for q in queue]) if r > 1 else queue[0][0]
        losses = np.concatenate([q[1] for q in queue]) if r > 1 else queue[0][1]
        size = queue[0][0].size
        even = all(q[0].size == size for q in queue)
        if even:  # the usual case: every batch of one size (each batch's index, cached)
            batch = self.batch_of_.get((r, size))
            if batch is None:
                batch = self.batch_of_[(r, size)] = np.repeat(np.arange(r), size)
        else:
            batch = np.repeat(np.arange(r), [q[0].size for q in queue])
        steps = np.array([q[2] for q in queue], np.int64)
        if not math.isfinite(losses.sum()):
            finite = np.isfinite(losses)
            if not finite.all():  # a diverged step (the trainer stops on it): no observation
                ids, losses, batch = ids[finite], losses[finite], batch[finite]
                even = False
        s = self.position_[ids]
        order, srt = stable_order(s, self.n_ + 1)  # visits by node, in queue order per node
        later = np.zeros(s.size, bool)  # repeats the node of the sorted visit before it
        np.equal(srt[1:], srt[:-1], out=later[1:])
        last = np.ones(s.size, bool)  # the node's last visit
        np.logical_not(later[1:], out=last[:-1])
        prev = self.last_loss_[s]  # the loss at the node's previous visit (the queue's included)
        rep = np.flatnonzero(later)
        if rep.size:
            prev[order[rep]] = losses[order[rep - 1]]
        self.gains_.add(prev, losses, batch, r)  # folded into moments_ lazily
        sig, kept = SIGNALS[self.signal].observe(self, losses, prev, s)
        u = srt[last]  # the nodes visited, once each (sorted)
        at_last = order[last]  # each node's last visit in the queue
        if sig.size:
            if kept is None:
                val, self.mu_ = centre(sig, batch, r, self.mu_, [size] * r if even else None)
                at, u_obs, b_obs = at_last, u, batch
            else:
                s_obs, b_obs = s[kept], batch[kept]
                val, self.mu_ = centre(sig, b_obs, r, self.mu_)
                o_order, _, o_last = last_visits(s_obs, self.n_ + 1)
                at = o_order[o_last]
                u_obs = s_obs[at]
            self.obs_[u_obs] = val[at]
            self.t_obs_[u_obs] = steps[b_obs[at]]
            self.engine_.observed(u_obs)
        self.last_loss_[u] = losses[at_last]
        np.add.at(self.visits_, s, 1)  # visits per node (repeats in the queue included)
        if self.track_noise_:
            np.add.at(self.loss_sum_, s, losses)

    @property
    def moments_(self) -> np.ndarray:
        """:class:`GainMoments` of the feedback so far (folded in when read)."""
        self._flush()
        return self.gains_.value()

    # ------------------------------------------------------------------ inspection / state
    def gain_correlation(self) -> float:
        """Running correlation between a node's loss at its previous visit and the loss drop
        realised since (NaN before any revisit): positive when high loss means learnable."""
        self._flush()
        return self.gains_.correlation()

    def values(self) -> dict[str, np.ndarray]:
        """Current estimate, uncertainty and visit count per training node (train order);
        values as of the last refresh, visits up to the last feedback."""
        self._flush()
        est, unc = self.engine_.values(np.arange(self.n_))
        return {"value": est, "uncertainty": unc, "visits": self.visits_.copy()}

    def extra_state(self) -> dict[str, Any]:
        self._flush()
        common = {"obs": self.obs_.copy(), "t_obs": self.t_obs_.copy(),
                  "last_loss": self.last_loss_.copy(), "last_pick": self.last_pick_.copy(),
                  "visits": self.visits_.copy(), "pos": self.walker_pos_.copy(), "step": self.step_,
                  "mu": self.mu_, "irr": self.irr_.copy(), "moments": self.moments_.copy(),
                  "p_sum": self.p_sum_.copy(), "p_sq": self.p_sq_.copy(),
                  "perm": self.perm_.copy(), "cursor": self.cursor_,
                  "plan": self.plan_[self.plan_at_:].copy(), "acc_all": self.all_.acc.copy(),
                  "acc_class": self.by_class_.acc.copy()}
        if self.track_noise_:  # only then: checkpoints of other settings keep their keys
            common["loss_sum"] = self.loss_sum_.copy()
        return {**common, **self.engine_.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.fbq_ = []
        for key in ("obs", "t_obs", "last_loss", "last_pick", "visits", "irr", "p_sum", "p_sq"):
            setattr(self, f"{key}_", np.array(state[key]))
        self.loss_sum_ = np.array(state.get("loss_sum", np.zeros(self.n_)))
        self.gains_ = GainMoments(np.array(state["moments"]), _QUEUE)
        self.walker_pos_ = np.array(state["pos"])
        plan = np.array(state["plan"], np.int64)
        self.plan_ = plan if plan.ndim == 2 else np.empty((0, 0), np.int64)
        self.plan_at_ = 0
        self.plan_ids_ = None
        self.all_.acc = np.array(state["acc_all"], np.float64)
        self.by_class_.acc = (self.all_.acc if self.by_class_ is self.all_
                              else np.array(state["acc_class"], np.float64))
        self.all_.table = self.by_class_.table = None
        self.engine_.load_state(state)
        self.perm_ = np.asarray(state["perm"])
        self.cursor_ = int(state["cursor"])
        self.step_ = int(state["step"])
        self.mu_ = float(state["mu"])
