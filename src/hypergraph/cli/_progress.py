"""Rich progress bar as a trainer callback (CLI only)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hypergraph.trainers import Callback, TrainContext, TrainState


def bar_columns(label: str) -> tuple[ProgressColumn, ...]:
    """The columns of every progress bar of the command line: ``label`` (rich markup, may
    name ``{task.description}``), bar, done/total, the task's ``info`` field, elapsed and
    remaining time."""
    return (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())


class RichProgress(Callback):
    """Shows epochs and steps, with the last validation metrics, while a run trains."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(*bar_columns("{task.description}"), console=console,
                                 transient=False)
        self.epoch_task: Any = None
        self.step_task: Any = None

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        self.progress.start()
        self.epoch_task = self.progress.add_task("epochs", total=state.epochs,
                                                 completed=state.epoch, info="")
        self.step_task = self.progress.add_task("steps", total=1, info="")

    def on_epoch_start(self, ctx: TrainContext, state: TrainState) -> None:
        # A run resumed mid-epoch starts with some steps of this epoch already done.
        self.progress.reset(self.step_task, total=state.steps_per_epoch,
                            completed=state.epoch_step, info="")

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        self.progress.advance(self.step_task)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        val = record["val"]
        shown = " ".join(f"val_{k}={v:.4f}" for k, v in val.items())
        self.progress.update(self.epoch_task, advance=1,
                             info=f"train_loss={record['train_loss']:.4f} {shown}")

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        self.progress.stop()

    def close(self) -> None:
        """Stop the display (also on errors); a display never started prints nothing."""
        if self.progress.live.is_started:
            self.progress.stop()
