"""W&B through sweeps: one agent trains trials of two sweeps in turn; each trial's offline W&B
run is grouped by its own sweep (a group kept in the environment stuck at the first one)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hypergraph.loggers import WandbLogger, read_wandb_run, wandb_group
from hypergraph.server import AgentClient, TokenStore, create_app, run_agent


def _spec(model: str) -> dict[str, Any]:
    return {"method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"},
            "run_cap": 1, "parameters": {"seed": {"value": 0}, "dataset": {"value": "iris"},
                                         "model": {"value": model},
                                         "trainer.epochs": {"value": 1}}}


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "wandb-home"
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR",
                "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(key, str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)


def _serve(app: Any) -> tuple[Any, str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.usefixtures("offline_wandb")
def test_agent_groups_each_trial_by_its_own_sweep(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    app = create_app(url, heartbeat_interval=1, grace_period=30, maintain_every=0)
    service = app.state.service
    service.create(_spec("mlp"), "first")  # the agent takes the oldest sweep's work first
    service.create(_spec("logreg"), "second")
    token = TokenStore(engine=service.store.engine).create("agent", "wb")[0]
    server, base = _serve(app)
    client = AgentClient(base, token, patience=10)
    try:
        ran = run_agent(client, tmp_path / "runs", poll=0.1, loggers=["wandb"])
    finally:
        client.close()
        server.should_exit = True
    assert ran == 2
    for sweep, model in (("first", "mlp"), ("second", "logreg")):
        run = read_wandb_run(tmp_path / "runs" / sweep / "trials" / "0" / "wandb")
        assert run["run"]["group"] == sweep
        assert run["config"]["model"]["name"] == model  # the trial of that sweep
        assert run["history"]  # its epoch was logged


@pytest.mark.usefixtures("offline_wandb")
def test_wandb_group_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit group wins over the enclosing wandb_group, which wins over the environment;
    the context ends with its block."""
    from hypergraph.loggers._wandb import _GROUP

    monkeypatch.setenv("WANDB_RUN_GROUP", "from-env")
    with wandb_group("sweep-a"):
        assert _GROUP.get() == "sweep-a"
        with wandb_group("sweep-b"):
            assert _GROUP.get() == "sweep-b"
        assert _GROUP.get() == "sweep-a"
    assert _GROUP.get() is None
    assert WandbLogger(group="mine").group == "mine"
