"""Data-selection baselines re-implemented from their papers, as traversals.

* :class:`InfoBatchTraversal` - Qin et al., *InfoBatch: Lossless Training Speed Up by Unbiased
  Dynamic Data Pruning*, ICLR 2024.
* :class:`RhoLossTraversal` - Mindermann et al., *Prioritized Training on Points that are
  Learnable, Worth Learning, and Not Yet Learnt*, ICML 2022.
* :class:`LossTopKTraversal` - Loshchilov & Hutter, *Online Batch Selection for Faster Training
  of Neural Networks*, ICLR 2016 workshop.

Compute that a method spends outside the training steps and the trainer's ``score`` calls (the
irreducible-loss model of RHO-LOSS) is reported in :attr:`overhead_` as forward passes of a model
with a stated parameter count, so a benchmark can convert it to forward passes of the main model.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from hypergraph.exceptions import DataError
from hypergraph.registry import register
from hypergraph.spaces import Float, Int
from hypergraph.traversals._base import Selection, Traversal
from hypergraph.traversals._irreducible import (
    graph_irreducible_losses,
    holdout_irreducible_losses,
    train_features,
)

__all__ = [
    "InfoBatchTraversal",
    "LossTopKTraversal",
    "RhoLossTraversal",
    "graph_irreducible_losses",
    "holdout_irreducible_losses",
    "infobatch_plan",
    "nodes_at_ranks",
    "rank_probabilities",
    "rho_select",
]


# ---------------------------------------------------------------------------- pure rules
def infobatch_plan(scores: np.ndarray, prune_ratio: float, rng: np.random.Generator,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """InfoBatch's per-epoch rule on positions ``0..n-1``.

    Samples whose score (last seen loss) is below the mean are "well learned"; each of them is
    pruned with probability ``prune_ratio`` and, if kept, its loss weight becomes
    ``1 / (1 - prune_ratio)`` so the expected gradient is unchanged. Other samples are kept with
    weight 1.

    Returns:
        ``(kept positions, their weights)``.
    """
    well = scores < scores.mean()
    pruned = well & (rng.random(scores.size) < prune_ratio)
    kept = np.flatnonzero(~pruned)
    weights = np.where(well[kept], 1.0 / (1.0 - prune_ratio), 1.0).astype(np.float32)
    return kept, weights


def rho_select(losses: np.ndarray, irreducible: np.ndarray, k: int) -> np.ndarray:
    """RHO-LOSS: positions of the ``k`` largest reducible losses ``loss - irreducible``."""
    reducible = np.asarray(losses, np.float64) - np.asarray(irreducible, np.float64)
    k = min(k, reducible.size)
    top = np.argpartition(-reducible, k - 1)[:k]
    return top[np.argsort(-reducible[top], kind="stable")]


def nodes_at_ranks(key: np.ndarray, tie: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``np.lexsort((tie, key))[ranks]`` without sorting the indices of every node.

    Sorts the keys' values once (several times faster than an index sort on two keys), reads
    the values at ``ranks``, and orders by ``tie`` only the nodes whose key equals one of them.
    The result is identical to the full ``lexsort``, ties included; NaN keys fall back to it.
    """
    if ranks.size == 0:
        return np.empty(0, np.int64)
    srt = np.sort(key)
    if np.isnan(srt[-1]):  # NaN sorts last: the exact path needs comparable keys
        return np.lexsort((tie, key))[ranks]
    distinct, group_of = np.unique(srt[ranks], return_inverse=True)
    first = np.searchsorted(srt, distinct, "left")  # rank of each distinct value's first node
    slot = np.searchsorted(distinct, key)
    members = np.flatnonzero(distinct[np.minimum(slot, distinct.size - 1)] == key)
    group = slot[members]
    by = np.lexsort((tie[members], group))  # by distinct value, then by tie
    start = np.searchsorted(group[by], np.arange(distinct.size))
    return members[by][start[group_of] + ranks - first[group_of]]


def rank_probabilities(n: int, pressure: float) -> np.ndarray:
    """Loshchilov & Hutter's selection probabilities by loss rank (rank 0 = largest loss).

    ``p(rank r) ∝ exp(-ln(pressure) * r / n)``: the top-ranked sample is ``pressure`` times as
    likely to be picked as the last one.
    """
    p = np.exp(-math.log(pressure) * np.arange(n) / max(n, 1))
    return p / p.sum()


