"""Plots of runs (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_learning_curves"]


def plot_learning_curves(histories: Sequence[tuple[str, list[dict[str, Any]]]],
                         path: str | Path, metric: str = "accuracy") -> Path:
    """Training loss, validation loss and validation ``metric`` per epoch, one line per run.

    Args:
        histories: ``(label, history)`` pairs; a history is the list of ``history.jsonl`` lines.
        path: Where to write the PNG.
        metric: Validation metric of the right-hand panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, history in histories:
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["train_loss"] for h in history], label=f"{label} train")
        axes[0].plot(epochs, [h["val"].get("loss") for h in history], "--", label=f"{label} val")
        axes[1].plot(epochs, [h["val"].get(metric) for h in history], label=label)
    axes[0].set(xlabel="epoch", ylabel="loss", title="Loss")
    axes[1].set(xlabel="epoch", ylabel=f"val {metric}", title=f"Validation {metric}")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
