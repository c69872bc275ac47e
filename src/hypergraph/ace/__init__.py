"""ACE, the Adaptive Combination Engine: predicts which untried combination will score best.

``ACE(space, seed=0)`` learns from the combinations already scored (main effects of each slot's
choices plus pairwise interactions, with uncertainty), predicts every valid combination and
proposes what to run next (``ask``/``tell``). See ``docs/guides/ace.md``.
"""

from typing import Any

from hypergraph.ace._engine import ACE, ACQUISITIONS
from hypergraph.ace._replay import METHODS, Table, regret_curve, replay
from hypergraph.ace._space import Combo, Space
from hypergraph.ace._surrogate import AdditiveGP

__all__ = ["ACE", "ACQUISITIONS", "METHODS", "ACESampler", "AdditiveGP", "Combo", "Space",
           "Table", "regret_curve", "replay"]


def __getattr__(name: str) -> Any:
    if name == "ACESampler":  # imports optuna: only when asked for
        from hypergraph.ace._optuna import ACESampler

        return ACESampler
    raise AttributeError(f"module 'hypergraph.ace' has no attribute '{name}'")
