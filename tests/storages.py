"""The sweep storages the multi-process tests run on: SQLite always, PostgreSQL in CI.

PostgreSQL (127.0.0.1:5432, user postgres, database test) is started by this machine kind and
by ``.ci/run``; outside CI the PostgreSQL cases skip with a reason when it is not reachable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_available() -> bool:
    """Whether a PostgreSQL server answers at 127.0.0.1:5432."""
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                             connect_timeout=3):
            return True
    except Exception:  # any failure to connect means: no server here
        return False


#: ``@pytest.mark.parametrize("backend", BACKENDS)``: "sqlite", and "postgresql" (skipped
#: outside CI when no server answers). The PostgreSQL cases share one database, and a control
#: server fails the stale trials of every sweep in its storage, so they run one at a time on
#: one xdist worker (``--dist loadgroup``).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=[
    pytest.mark.skipif(not os.environ.get("CI") and not pg_available(),
                       reason="PostgreSQL is not reachable at 127.0.0.1:5432 (the test runs "
                       "in CI, CI=true)"),
    pytest.mark.xdist_group("postgresql")])]


def storage_url(backend: str, folder: Path, name: str = "sweep.db") -> str:
    """The storage URL of ``backend``: an SQLite file in ``folder``, or the PostgreSQL test
    database."""
    return f"sqlite:///{folder / name}" if backend == "sqlite" else PG_URL


_STORAGES: dict[str, Any] = {}


def sweep_trials(url: str, name: str) -> list[Any]:
    """The trials of the sweep ``name``, read through one Optuna storage per URL.

    A new storage per poll would open a new engine each time, and its pooled PostgreSQL
    connections stay open until the engine is collected: a test polling ten times a second
    ran the server out of connections ("too many clients").
    """
    import optuna

    from hypergraph.sweeps._store import _open_rdb

    if url not in _STORAGES:  # tried again if a sweep's process creates it at this moment
        _STORAGES[url] = _open_rdb(url.replace("postgresql://", "postgresql+psycopg://"),
                                   {}, {})
    return optuna.load_study(study_name=name, storage=_STORAGES[url]).get_trials(
        deepcopy=False)