# ---------------------------------------------------------------------------- InfoBatch
@register("traversal", "infobatch")
class InfoBatchTraversal(Traversal):
    """InfoBatch: each epoch, prune a random part of the well-learned samples and rescale the rest.

    A sample's score is its loss when last trained on (all scores start equal, so the first
    epoch is full). At the start of each epoch, samples scoring below the mean are pruned with
    probability ``prune_ratio``; the kept ones among them get loss weight
    ``1 / (1 - prune_ratio)`` (passed to the model through :attr:`Selection.weights`). The
    remaining samples are visited once in random order, so an epoch has fewer steps. The last
    ``1 - delta`` share of training uses the full data with weight 1 (annealing): when the
    trainer sets a step limit (``context.max_steps``) the share is counted in steps, and a pass
    still pruning when ``delta x max_steps`` steps are reached is cut short there, so the
    annealing always happens inside the budget whatever the real pruning rate; without a step
    limit it is counted in epochs (from epoch ``delta x epochs`` on), as in the paper.
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:epoch",
                                                "traversal:selection"})
    requires: ClassVar[frozenset[str]] = frozenset({"per_sample_loss", "sample_weights"})
    space = {
        "prune_ratio": Float(low=0.0, high=0.95,
                             help="probability of pruning a below-mean-loss sample"),
        "delta": Float(low=0.0, high=1.0,
                       help="share of epochs that prune; the rest use all data"),
    }

    def __init__(self, prune_ratio: float = 0.5, delta: float = 0.875) -> None:
        self.prune_ratio = prune_ratio
        self.delta = delta

    def init_state(self) -> None:
        self.scores_ = np.ones(self.train_ids_.size, np.float64)
        self.steps_ = 0
        self.pruning_ = False

    def reset(self) -> None:
        self._plan(-1)

    def _anneal_step(self) -> float:
        """The step from which all data is used (inf without a step limit)."""
        limit = self.context_.max_steps
        return self.delta * limit if limit > 0 else math.inf

    def _plan(self, epoch: int) -> None:
        n = self.train_ids_.size
        by_steps = self.context_.max_steps > 0
        prune = (self.steps_ < self._anneal_step() if by_steps
                 else self.delta * self.context_.epochs > epoch)
        self.pruning_ = epoch >= 0 and prune
        if self.pruning_:
            kept, weights = infobatch_plan(self.scores_, self.prune_ratio, self.rng_)
        else:
            kept, weights = np.arange(n), np.ones(n, np.float32)
        order = self.rng_.permutation(kept.size)
        self.order_, self.weights_ = kept[order], weights[order]
        self.cursor_ = 0

    def on_epoch_start(self, epoch: int) -> None:
        self._plan(epoch)

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.order_.size / self.batch_size_))

    def next_batch(self) -> Selection:
        if self.cursor_ >= self.order_.size or (
                self.pruning_ and self.steps_ >= self._anneal_step()):
            self._plan(-1)  # annealing starts mid-pass: a full pass from here on
        sl = slice(self.cursor_, self.cursor_ + self.batch_size_)
        self.cursor_ += self.batch_size_
        self.steps_ += 1
        return Selection(self.train_ids_[self.order_[sl]], self.weights_[sl].copy())

    def feedback(self, ids: np.ndarray, losses: np.ndarray) -> None:
        self.scores_[self.position_[ids]] = losses

    def extra_state(self) -> dict[str, Any]:
        return {"scores": self.scores_.copy(), "order": self.order_.copy(),
                "weights": self.weights_.copy(), "cursor": self.cursor_,
                "steps": self.steps_, "pruning": self.pruning_}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.scores_ = np.asarray(state["scores"])
        self.order_ = np.asarray(state["order"])
        self.weights_ = np.asarray(state["weights"])
        self.cursor_ = int(state["cursor"])
        self.steps_ = int(state.get("steps", 0))
        self.pruning_ = bool(state.get("pruning", False))


# ---------------------------------------------------------------------------- RHO-LOSS
@register("traversal", "rho_loss")
class RhoLossTraversal(Traversal):
    """RHO-LOSS: from a uniform big batch, train on the points with the largest reducible loss.

    Before training, a small irreducible-loss (IL) model is trained on held-out training rows
    (cross-fitted over two halves, so every row gets a loss from a model that never saw it; see
    :func:`holdout_irreducible_losses`) and its losses are stored: the paper computes them once.
    Each step draws ``big_batch_factor x batch_size`` training nodes uniformly without
    replacement, scores them with the current model (``context.score``: counted as selection
    compute) and keeps the ``batch_size`` with the largest ``loss - irreducible loss``. The IL
    model's cost is reported in :attr:`overhead_`.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"traversal:selection"})
    requires: ClassVar[frozenset[str]] = frozenset({"per_sample_loss", "node:point"})
    space = {
        "big_batch_factor": Int(low=1, high=100,
                                help="candidates scored per selected sample (n_B / n_b)"),
        "il_width": Int(low=0, high=1024,
                        help="hidden units of the irreducible-loss model (0: linear)"),
        "il_epochs": Int(low=1, high=1000, help="epochs of IL model training"),
    }

    def __init__(self, big_batch_factor: int = 10, il_width: int = 32, il_epochs: int = 40,
                 ) -> None:
        self.big_batch_factor = big_batch_factor
        self.il_width = il_width
        self.il_epochs = il_epochs

    def build(self) -> None:
        ids = self.train_ids_
        feats = train_features(self.graph_, ids, self.display_name())
        classes = max(1, int(np.max(self.graph_.label, initial=0)) + 1)
        self.irreducible_, self.overhead_ = holdout_irreducible_losses(
            feats, self.graph_.label[ids], classes, self.rng_, width=self.il_width,
            epochs=self.il_epochs)

    def next_batch(self) -> Selection:
        if self.context_.score is None:
            raise DataError(f"{self.display_name()} needs the trainer's score function "
                            "(TraversalContext.score) to rank candidates.")
        n = self.train_ids_.size
        size = min(n, self.big_batch_factor * self.batch_size_)
        cand = self.rng_.choice(n, size=size, replace=False)
        losses = self.context_.score(self.train_ids_[cand])
        top = rho_select(losses, self.irreducible_[cand], self.batch_size_)
        return Selection(self.train_ids_[cand[top]])

    def extra_state(self) -> dict[str, Any]:
        return {"irreducible": self.irreducible_.copy()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.irreducible_ = np.asarray(state["irreducible"])


# ---------------------------------------------------------------------------- loss rank
@register("traversal", "loss_topk")
class LossTopKTraversal(Traversal):
    """Online batch selection by loss rank (Loshchilov & Hutter).

    Every training node keeps its latest known loss (from the steps it was trained in; unseen
    nodes rank first). Batches are drawn without replacement with probability decaying
    exponentially with loss rank: the top node is ``pressure`` times as likely as the last
    (:func:`rank_probabilities`). With ``recompute_every > 0`` all losses are refreshed by a
    forward pass every that many epochs (counted as selection compute), as in the paper.
    """

    needs_feedback: ClassVar[bool] = True
    tags: ClassVar[frozenset[str]] = frozenset({"covers_all", "traversal:selection"})
    requires: ClassVar[frozenset[str]] = frozenset({"per_sample_loss"})
    space = {
        "pressure": Float(low=1.0, high=1e8, log=True,
                          help="selection pressure: top-rank / bottom-rank probability"),
        "recompute_every": Int(low=0, high=1000,
                               help="epochs between full loss refreshes (0: never)"),
    }

    def __init__(self, pressure: float = 100.0, recompute_every: int = 0) -> None:
        self.pressure = pressure
        self.recompute_every = recompute_every

    def build(self) -> None:
        self.probs_ = rank_probabilities(self.train_ids_.size, self.pressure)

    def init_state(self) -> None:
        self.loss_ = np.full(self.train_ids_.size, np.inf)

    def on_epoch_start(self, epoch: int) -> None:
        every = self.recompute_every
        if every > 0 and epoch > 0 and epoch % every == 0 and self.context_.score is not None:
            self.loss_ = np.asarray(self.context_.score(self.train_ids_), np.float64)

    def next_batch(self) -> Selection:
        n = self.train_ids_.size
        tie = self.rng_.random(n)
        k = min(self.batch_size_, n)
        ranks = self.rng_.choice(n, size=k, replace=False, p=self.probs_)
        # rank 0 = largest loss, random tie-break
        return Selection(self.train_ids_[nodes_at_ranks(-self.loss_, tie, ranks)])

    def feedback(self, ids: np.ndarray, losses: np.ndarray) -> None:
        self.loss_[self.position_[ids]] = losses

    def extra_state(self) -> dict[str, Any]:
        return {"loss": self.loss_.copy()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.loss_ = np.asarray(state["loss"])
