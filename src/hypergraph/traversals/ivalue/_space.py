"""The hyperparameter space of IValue (``traversal: ivalue``)."""

from __future__ import annotations

from hypergraph.spaces import Categorical, Float, Int, Param
from hypergraph.traversals._base import WALKERS
from hypergraph.traversals.ivalue._signals import SIGNALS

__all__ = ["SPACE"]

SPACE: dict[str, Param] = {
    "signal": Categorical(choices=tuple(SIGNALS),
                          help="value measured at each visit"),
    "irreducible": Categorical(choices=("graph", "holdout"),
                               help="source of the irreducible loss (signal=reducible)"),
    "irreducible_weight": Float(low=0.0, high=10.0,
                                help="weight of the irreducible loss subtracted"),
    "walkers": WALKERS,
    "transform": Categorical(choices=("rank", "z"),
                             help="value -> logit: by rank (robust) or z-score"),
    "pressure": Float(low=1.0, high=1e8, log=True,
                      help="rank transform: odds of the top- over the bottom-ranked node"),
    "temperature": Float(low=0.01, high=100.0, log=True,
                         help="z transform: softmax temperature over standardised values"),
    "warp": Float(low=0.0, high=1.0,
                  help="probability a walker warps instead of moving to a neighbour"),
    "explore": Float(low=0.0, high=1.0,
                     help="share of warps drawn uniformly (coverage floor)"),
    "return_delay": Float(low=0.0, high=10.0,
                          help="epochs before a picked node may be picked again"),
    "refresh": Int(low=1, high=100_000, log=True,
                   help="batches between value propagations"),
    "hops": Int(low=0, high=20, help="diffusion steps per propagation"),
    "alpha": Float(low=0.0, high=1.0, help="weight of neighbours per hop"),
    "trust": Float(low=0.0, high=10.0,
                   help="weight of log label agreement with graph neighbours in the logits"),
    "peak": Float(low=0.01, high=0.99,
                  help="signal=uncertainty: label probability p where the value p^a (1 - p) "
                  "peaks (a = peak / (1 - peak); 0.5 gives p (1 - p))"),
    "sweep": Float(low=0.0, high=1.0,
                   help="share of each batch taken from a shuffled pass over the training "
                   "nodes (without replacement) instead of the walkers"),
    "contra": Float(low=0.0, high=20.0,
                    help="weight of log model-confirmed label agreement with train "
                    "neighbours in the logits (label-noise filter)"),
    "self_weight": Float(low=0.0, high=1.0,
                         help="weight of a node's own observation vs its neighbourhood"),
    "staleness": Float(low=0.01, high=1000.0, log=True,
                       help="epochs for an observation's confidence to fall by 1/e"),
    "bonus": Float(low=0.0, high=10.0,
                   help="exploration bonus per unit of uncertainty (in value std units)"),
    "engine": Categorical(choices=("stream", "exact"),
                          help="stream: per-step cost independent of the graph size; "
                          "exact: full propagation and ranking every refresh"),
    "stratify": Categorical(choices=("none", "label"),
                            help="label: every class gets its share of the value draws "
                            "(value picks members within a class, never the class mix)"),
    "dedup": Float(low=0.0, high=1.0,
                   help="edge weight (similarity) at or above which two training nodes "
                   "are near-duplicates; a group of m near-duplicates is visited as one "
                   "node (each member 1/m as often); 0 turns grouping off"),
    "noisy": Categorical(choices=("keep", "skip"),
                         help="skip: nodes judged to carry a wrong label (mean loss over "
                         "visits and graph neighbours' labels both below chance) leave the "
                         "sweep and the value draws (the exploration floor still reaches "
                         "them)"),
    "anneal": Float(low=0.0, high=1.0,
                    help="share of the training budget, at its end, in which every batch "
                    "comes from the shuffled pass (sweep share 1: epoch order over the "
                    "near-duplicate groups, as InfoBatch's full-data tail); 0 never"),
}
