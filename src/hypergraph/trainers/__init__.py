"""Trainers and the callback API."""

from hypergraph.trainers._base import BatchGatherer, TrainContext, Trainer
from hypergraph.trainers._callbacks import (
    Callback,
    CallbackList,
    EarlyStopping,
    HistoryWriter,
    TrainState,
    write_json_atomic,
)
from hypergraph.trainers._standard import StandardTrainer

__all__ = [
    "BatchGatherer",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "HistoryWriter",
    "StandardTrainer",
    "TrainContext",
    "TrainState",
    "Trainer",
    "write_json_atomic",
]
