"""The callback API that opens the trainer (logging, checkpoints, early stopping, pruning).

Callbacks implement any of the no-op hooks below; :class:`CallbackList` dispatches each hook to
every callback in order. A callback stops training by setting ``state.stop = True`` (the epoch
loop ends after the current epoch); a pruner calls :meth:`TrainState.prune`.

Order of the hooks in one run::

    on_fit_start
    per epoch:  on_epoch_start, on_step_end (each step), on_epoch_end (after validation)
    on_fit_end  (after the final test)        or  on_exception (training raised)

The standard trainer appends :class:`EarlyStopping` and, with a run folder, :class:`Checkpoint`
after the callbacks it was given, so checkpoints see every decision made in the same epoch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypergraph._io import atomic_path, write_json_atomic
from hypergraph.logging import get_logger

if TYPE_CHECKING:
    from hypergraph.trainers._base import TrainContext

__all__ = ["Callback", "CallbackList", "Checkpoint", "EarlyStopping", "HistoryWriter",
           "PruningCallback", "TrainState", "write_json_atomic"]

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
        stop_reason: Why training stopped early (empty when it ran all epochs).
        pruned: Set by :meth:`prune` (a sweep pruner ended the run).
        epoch_step: Steps taken in the current epoch (non-zero only inside an epoch).
        epoch_loss: Sum of per-sample training losses of the current epoch so far (synced from
            the device only when a checkpoint is written).
        epoch_count: Samples behind ``epoch_loss``.
        visits: ``int64[nodes]`` training visits per graph node (up to the last flush).
        wall_s: Seconds of training so far (a resumed run adds to the time before the kill).
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
    pruned: bool = False
    epoch_step: int = 0
    epoch_loss: float = 0.0
    epoch_count: int = 0
    visits: np.ndarray | None = None
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
        data = dict(self.__dict__)
        data["history"] = list(self.history)
        if self.visits is not None:
            data["visits"] = self.visits.copy()
        return data

    def prune(self, reason: str) -> None:
        """End the run after this epoch because a pruner judged it unpromising."""
        self.stop, self.pruned = True, True
        self.stop_reason = f"pruned: {reason}"


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

    def on_exception(self, ctx: TrainContext, state: TrainState, error: BaseException) -> None:
        """Training raised ``error`` (it is re-raised afterwards): close files, finish runs."""


class CallbackList(Callback):
    """Dispatches every hook to each callback in order."""

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])

    def implementing(self, hook: str) -> list[Callback]:
        """The callbacks whose class overrides ``hook`` (the others' hook is a no-op).

        Hot loops dispatch a per-step hook to these only, so that callbacks that do nothing per
        step cost nothing per step.
        """
        base = getattr(Callback, hook)
        return [cb for cb in self.callbacks
                if getattr(type(cb), hook, base) is not base or hook in getattr(cb, "__dict__", {})]

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

    def on_exception(self, ctx: TrainContext, state: TrainState, error: BaseException) -> None:
        # Every callback gets to clean up, even if one of them fails while doing so.
        for cb in self.callbacks:
            try:
                cb.on_exception(ctx, state, error)
            except Exception:
                logger.exception("Callback %s failed while handling %r", type(cb).__name__,
                                 error)


class EarlyStopping(Callback):
    """Stops when the monitored validation metric has not improved for ``patience`` epochs."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        # state.epoch already counts the finished epoch; best_epoch is 0-based.
        if self.patience > 0 and (state.epoch - 1) - state.best_epoch >= self.patience:
            state.stop = True
            state.stop_reason = (f"early stopping: no improvement of val {state.monitor} for "
                                 f"{self.patience} epochs")
            logger.info(state.stop_reason)


class PruningCallback(Callback):
    """Hook point for sweep pruning: after each validation, ask :meth:`should_prune`.

    Subclasses (for example an Optuna pruner adapter) report ``record["val"]`` to their sweep
    and return ``True`` to end the run; the trainer then stops after this epoch with
    ``stop_reason`` ``"pruned: ..."`` and the last checkpoint written as usual.
    """

    def should_prune(self, state: TrainState, record: dict[str, Any]) -> bool:
        """Whether to end the run after the epoch ``record`` describes."""
        return False

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        if not state.stop and self.should_prune(state, record):
            state.prune(f"after epoch {record['epoch']}")
            logger.info("Run %s", state.stop_reason)


class Checkpoint(Callback):
    """Writes ``best.pt``, ``last.pt`` and, at the end, ``visits.npy`` into the run folder.

    ``last.pt`` (the resume point, see :meth:`Trainer.checkpoint_state
    <hypergraph.trainers.Trainer.checkpoint_state>`) is written at every epoch end and, with
    ``every_steps > 0``, every ``every_steps`` gradient steps inside an epoch. A checkpoint is
    only written while the training loss and every model tensor are finite, so a run that
    diverges keeps its last good one. ``best.pt`` holds the model of the best validation epoch.

    Args:
        out_dir: The run folder.
        every_steps: Mid-epoch checkpoint interval in steps (0: only at epoch ends).
    """

    def __init__(self, out_dir: Path, every_steps: int = 0) -> None:
        self.out_dir = Path(out_dir)
        self.every_steps = every_steps

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        if (self.every_steps > 0 and state.step % self.every_steps == 0
                and state.epoch_step < state.steps_per_epoch):
            self.save(ctx, state)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        if record.get("best"):
            ctx.model.save(self.out_dir / "best.pt")
        self.save(ctx, state)

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        if state.visits is not None:
            with atomic_path(self.out_dir / "visits.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, state.visits)

    def save(self, ctx: TrainContext, state: TrainState) -> bool:
        """Write ``last.pt`` atomically; returns ``False`` (and writes nothing) if not finite."""
        if ctx.trainer is None:
            return False
        payload = ctx.trainer.checkpoint_state(ctx, state)
        payload["run_id"] = ctx.run_id
        if not math.isfinite(payload["state"]["epoch_loss"]) or not _all_finite(
                payload["model"]):
            logger.warning("Not writing a checkpoint at step %d: the loss or the model holds "
                           "NaN or infinite values.", state.step)
            return False
        import torch

        with atomic_path(self.out_dir / "last.pt") as tmp:
            torch.save(payload, tmp)
        return True


def _all_finite(obj: Any) -> bool:
    """Whether every floating tensor or array inside nested dicts/lists is finite."""
    import torch

    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind != "f" or bool(np.isfinite(obj).all())
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_finite(v) for v in obj)
    return True


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
