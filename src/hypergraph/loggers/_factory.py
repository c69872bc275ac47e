"""Logger names and the factory that builds them for a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypergraph.exceptions import UnknownNameError
from hypergraph.trainers import Callback

__all__ = ["LOGGERS", "check_logger_names", "make_loggers"]

#: Logger names accepted by ``RunConfig.loggers`` and ``--logger``, with what they write.
LOGGERS: dict[str, str] = {
    "console": "one short line per epoch on the terminal (rich)",
    "jsonl": "history.jsonl in the run folder (always on when there is a run folder)",
    "csv": "history.csv in the run folder",
    "wandb": "Weights & Biases run inside the run folder (offline unless WANDB_MODE says "
             "otherwise): metrics per epoch, the config, the final model as an artifact",
}


def check_logger_names(names: Sequence[str]) -> None:
    """Raise :class:`UnknownNameError` (listing the choices) for an unknown logger name."""
    for name in names:
        if name not in LOGGERS:
            raise UnknownNameError("logger", name, LOGGERS)


def make_loggers(names: Sequence[str], out_dir: Path | None,
                 config: dict[str, Any] | None = None) -> list[Callback]:
    """Build the loggers ``names`` for a run writing to ``out_dir`` (``None``: no folder).

    File loggers need a run folder and are skipped without one; ``jsonl`` is added whenever
    there is a folder. Each name is used once, in the order given.
    """
    from hypergraph.loggers._console import ConsoleLogger
    from hypergraph.loggers._files import CsvLogger, JsonlLogger
    from hypergraph.loggers._wandb import WandbLogger

    check_logger_names(names)
    wanted = list(dict.fromkeys(["jsonl", *names] if out_dir is not None else names))
    out: list[Callback] = []
    for name in wanted:
        if name == "console":
            out.append(ConsoleLogger())
        elif name == "wandb":
            out.append(WandbLogger(config=config or {}, out_dir=out_dir))
        elif out_dir is None:
            continue
        elif name == "jsonl":
            out.append(JsonlLogger(out_dir / "history.jsonl"))
        elif name == "csv":
            out.append(CsvLogger(out_dir / "history.csv"))
    return out
