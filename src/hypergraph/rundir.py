"""Run folders that nothing can destroy: an OS lock, fingerprints, and a state anyone can read.

A run folder is the product of hours of compute, so every writer follows the same rules:

* **One writer at a time.** :class:`RunLock` holds an exclusive ``flock`` on the folder itself
  for the whole life of a run (a real OS lock: the kernel drops it when the process dies, even
  on ``SIGKILL``). A second ``train`` or ``--resume`` on the same folder is refused, naming the
  holder's pid.
* **Nothing changes before the run is known to be good.** A folder that already holds a run (or
  files that are not a run's) is refused unless the caller asks to overwrite; the old files are
  only removed once the new run has been validated and its data loaded (see
  :func:`hypergraph.run.train`).
* **Resume verifies before it trusts.** ``run.json`` records a fingerprint of ``config.yaml``
  and of the data (rows, shape, a content hash); ``last.pt`` carries the run's id. Resume
  refuses an edited or truncated config, changed data, or a checkpoint of another run.
* **State without guessing.** :func:`inspect` tells a finished run from a running one, a killed
  one (``running`` in ``status.json`` but nobody holds the lock), an interrupted or failed one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypergraph.exceptions import ConfigError, DataError
from hypergraph.logging import get_logger

if TYPE_CHECKING:
    from hypergraph.datasets import DatasetBundle

__all__ = [
    "MANIFEST",
    "RUN_FILES",
    "RunInfo",
    "RunLock",
    "config_fingerprint",
    "data_fingerprint",
    "find_runs",
    "inspect",
    "lock_holder",
    "read_manifest",
]

logger = get_logger(__name__)

#: The run's identity and fingerprints (written when a run starts, read by resume).
MANIFEST = "run.json"
#: Version of :data:`MANIFEST`.
MANIFEST_FORMAT = 1
#: Every file (or folder) a run writes into its folder; ``--overwrite`` removes these only.
RUN_FILES = ("config.yaml", "status.json", MANIFEST, "metrics.json", "history.jsonl",
             "history.csv", "learning_curve.png", "best.pt", "last.pt", "visits.npy", "wandb")
#: Rows hashed for the data fingerprint of a store not held in memory (evenly spaced).
_SAMPLED_ROWS = 1024
#: In-memory features up to this many bytes are hashed whole; larger ones are sampled by rows.
_HASH_WHOLE_BYTES = 256 << 20


# ------------------------------------------------------------------------------ the lock
def _flock(fd: int, exclusive: bool) -> bool:
    """Try to take a lock on ``fd`` without waiting; whether it was taken."""
    import fcntl

    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_holder(path: str | os.PathLike[str]) -> int | None:
    """The pid holding the run lock on ``path`` (``-1``: held, pid unknown; ``None``: free)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if _flock(fd, exclusive=False):
            return None  # closing the descriptor releases the probe's shared lock
        return _pid_from_proc_locks(path)
    finally:
        os.close(fd)


def _pid_from_proc_locks(path: Path) -> int:
    """The pid of the ``flock`` on ``path`` as listed by Linux's ``/proc/locks`` (else -1)."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return -1
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF" (blocked waiters carry "->")
        if "->" in parts or len(parts) < 6 or parts[1] != "FLOCK" or parts[3] != "WRITE":
            continue
        if parts[5] == dev or parts[5].endswith(f":{st.st_ino}"):
            with contextlib.suppress(ValueError):
                return int(parts[4])
    return -1


def _holder_text(pid: int | None) -> str:
    return f"process {pid}" if pid is not None and pid > 0 else "another process"


class RunLock:
    """An exclusive OS lock on a run folder, held from before the first check to the last write.

    The lock is a ``flock`` on the folder's own descriptor, so it adds no file to the folder and
    is released by the kernel when the process ends, however it ends. A folder that does not
    exist yet is created to be locked, and removed again by :meth:`release` when the run wrote
    nothing into it (bad input leaves nothing behind).

    Raises:
        ConfigError: another process holds the lock (the message names its pid), or the folder
            cannot be created.
    """

    #: How long to retry when the lock is busy (a status reader holds it for microseconds).
    patience_s = 0.5

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder if needed); see the class docstring."""
        missing = []
        p = self.path
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # an existing file, a file as parent, no permission...
            raise ConfigError(f"Cannot create the run folder '{self.path}': "
                              f"{err.strerror or err}. Give another path with --out.") from None
        self._created = missing
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            self._remove_created()
            raise ConfigError(f"Cannot open the run folder '{self.path}': "
                              f"{err.strerror or err}.") from None
        deadline = time.monotonic() + self.patience_s
        while not _flock(fd, exclusive=True):
            if time.monotonic() >= deadline:
                os.close(fd)
                holder = _pid_from_proc_locks(self.path)
                raise ConfigError(
                    f"The run folder '{self.path}' is in use by {_holder_text(holder)} (a "
                    "training or resume holds its lock). Wait for it to end, stop it, or give "
                    "another folder with --out.")
            time.sleep(0.02)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock; remove the folders :meth:`acquire` created if they are still empty."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._remove_created()

    def keep(self) -> None:
        """The run wrote into the folder: never remove it on release."""
        self._created = []

    def _remove_created(self) -> None:
        for p in self._created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ------------------------------------------------------------------------------ fingerprints
