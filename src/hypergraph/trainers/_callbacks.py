"""The callback API that opens the trainer (logging, checkpoints, early stopping, pruning).

Callbacks implement any of the no-op hooks below; :class:`CallbackList` dispatches each hook to
every callback in order. A callback stops training by setting ``state.stop = True``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypergraph.logging import get_logger

if TYPE_CHECKING:
    from hypergraph.trainers._base import TrainContext

__all__ = ["Callback", "CallbackList", "EarlyStopping", "HistoryWriter", "TrainState",
           "write_json_atomic"]

logger = get_logger(__name__)


@dataclass
class TrainState:
    """Mutable progress of one training run, shared with callbacks.

    Attributes:
        epoch: Current epoch (0-based).
        step: Gradient steps taken so far.
        samples_seen: Samples that passed through a training step (forward + backward).
        selection_forward: Samples scored by forward-only passes to choose batches.
        steps_per_epoch: Batches in the current epoch.
        history: One dict per finished epoch.
        best: Best validation metrics so far; ``best_epoch`` the epoch it was reached.
        stop: Set by a callback to end training after the current epoch.
    """

    epochs: int
    monitor: str
    mode: str  # "max" or "min"
    epoch: int = 0
    step: int = 0
    samples_seen: int = 0
    selection_forward: int = 0
    steps_per_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    best_epoch: int = -1
    stop: bool = False
    stop_reason: str = ""
    wall_s: float = 0.0

    def improved(self, metrics: dict[str, float]) -> bool:
        """Whether ``metrics`` beat the best validation result so far."""
        value = metrics.get(self.monitor, math.nan)
        if math.isnan(value):
            return False
        if not self.best:
            return True
        best = self.best[self.monitor]
        return value > best if self.mode == "max" else value < best

    def to_dict(self) -> dict[str, Any]:
        """Plain-data copy (for checkpoints)."""
        return dict(self.__dict__)


class Callback:
    """Base class of trainer callbacks; every hook is a no-op."""

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        """Before the first epoch."""

    def on_epoch_start(self, ctx: TrainContext, state: TrainState) -> None:
        """Before each epoch."""

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        """After each gradient step (keep it cheap: it runs on the hot path)."""

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        """After validation of each epoch; ``record`` is the epoch's history line."""

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        """After the final test evaluation."""


class CallbackList(Callback):
    """Dispatches every hook to each callback in order."""

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(ctx, state)

    def on_epoch_start(self, ctx: TrainContext, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(ctx, state)

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        for cb in self.callbacks:
            cb.on_step_end(ctx, state, ids)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(ctx, state, record)

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(ctx, state, result)


class EarlyStopping(Callback):
    """Stops when the monitored validation metric has not improved for ``patience`` epochs."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        if self.patience > 0 and state.epoch - state.best_epoch >= self.patience:
            state.stop = True
            state.stop_reason = (f"early stopping: no improvement of val {state.monitor} for "
                                 f"{self.patience} epochs")
            logger.info(state.stop_reason)


class HistoryWriter(Callback):
    """Appends one JSON line per epoch to ``history.jsonl`` in the run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        # A resumed run keeps the lines of the epochs it restored, and no more.
        lines = [json.dumps(rec) for rec in state.history]
        self.path.write_text("".join(line + "\n" for line in lines))

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_default) + "\n")
    os.replace(tmp, path)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
