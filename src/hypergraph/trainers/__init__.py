"""Trainers and the callback API."""

from hypergraph.trainers._base import BatchGatherer, TrainContext, Trainer
from hypergraph.trainers._callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    EarlyStopping,
    HistoryWriter,
    PruningCallback,
    TrainState,
    write_json_atomic,
)
from hypergraph.trainers._standard import StandardTrainer

__all__ = [
    "BatchGatherer",
    "Callback",
    "CallbackList",
    "Checkpoint",
    "EarlyStopping",
    "HistoryWriter",
    "PruningCallback",
    "StandardTrainer",
    "TrainContext",
    "TrainState",
    "Trainer",
    "write_json_atomic",
]