def config_fingerprint(text: str | bytes) -> str:
    """SHA-256 of a ``config.yaml``'s exact bytes."""
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def data_fingerprint(bundle: DatasetBundle) -> dict[str, Any]:
    """Rows, item shape and a content hash of a loaded dataset (cheap for large data).

    The hash covers every label and split code, and the features: all of them when held in
    memory (up to 256 MiB), otherwise :data:`_SAMPLED_ROWS` evenly spaced rows, so a store of a
    million image files costs about a thousand reads.
    """
    import numpy as np

    n = len(bundle)
    h = hashlib.blake2b(digest_size=16)
    for arr in (np.ascontiguousarray(bundle.y), np.ascontiguousarray(bundle.split)):
        h.update(str(arr.dtype).encode())
        h.update(arr.tobytes())
    whole = bundle.store.as_array()
    if whole is not None and whole.nbytes <= _HASH_WHOLE_BYTES:
        h.update(np.ascontiguousarray(whole).tobytes())
        sampled = n
    else:
        rows = np.unique(np.linspace(0, n - 1, min(n, _SAMPLED_ROWS)).round().astype(np.int64))
        h.update(np.ascontiguousarray(bundle.store.get(rows), dtype=np.float32).tobytes())
        sampled = int(rows.size)
    return {"name": bundle.name, "rows": n, "item_shape": list(bundle.store.item_shape),
            "task": bundle.task, "classes": int(bundle.num_classes), "rows_hashed": sampled,
            "hash": h.hexdigest()}


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The run folder's ``run.json`` (``None`` when missing; :class:`DataError` when corrupt)."""
    file = path / MANIFEST
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"The run's fingerprint file '{file}' is corrupt ({err}); the run "
                        "cannot be verified, so it will not be resumed.") from None
    if not isinstance(data, dict) or "run_id" not in data:
        raise DataError(f"The run's fingerprint file '{file}' is not one written by "
                        "HyperGraph; the run cannot be verified, so it will not be resumed.")
    return data


def new_manifest(config_text: str, data: dict[str, Any]) -> dict[str, Any]:
    """A fresh ``run.json`` for a run starting now."""
    return {"format": MANIFEST_FORMAT, "run_id": uuid.uuid4().hex,
            "config_sha256": config_fingerprint(config_text), "data": data,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname()}


def verify_config_file(run: Path, manifest: dict[str, Any]) -> None:
    """Refuse to resume when ``config.yaml`` is not byte for byte the one the run started with
    (edited, truncated, replaced)."""
    try:
        on_disk = (run / "config.yaml").read_bytes()
    except OSError as err:
        raise ConfigError(f"Cannot resume '{run}': its config.yaml cannot be read "
                          f"({err.strerror or err}).") from None
    if config_fingerprint(on_disk) != manifest.get("config_sha256"):
        raise ConfigError(f"Cannot resume '{run}': its config.yaml was changed or truncated "
                          f"since the run started (its fingerprint differs from {MANIFEST}). "
                          "Restore the original config.yaml, or start a new run with the "
                          "config you want.")


def verify_data(run: Path, manifest: dict[str, Any], data: dict[str, Any]) -> None:
    """Refuse to resume when the data differ from those the run started with."""
    was = manifest.get("data") or {}
    diffs = [f"{key} {was.get(key)!r} -> {data.get(key)!r}"
             for key in ("rows", "item_shape", "task", "classes", "hash")
             if was.get(key) != data.get(key)]
    if diffs:
        raise DataError(f"Cannot resume '{run}': the data changed since the run started "
                        f"({'; '.join(diffs)}). Resuming would mix two datasets in one run; "
                        "restore the original data or start a new run.")


