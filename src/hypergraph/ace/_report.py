"""Plots of ACE results (matplotlib, headless): regret curves and the effect heatmap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["median_curve", "plot_effects", "plot_regret"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def median_curve(curves: Sequence[Sequence[float] | np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, first and third quartile per evaluation over runs (up to the shortest run)."""
    n = min(len(c) for c in curves)
    C = np.array([list(c)[:n] for c in curves], dtype=float)
    q1, med, q3 = np.percentile(C, [25, 50, 75], axis=0)
    return med, q1, q3


def plot_regret(curves: Mapping[str, Sequence[Sequence[float] | np.ndarray]],
                path: str | Path) -> None:
    """Median regret (with the interquartile band) against evaluations, one line per label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, runs in curves.items():
        med, q1, q3 = median_curve(runs)
        x = np.arange(1, len(med) + 1)
        ax.plot(x, med, label=f"{label} ({len(runs)} runs)")
        ax.fill_between(x, q1, q3, alpha=0.15)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("regret (truth)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_effects(effects: Mapping[str, Mapping[str, Mapping[str, float]]],
                 path: str | Path) -> None:
    """Heatmap of the main effect of each choice (rows: slots; cells: choices), std annotated."""
    plt = _pyplot()
    slots = list(effects)
    width = max(len(v) for v in effects.values())
    M = np.full((len(slots), width), np.nan)
    for i, slot in enumerate(slots):
        for j, eff in enumerate(effects[slot].values()):
            M[i, j] = eff["mean"]
    fig, ax = plt.subplots(figsize=(1.4 + 1.25 * width, 0.9 + 0.6 * len(slots)))
    lim = float(np.nanmax(np.abs(M))) or 1.0
    im = ax.imshow(M, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for i, slot in enumerate(slots):
        for j, (choice, eff) in enumerate(effects[slot].items()):
            ax.text(j, i, f"{choice}\n{eff['mean']:+.3g}±{eff['std']:.2g}", ha="center",
                    va="center", fontsize=7)
    ax.set_yticks(range(len(slots)), slots)
    ax.set_xticks([])
    ax.set_title("main effect of each choice (score units, ± std)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
