"""ACE through the control server: real processes train an ACE sweep to exactly its budget,
and ``GET /api/sweeps/{name}/ace`` answers predictions of the untried combinations (cached
until the count of complete trials changes)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from hypergraph.server import TokenStore, create_app
from hypergraph.sweeps import SweepStore, sweep_from_mapping
from storages import sweep_trials

RUN_CAP = 5
#: 2 models x 4 traversals x 2 managers = 16 valid combinations on iris's kNN graph.
ACE_SPEC: dict[str, Any] = {
    "method": "ace", "metric": {"name": "val.accuracy", "goal": "maximize"},
    "run_cap": RUN_CAP,
    "parameters": {"seed": {"value": 0}, "dataset": {"value": "iris"},
                   "model": {"values": ["mlp", "logreg"]},
                   "traversal": {"values": ["comprehensive", "random_walk", "uniform",
                                            "loss_topk"]},
                   "manager": {"values": ["static", "reweight"]},
                   "trainer.epochs": {"value": 1}}}
RANDOM_SPEC: dict[str, Any] = {
    "method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 2,
    "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                   "trainer.epochs": {"value": 1}}}
CLI = [sys.executable, "-c", "from hypergraph.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _logs(folder: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                     for p in sorted(folder.glob("*.log")))


def test_agents_train_an_ace_sweep_and_the_ace_route_predicts(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    tokens = TokenStore(url)
    admin, agent = tokens.create("admin", "boss")[0], tokens.create("agent", "gpu")[0]
    tokens.engine.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: str, extra: dict[str, str] | None = None) -> Any:
        out = open(tmp_path / log, "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen([*CLI, *args], env={**env, **(extra or {})},
                                      stdout=out, stderr=subprocess.STDOUT))
        return procs[-1]

    hdr = {"Authorization": f"Bearer {admin}"}
    store = SweepStore(url)  # the sweep exists before the processes start: they start at once
    store.create("ace", sweep_from_mapping(ACE_SPEC))
    store.engine.dispose()
    store.storage.engine.dispose()
    try:
        server = start(["server", "--storage", url, "--port", str(port), "--heartbeat", "1",
                        "--grace", "20"], "server.log")
        agents = [start(["agent", "--server", base, "--out", str(tmp_path / "runs"),
                         "--poll", "0.2", "--patience", "60"], f"agent-{i}.log",
                        {"HYPERGRAPH_TOKEN": agent}) for i in range(2)]
        for p in agents:  # each ends by itself once the sweep's budget is used up
            assert p.wait(timeout=150) == 0, _logs(tmp_path)
        assert server.poll() is None, _logs(tmp_path)
        trials = sweep_trials(url, "ace")
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == RUN_CAP, _logs(tmp_path)
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        assert {t.user_attrs["hypergraph_worker"] for t in complete}  # trained by agents

        first = httpx.get(f"{base}/api/sweeps/ace/ace", params={"top": 50}, headers=hdr,
                          timeout=60)
        assert first.status_code == 200, first.text
        rep = first.json()
        assert rep["ace"] is True and rep["complete"] == RUN_CAP
        assert rep["n_observations"] == RUN_CAP and rep["cached"] is False
        tried = {tuple(sorted(t.params[k] for k in ("model", "traversal", "manager")))
                 for t in complete}
        assert rep["n_untried"] == 16 - len(tried) and len(rep["untried"]) == rep["n_untried"]
        for row in rep["untried"]:
            assert tuple(sorted(row["combo"].values())) not in tried
            assert math.isfinite(row["mean"]) and math.isfinite(row["std"]) and row["std"] > 0
        means = [row["mean"] for row in rep["untried"]]
        assert means == sorted(means, reverse=True)  # best predicted first
        assert set(rep["effects"]["main"]) == {"model", "traversal", "manager"}
        assert rep["best_observed"]["value"] == pytest.approx(max(t.value for t in complete))
        # the same count of complete trials: the cached report, not a new fit
        again = httpx.get(f"{base}/api/sweeps/ace/ace", params={"top": 3}, headers=hdr,
                          timeout=60).json()
        assert again["cached"] is True and again["untried"] == rep["untried"][:3]
        # other sweeps: a clear empty answer; unknown: 404; an agent token: 403
        httpx.post(f"{base}/api/sweeps", headers=hdr, timeout=30,
                   json={"name": "rnd", "spec": RANDOM_SPEC}).raise_for_status()
        other = httpx.get(f"{base}/api/sweeps/rnd/ace", headers=hdr, timeout=30).json()
        assert other["ace"] is False and other["untried"] == [] and other["effects"] is None
        assert "method: ace" in other["message"]
        assert httpx.get(f"{base}/api/sweeps/nope/ace", headers=hdr,
                         timeout=30).status_code == 404
        assert httpx.get(f"{base}/api/sweeps/ace/ace", timeout=30,
                         headers={"Authorization": f"Bearer {agent}"}).status_code == 403
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_ace_report_is_refitted_only_when_complete_trials_change(tmp_path: Path) -> None:
    """In-process: the report is recomputed when a trial completes, not when one starts."""
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    app = create_app(url, heartbeat_interval=1, grace_period=30, maintain_every=0)
    service, aces = app.state.service, app.state.ace
    service.create(ACE_SPEC, "ace")
    got = [service.claim("a:1", 1, "ace") for _ in range(3)]
    for g, value in zip(got[:2], (0.9, 0.7), strict=True):
        service.finish(g["trial_id"], g["lease"], 1, "complete", value, None)
    first = aces.report("ace")
    assert first["cached"] is False and first["n_observations"] == 2
    running = {k: got[2]["params"][k] for k in ("model", "traversal", "manager")}
    assert [row["running"] for row in first["untried"] if row["combo"] == running] == [True]
    assert aces.report("ace")["cached"] is True
    service.claim("a:1", 1, "ace")  # a trial starts: still cached
    assert aces.report("ace")["cached"] is True
    service.finish(got[2]["trial_id"], got[2]["lease"], 1, "complete", 0.8, None)
    third = aces.report("ace")  # a trial completed: fitted again
    assert third["cached"] is False and third["n_observations"] == third["complete"] == 3
    assert len(third["untried"]) == 20 or len(third["untried"]) == third["n_untried"]
    service.store.engine.dispose()
