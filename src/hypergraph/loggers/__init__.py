"""Loggers: trainer callbacks that record a run (console, JSONL, CSV, Weights & Biases).

Choose them with the ``loggers`` list of a run config (``loggers: [jsonl, csv, wandb]``) or
``hypergraph train --logger csv --logger wandb``. ``history.jsonl`` is the run folder's own
record (``--resume``, ``hypergraph plot`` and sweeps read it), so the ``jsonl`` logger is always
on for runs with a folder; the others are added to it.
"""

from hypergraph.loggers._console import ConsoleLogger
from hypergraph.loggers._factory import LOGGERS, check_logger_names, make_loggers
from hypergraph.loggers._files import CsvLogger, JsonlLogger, flatten_record
from hypergraph.loggers._wandb import WandbLogger, read_wandb_run, wandb_group

__all__ = [
    "LOGGERS",
    "ConsoleLogger",
    "CsvLogger",
    "JsonlLogger",
    "WandbLogger",
    "check_logger_names",
    "flatten_record",
    "make_loggers",
    "read_wandb_run",
    "wandb_group",
]
