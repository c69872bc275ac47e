"""Small file helpers shared by the run folder, checkpoints and graph files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "require_file"]


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
