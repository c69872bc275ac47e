"""Sweep results: leaderboard, the best trial's runnable config, Optuna's plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hypergraph.exceptions import ConfigError
from hypergraph.logging import get_logger
from hypergraph.sweeps._store import CONFIG_ATTR, ERROR_ATTR, WORKER_ATTR

if TYPE_CHECKING:
    import optuna

__all__ = ["best_config", "leaderboard", "summary", "write_best", "write_plots"]

logger = get_logger(__name__)


def summary(study: optuna.Study) -> dict[str, int]:
    """Number of trials per state (``complete``, ``pruned``, ``fail``, ``running``, ``waiting``)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.state.name.lower()
        out[key] = out.get(key, 0) + 1
    return out


def leaderboard(study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None
                ) -> list[dict[str, Any]]:
    """Finished trials, best first: number, state, value, params, worker, retry_of.

    ``trials``: the study's trials when the caller has read them already (one read less).
    """
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False) if trials is None else trials:
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            continue
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value,
                     "params": dict(t.params), "worker": t.user_attrs.get(WORKER_ATTR, ""),
                     "retry_of": t.system_attrs.get("failed_trial"),
                     "error": t.user_attrs.get(ERROR_ATTR, "")})
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    order = {"complete": 0, "pruned": 1, "fail": 2}
    rows.sort(key=lambda r: (order[r["state"]],
                             sign * r["value"] if r["value"] is not None else float("inf"),
                             r["number"]))
    return rows


def best_config(study: optuna.Study) -> dict[str, Any]:
    """The run config of the best complete trial, as ``hypergraph train -c`` reads it.

    Raises:
        ConfigError: no trial has completed yet.
    """
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(f"Sweep '{study.study_name}' has no complete trial yet.") from None
    raw = best.user_attrs.get(CONFIG_ATTR)
    if raw is None:
        raise ConfigError(f"Trial {best.number} holds no run config.")
    config: dict[str, Any] = json.loads(raw)
    config["loggers"] = ["jsonl"]
    return config


def write_best(study: optuna.Study, path: Path) -> Path:
    """Write :func:`best_config` as YAML to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(best_config(study), sort_keys=False))
    return path


def write_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimisation history, parallel coordinates and parameter importance as PNG files.

    A plot Optuna cannot draw yet (too few complete trials, no varied parameter) is skipped
    with a warning.
    """
    import warnings
    from collections.abc import Callable

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.exceptions import ExperimentalWarning

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    plots: dict[str, Callable[..., Any]] = {"optimization_history": vis.plot_optimization_history,
             "parallel_coordinate": vis.plot_parallel_coordinate,
             "param_importances": vis.plot_param_importances}
    for name, plot in plots.items():
        path = folder / f"{name}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                ax = plot(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(9, 6)
            fig.tight_layout()
            fig.savefig(path, dpi=100)
            plt.close(fig)
        except (ValueError, RuntimeError, IndexError, ZeroDivisionError) as err:
            logger.warning("Skipped the %s plot: %s", name, err)
            plt.close("all")
            continue
        written.append(path)
    return written
