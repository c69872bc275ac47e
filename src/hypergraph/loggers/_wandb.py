"""Weights & Biases logger (the real ``wandb`` library), offline by default.

The wandb run lives inside the run folder (``RUN/wandb/offline-run-*``); ``wandb sync`` uploads
it later. Online logging is chosen with ``WANDB_MODE=online`` (and a logged-in wandb). Runs
started inside :func:`wandb_group` (each sweep trial, by the sweep worker and the agent) join the
W&B group of that name. :func:`read_wandb_run` reads an offline run back without network.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from hypergraph.exceptions import ConfigError, DataError
from hypergraph.logging import get_logger
from hypergraph.trainers import Callback, TrainState

if TYPE_CHECKING:
    from hypergraph.trainers import TrainContext

__all__ = ["WandbLogger", "read_wandb_run", "wandb_group"]

logger = get_logger(__name__)

_ID_FILE = "wandb-run-id"
_MODES = ("offline", "online", "disabled", "shared")
# Settings that keep an offline run quiet and local; names missing from the installed wandb
# version are skipped.
_SETTINGS: dict[str, Any] = {
    "silent": True,
    "console": "off",
    "init_timeout": 60,
    "x_disable_stats": True,
    "x_disable_machine_info": True,
    "disable_git": True,
    "save_code": False,
    "disable_job_creation": True,
}

_GROUP: ContextVar[str | None] = ContextVar("hypergraph_wandb_group", default=None)


@contextlib.contextmanager
def wandb_group(name: str | None) -> Iterator[None]:
    """W&B runs started inside the block join the group ``name`` (e.g. a sweep's name).

    The sweep worker and the agent wrap every trial in it, so each trial's run is grouped by
    its own sweep, whichever sweeps one process trains in turn. It is a context variable, not
    the environment: nothing leaks to the next trial or to other threads.
    """
    token = _GROUP.set(name)
    try:
        yield
    finally:
        _GROUP.reset(token)


class WandbLogger(Callback):
    """Logs each epoch's metrics, the run config, and the final model as an artifact.

    The mode comes from ``WANDB_MODE`` (default ``offline``: nothing touches the network), the
    project from ``WANDB_PROJECT`` (default ``hypergraph``), the group from ``group``, else the
    enclosing :func:`wandb_group` (a sweep trial: its sweep's name), else ``WANDB_RUN_GROUP``.
    A resumed run reuses the wandb run id kept in the run folder.

    Args:
        config: The resolved run config (logged as the wandb config).
        out_dir: The run folder (the wandb directory goes inside); ``None``: wandb's default.
        project: wandb project (overrides ``WANDB_PROJECT``).
        group: wandb group of the run (see above when ``None``).
    """

    def __init__(self, config: dict[str, Any] | None = None, out_dir: Path | None = None,
                 project: str | None = None, group: str | None = None) -> None:
        self.config = config
        self.out_dir = out_dir
        self.project = project
        self.group = group
        self.run: Any = None

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        try:
            import wandb
        except ImportError as err:  # pragma: no cover - wandb is a dependency
            raise ConfigError("The 'wandb' logger needs the wandb package: pip install "
                              "wandb.") from err
        os.environ.setdefault("WANDB_SILENT", "true")
        fields = getattr(wandb.Settings, "model_fields", {})
        settings = wandb.Settings(**{k: v for k, v in _SETTINGS.items() if k in fields})
        mode = os.environ.get("WANDB_MODE", "offline")
        if mode not in _MODES:
            raise ConfigError(f"WANDB_MODE must be one of {', '.join(_MODES)} for the 'wandb' "
                              f"logger, got '{mode}'.")
        run_id: str | None = None
        resume: Literal["allow"] | None = None
        if self.out_dir is not None:
            id_file = self.out_dir / _ID_FILE
            if id_file.is_file() and state.step > 0:
                run_id, resume = id_file.read_text().strip(), "allow"
            else:
                run_id = uuid.uuid4().hex[:8]
                id_file.write_text(run_id + "\n")
        group = self.group or _GROUP.get() or os.environ.get("WANDB_RUN_GROUP") or None
        try:
            self.run = wandb.init(
                project=self.project or os.environ.get("WANDB_PROJECT", "hypergraph"),
                group=group,
                dir=str(self.out_dir) if self.out_dir is not None else None,
                name=self.out_dir.name if self.out_dir is not None else None,
                id=run_id, resume=resume, mode=cast(Any, mode), config=self.config or {},
                settings=settings, reinit="create_new")
        except wandb.errors.Error as err:
            raise ConfigError(f"The 'wandb' logger could not start a run (WANDB_MODE={mode}): "
                              f"{err}. Use WANDB_MODE=offline to log without network.") from err
        logger.info("wandb run %s in %s", self.run.id, self.run.dir)

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        if self.run is None:
            return
        row: dict[str, Any] = {}
        for key, value in record.items():
            if isinstance(value, dict):
                row.update({f"{key}/{k}": v for k, v in value.items()})
            elif key != "best":
                row[key] = value
        self.run.log(row, step=int(record["epoch"]))

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        if self.run is None:
            return
        import wandb

        for split in ("val", "test"):
            for key, value in result[split].items():
                self.run.summary[f"{split}/{key}"] = value
        for key in ("samples_seen", "steps", "epochs", "best_epoch", "stop_reason"):
            self.run.summary[key] = result[key]
        path = Path(self.run.dir) / "model.pt"
        ctx.model.save(path)  # the final (best-on-validation) model
        artifact = wandb.Artifact(f"model-{self.run.id}", type="model",
                                  metadata={"test": result["test"], "val": result["val"]})
        artifact.add_file(str(path))
        self.run.log_artifact(artifact)
        self.run.finish()
        self.run = None

    def on_exception(self, ctx: TrainContext, state: TrainState, error: BaseException) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1)
            self.run = None


def _log_records(data: bytes) -> list[bytes]:
    """The records of a LevelDB-style log (the ``.wandb`` transaction file's framing)."""
    block, header = 32768, 7
    records: list[bytes] = []
    pending = b""
    pos = 7  # the file starts with wandb's 7-byte magic and version
    while pos + header <= len(data):
        left = block - pos % block
        if left < header:  # the rest of a block too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + header])
        if kind == 0 and length == 0:  # zero fill up to the end of the block
            pos += left
            continue
        chunk = data[pos + header:pos + header + length]
        pos += header + length
        if kind == 1:  # full
            records.append(chunk)
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            records.append(pending + chunk)
            pending = b""
    return records


def read_wandb_run(path: str | Path) -> dict[str, Any]:
    """Read an offline wandb run back: ``{"config", "history", "summary", "artifacts"}``.

    Args:
        path: An ``offline-run-*`` directory, its ``.wandb`` file, or a folder holding either
            (the newest run found is read).

    Returns:
        ``history`` is a list of logged rows (``_step`` included), ``config`` and ``summary``
        are mappings of the last values, ``artifacts`` lists ``(name, type)`` pairs; ``run``
        holds the run's ``id``, ``name``, ``project`` and ``group`` (``""`` when none).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    p = Path(path)
    files = [p] if p.is_file() else sorted(p.rglob("*.wandb"), key=lambda f: f.stat().st_mtime)
    if not files:
        raise DataError(f"No wandb run file (*.wandb) under '{p}'.")
    data = files[-1].read_bytes()
    if data[:4] != b":W&B":
        raise DataError(f"'{files[-1]}' is not a wandb run file.")
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "artifacts": [],
                           "run": {}}
    for raw in _log_records(data):
        rec = pb.Record()  # type: ignore[attr-defined]
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {"id": rec.run.run_id, "name": rec.run.display_name,
                          "project": rec.run.project, "group": rec.run.run_group}
            for item in rec.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            for item in rec.summary.update:
                out["summary"][_key(item)] = json.loads(item.value_json)
        elif kind == "artifact":
            out["artifacts"].append((rec.artifact.name, rec.artifact.type))
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)
