"""File loggers: ``history.jsonl`` and ``history.csv`` in the run folder."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypergraph.trainers import Callback, HistoryWriter, TrainState

if TYPE_CHECKING:
    from hypergraph.trainers import TrainContext

__all__ = ["CsvLogger", "JsonlLogger", "flatten_record"]

#: One JSON line per epoch (``history.jsonl``); a resumed run rewrites the restored epochs.
JsonlLogger = HistoryWriter


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """An epoch record with nested dicts flattened: ``{"val": {"loss": 1}}`` -> ``val_loss``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                flat[f"{key}_{sub}"] = v
        else:
            flat[key] = value
    return flat


class CsvLogger(Callback):
    """One row per epoch in a CSV file (``history.csv``), validation metrics as ``val_*``.

    The columns are those of the first epoch. A resumed run rewrites the file from the restored
    history, so an epoch never appears twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = None

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        self.columns = None
        self.path.unlink(missing_ok=True)
        for record in state.history:
            self._append(record)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        row = flatten_record(record)
        new = self.columns is None
        if self.columns is None:
            self.columns = list(row)
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
