"""Small file helpers shared by the run folder, checkpoints and graph files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "require_file", "write_json_atomic"]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    Readers never see a half-written file: it is either the old one or the complete new one.
    On an error the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike[str], data: Any, compact: bool = False) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (``compact``: no
    indentation or spaces, for large machine-read files). NumPy scalars and arrays are
    written as numbers and lists."""
    text = (json.dumps(data, separators=(",", ":"), default=_default) if compact
            else json.dumps(data, indent=2, default=_default))
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def require_file(path: str | os.PathLike[str], what: str,
                 error: type[Exception] | None = None) -> None:
    """Raise ``error`` (default :class:`~hypergraph.exceptions.DataError`) unless ``path`` is
    an existing file; the message says whether it is missing or a folder.

    Args:
        path: The file expected.
        what: How the message names it (e.g. ``"csv file 'a.csv'"``).
        error: Exception class to raise (a :class:`~hypergraph.exceptions.HyperGraphError`).
    """
    from hypergraph.exceptions import DataError

    p = Path(path)
    if p.is_file():
        return
    cls = error or DataError
    if p.is_dir():
        raise cls(f"{what} is a folder, expected a file; give the path of the file itself.")
    if p.exists():
        raise cls(f"{what} is not a regular file (a device, socket or pipe); give a file.")
    raise cls(f"{what} does not exist.")
