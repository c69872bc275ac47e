"""The control server (FastAPI) and its agents: sweeps on many machines through one door.

* :func:`create_app` builds the server for a sweep storage: authenticated routes to create,
  cancel and read sweeps (admin tokens) and to claim, beat, report on and finish trials (agent
  tokens), stale-trial maintenance in the background, and the dashboard at ``/``.
* :class:`TokenStore` creates and revokes tokens (the storage keeps only their SHA-256).
* :func:`run_agent` is the remote worker: it claims trials from a server and trains them.

The server holds no state of its own: every claim, lease and result lives in the sweep storage
(:class:`~hypergraph.sweeps.SweepStore`). FastAPI and httpx are imported by the submodules only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ROLES", "AgentClient", "Principal", "SweepService", "TokenStore", "create_app",
           "register_panel", "run_agent"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hypergraph.server._app import create_app
        return create_app
    if name in ("AgentClient", "run_agent"):
        from hypergraph.server import _agent
        return getattr(_agent, name)
    if name in ("SweepService", "register_panel"):
        from hypergraph.server import _service
        return getattr(_service, name)
    if name in ("ROLES", "Principal", "TokenStore"):
        from hypergraph.server import _auth
        return getattr(_auth, name)
    raise AttributeError(name)