# ------------------------------------------------------------------------------ clearing
def clear_run_files(path: Path) -> None:
    """Remove the files a run writes (:data:`RUN_FILES`), and nothing else."""
    for name in RUN_FILES:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def forbidden_out(path: Path) -> str | None:
    """Why ``path`` may never be a run folder (the working folder, one above it, home, /)."""
    try:
        resolved = path.resolve()
        cwd = Path.cwd().resolve()
    except OSError:
        return None
    if resolved == cwd or resolved in cwd.parents:
        return "it is the working folder (or one of its parents)"
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        return "it is your home folder or the file-system root"
    return None


# ------------------------------------------------------------------------------ reading state
@dataclass
class RunInfo:
    """What a run folder holds, read without disturbing it.

    Attributes:
        path: The folder.
        state: ``finished``, ``running``, ``killed`` (``running`` on disk, nobody holds the
            lock), ``interrupted`` (SIGINT/SIGTERM), ``failed``, ``not a run`` or ``empty``.
        epochs: Epochs finished (lines of ``history.jsonl``).
        best: Best validation metrics (finished runs: from ``metrics.json``; others: the best
            epoch in ``history.jsonl``).
        reason: The error of a failed run, the stop reason of a finished one.
        pid: The lock holder of a running run.
        resumable: Whether ``hypergraph train --resume`` applies.
        files: The names found in the folder.
    """

    path: Path
    state: str
    epochs: int = 0
    best: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    pid: int | None = None
    resumable: bool = False
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The state in a few words: ``finished``, ``killed at epoch 3``, ``failed: ...``."""
        if self.state in ("killed", "interrupted"):
            return f"{self.state} at epoch {self.epochs}"
        if self.state == "running":
            return f"running ({_holder_text(self.pid)}), epoch {self.epochs}"
        if self.state == "failed":
            return f"failed: {self.reason}" if self.reason else "failed"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``hypergraph runs --json``)."""
        return {"path": str(self.path), "state": self.state, "describe": self.describe(),
                "epochs": self.epochs, "best": self.best, "reason": self.reason,
                "pid": self.pid, "resumable": self.resumable}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _history(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = (path / "history.jsonl").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            rec = json.loads(line)
            if isinstance(rec, dict):
                records.append(rec)
    return records


def inspect(path: str | os.PathLike[str], probe_lock: bool = True) -> RunInfo:
    """Read the state of the run folder ``path`` (never writes, never blocks a run).

    Args:
        path: The folder.
        probe_lock: Ask the OS whether a process holds the run lock (``False`` for a caller
            that holds it itself).
    """
    path = Path(path)
    try:
        files = sorted(p.name for p in path.iterdir())
    except OSError:
        return RunInfo(path, "not a run")
    if not files:
        return RunInfo(path, "empty")
    if "config.yaml" not in files and "status.json" not in files:
        return RunInfo(path, "not a run", files=files)
    status = _read_json(path / "status.json")
    status = status if isinstance(status, dict) else {}
    history = _history(path)
    info = RunInfo(path, "failed", epochs=len(history), files=files)
    holder = lock_holder(path) if probe_lock else None
    metrics = _read_json(path / "metrics.json") if "metrics.json" in files else None
    if holder is not None:
        info.state, info.pid = "running", holder
    elif isinstance(metrics, dict):
        info.state = "finished"
        info.best = dict(metrics.get("val") or {})
        info.reason = str(metrics.get("stop_reason", ""))
        return info
    else:
        state = status.get("state")
        if state == "running":
            info.state = "killed"
        elif state == "interrupted":
            info.state = "interrupted"
        elif state == "failed":
            info.reason = str(status.get("error", ""))
        else:
            info.reason = "status.json is missing or unreadable"
        info.resumable = "last.pt" in files or info.state in ("killed", "interrupted")
    best = [r for r in history if r.get("best")]
    if best and isinstance(best[-1].get("val"), dict):
        info.best = dict(best[-1]["val"])
    return info


def find_runs(root: str | os.PathLike[str], depth: int = 3) -> list[RunInfo]:
    """Every run folder at or below ``root`` (up to ``depth`` levels), sorted by path."""
    root = Path(root)
    found: list[RunInfo] = []

    def walk(p: Path, level: int) -> None:
        if (p / "config.yaml").is_file() or (p / "status.json").is_file():
            found.append(inspect(p))
            return
        if level >= depth:
            return
        try:
            children = sorted(c for c in p.iterdir() if c.is_dir() and not c.is_symlink())
        except OSError:
            return
        for child in children:
            walk(child, level + 1)

    walk(root, 0)
    return found
