"""Hyperparameter sweeps on Optuna, from W&B sweep files, on one machine or many.

* :func:`load_sweep` / :func:`sweep_from_mapping` read and check a sweep file;
  :func:`space_from_modules` builds one from the chosen modules' declared spaces.
* :class:`SweepStore` is the storage protocol: Optuna's RDB storage plus an exact ``run_cap``
  (slots claimed by one INSERT each), heartbeat leases with retries, and a fence refusing late
  writes (:class:`StaleTrialError`).
* :func:`run_worker` trains trials until the budget is used up; :func:`leaderboard`,
  :func:`best_config` and :func:`write_plots` read the results.

Optuna is imported lazily, so importing this package stays cheap.
"""

from hypergraph.sweeps._results import best_config, leaderboard, summary, write_best, write_plots
from hypergraph.sweeps._spec import (
    METHODS,
    ParamSpec,
    SweepSpec,
    load_sweep,
    space_from_modules,
    sweep_from_mapping,
)
from hypergraph.sweeps._store import Claim, StaleTrialError, SweepStore, worker_id
from hypergraph.sweeps._worker import OptunaPruning, run_worker

__all__ = [
    "METHODS",
    "Claim",
    "OptunaPruning",
    "ParamSpec",
    "StaleTrialError",
    "SweepSpec",
    "SweepStore",
    "best_config",
    "leaderboard",
    "load_sweep",
    "run_worker",
    "space_from_modules",
    "summary",
    "sweep_from_mapping",
    "worker_id",
    "write_best",
    "write_plots",
]
