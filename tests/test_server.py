"""The control server in-process (FastAPI's test client): tokens, roles, the trial protocol,
the fence, body limits, and the agent against a live server in a thread."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from hypergraph.server import TokenStore, create_app  # noqa: E402
from hypergraph.server._auth import hash_token  # noqa: E402

SPEC: dict[str, Any] = {
    "method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 3,
    "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                   "traversal": {"value": "random_walk"}, "trainer.epochs": {"value": 1},
                   "model.lr": {"distribution": "log_uniform_values", "min": 0.001,
                                "max": 0.1}}}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    app = create_app(url, heartbeat_interval=1, grace_period=3, maintain_every=0)
    tokens = TokenStore(url)
    admin, _ = tokens.create("admin", "boss")
    agent, _ = tokens.create("agent", "gpu1")
    other, _ = tokens.create("agent", "gpu2")
    client = TestClient(app)
    return {"url": url, "app": app, "client": client, "tokens": tokens,
            "admin": {"Authorization": f"Bearer {admin}"},
            "agent": {"Authorization": f"Bearer {agent}"},
            "other": {"Authorization": f"Bearer {other}"}, "admin_token": admin}


def test_tokens_stored_as_hashes_and_revocable(env: dict[str, Any]) -> None:
    import sqlalchemy as sa

    tokens: TokenStore = env["tokens"]
    token = env["admin_token"]
    with tokens.engine.connect() as conn:
        stored = [r.hash for r in conn.execute(sa.text("SELECT hash FROM hypergraph_tokens"))]
    assert hash_token(token) in stored and token not in stored
    c = env["client"]
    assert c.get("/api/sweeps", headers=env["admin"]).status_code == 200
    assert env["app"].state.tokens.revoke("boss") == 1  # the server's own store: no cache
    assert c.get("/api/sweeps", headers=env["admin"]).status_code == 401
    assert [t["revoked_at"] is not None for t in tokens.list()] == [True, False, False]


def test_auth_roles_and_limits(env: dict[str, Any]) -> None:
    c = env["client"]
    assert c.get("/api/health").json() == {"status": "ok"}
    assert c.get("/api/sweeps").status_code == 401
    assert c.get("/api/sweeps", headers={"Authorization": "Bearer hg_nope"}).status_code == 401
    assert c.get("/api/sweeps", headers=env["agent"]).status_code == 403
    assert c.post("/api/trials/claim", json={"agent": "a"},
                  headers=env["admin"]).status_code == 403
    big = {"name": "big", "spec": {"method": "random", "x": "y" * 300_000}}
    assert c.post("/api/sweeps", json=big, headers=env["admin"]).status_code == 413
    bad = c.post("/api/sweeps", json={"spec": {"method": "nope"}}, headers=env["admin"])
    assert bad.status_code == 422
    assert "/api/trials/claim" in c.get("/openapi.json").json()["paths"]
    assert "HyperGraph" in c.get("/").text


def _claim(c: TestClient, headers: dict[str, str], agent: str = "a:1") -> dict[str, Any]:
    r = c.post("/api/trials/claim", json={"agent": agent}, headers=headers)
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def test_protocol_budget_fence_and_ownership(env: dict[str, Any]) -> None:
    c, admin, agent, other = env["client"], env["admin"], env["agent"], env["other"]
    r = c.post("/api/sweeps", json={"name": "s1", "spec": SPEC}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["budget"] == 3
    held = [_claim(c, agent) for _ in range(3)]
    assert [h["status"] for h in held] == ["trial"] * 3
    assert _claim(c, agent)["status"] == "wait"  # every slot held by a running trial
    assert env["app"].state.service.needing_maintenance() == {"s1"}  # running trials
    t0, t1, t2 = held
    assert t0["config"]["dataset"]["name"] == "iris"
    url = f"/api/trials/{t0['trial_id']}"
    assert c.post(f"{url}/heartbeat", json={"lease": t0["lease"]},
                  headers=agent).json() == {"stop": False}
    assert c.post(f"{url}/heartbeat", json={"lease": t0["lease"]},
                  headers=other).status_code == 403  # someone else's trial
    assert c.post(f"{url}/heartbeat", json={"lease": t1["lease"]},
                  headers=agent).status_code == 409  # not this trial's lease
    rep = c.post(f"{url}/report", json={"lease": t0["lease"], "step": 1, "value": 0.5},
                 headers=agent)
    assert rep.status_code == 200 and rep.json()["prune"] is False
    live = c.get("/api/dashboard", headers=admin).json()["sweeps"][0]
    first = next(r for r in live["running"] if r["number"] == t0["number"])
    assert first["curve"] == [[1, 0.5]] and 0 <= first["last_beat_s"] < 30
    assert first["agent"] == "gpu1/a:1" and len(live["running"]) == 3
    done = {"lease": t0["lease"], "state": "complete", "value": 0.9}
    assert c.post(f"{url}/finish", json=done, headers=agent).json()["duplicate"] is False
    assert c.post(f"{url}/finish", json=done, headers=agent).json()["duplicate"] is True
    assert c.post(f"{url}/finish", json={**done, "value": 0.1},
                  headers=agent).status_code == 409
    # t1 is given back: failed, retried with the same parameters, its old lease refused
    u1 = f"/api/trials/{t1['trial_id']}"
    assert c.post(f"{u1}/release", json={"lease": t1["lease"]}, headers=agent).json()[
        "released"]
    assert c.post(f"{u1}/finish", json={"lease": t1["lease"], "state": "complete",
                                        "value": 1.0}, headers=agent).status_code == 409
    retry = _claim(c, other, "b:2")
    assert retry["params"] == t1["params"] and retry["number"] > t2["number"]
    # t2 goes stale: no heartbeat for the grace period, the server's maintenance fails it
    service = env["app"].state.service
    end = time.monotonic() + 15  # the database's clock has whole seconds on SQLite
    while time.monotonic() < end:
        time.sleep(0.5)
        c.post(f"/api/trials/{retry['trial_id']}/heartbeat", json={"lease": retry["lease"]},
               headers=other)
        service.maintain()
        if service.store.storage.get_trial(t2["trial_id"]).state.name == "FAIL":
            break
    u2 = f"/api/trials/{t2['trial_id']}"
    late = c.post(f"{u2}/finish", json={"lease": t2["lease"], "state": "complete",
                                        "value": 1.0}, headers=agent)
    assert late.status_code == 409  # the fence
    again = _claim(c, agent)
    assert again["params"] == t2["params"]
    for h, hdr in ((retry, other), (again, agent)):
        assert c.post(f"/api/trials/{h['trial_id']}/finish", json={
            "lease": h["lease"], "state": "complete", "value": 0.5}, headers=hdr).status_code \
            == 200
    assert _claim(c, agent)["status"] == "done"
    assert service.needing_maintenance() == set()  # nothing running, no slot to repair
    sweep = service.sweep("s1")  # slots used for good: 3 complete (the 2 failures retried)
    assert service.finished(sweep) == service.store.finished(sweep.study) == 3
    shown = c.get("/api/sweeps/s1", headers=admin).json()
    assert shown["finished"] == 3 and shown["counts"] == {"complete": 3, "fail": 2}
    assert shown["leaderboard"][0]["value"] == 0.9
    dash = c.get("/api/dashboard", headers=admin).json()
    assert dash["sweeps"][0]["name"] == "s1"
    assert c.post("/api/sweeps/s1/cancel", headers=admin).json()["cancelled"] is True
    assert c.get("/api/sweeps/nope", headers=admin).status_code == 404
    # the same sweep again is the same sweep; another file under its name is refused
    assert c.post("/api/sweeps", json={"name": "s1", "spec": SPEC}, headers=admin).status_code \
        == 201
    assert c.post("/api/sweeps", json={"name": "s1", "spec": {**SPEC, "run_cap": 4}},
                  headers=admin).status_code == 409


def _serve(app: Any) -> tuple[Any, str]:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def test_agent_runs_a_sweep_through_the_server(env: dict[str, Any], tmp_path: Path) -> None:
    from hypergraph.server import AgentClient, run_agent

    c = env["client"]
    c.post("/api/sweeps", json={"name": "s2", "spec": SPEC}, headers=env["admin"])
    server, base = _serve(env["app"])
    try:
        token = env["agent"]["Authorization"].split()[1]
        client = AgentClient(base, token, patience=5)
        assert run_agent(client, tmp_path / "runs", poll=0.1) == 3
        client.close()
    finally:
        server.should_exit = True
    shown = c.get("/api/sweeps/s2", headers=env["admin"]).json()
    assert shown["counts"] == {"complete": 3} and shown["finished"] == 3
    runs = sorted(p.name for p in (tmp_path / "runs" / "s2" / "trials").iterdir())
    assert runs == ["0", "1", "2"]
    assert all(r["worker"].startswith("gpu1/") for r in shown["leaderboard"])


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from hypergraph.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tokens_sweep_create_show_and_storage_agent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    code, out, _ = _cli(["token", "create", "--storage", url, "--role", "admin", "--name",
                         "me"], capsys)
    assert code == 0
    admin = out.strip()
    assert admin.startswith("hg_")
    code, out, err = _cli(["token", "create", "--storage", url, "--role", "boss"], capsys)
    assert code == 2 and "Unknown role" in err
    app = create_app(url, maintain_every=0)
    server, base = _serve(app)
    try:
        (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({**SPEC, "run_cap": 2}))
        code, out, err = _cli(["sweep", "create", "-c", str(tmp_path / "sweep.yaml"),
                               "--server", base, "--token", admin, "--name", "cli"], capsys)
        assert code == 0, err
        assert "2 trials" in out
        code, out, err = _cli(["sweep", "create", "-c", str(tmp_path / "sweep.yaml"),
                               "--server", base, "--token", "hg_bad"], capsys)
        assert code == 2 and "401" in err and "Traceback" not in err
        # an agent on the storage directly (no server), then the leaderboard via the server
        code, out, err = _cli(["agent", "--storage", url, "--out", str(tmp_path / "runs")],
                              capsys)
        assert code == 0, err
        assert "2 trial(s)" in err
        code, out, err = _cli(["sweep", "show", "--server", base, "--token", admin,
                               "--name", "cli"], capsys)
        assert code == 0, err
        assert "2/2 finished" in out and "complete" in out
        code, out, err = _cli(["token", "revoke", "me", "--storage", url], capsys)
        assert code == 0 and "Revoked 1" in out
        code, out, err = _cli(["token", "list", "--storage", url], capsys)
        assert code == 0 and "me" in out and "admin" in out
        code, out, err = _cli(["agent", "--out", str(tmp_path / "runs")], capsys)
        assert code == 2 and "--server" in err
    finally:
        server.should_exit = True


def test_finish_carries_the_next_claim_and_the_fast_path_answers_as_fastapi(
        env: dict[str, Any]) -> None:
    """``next`` in a finish body hands out the agent's next trial in the same request, only
    once the result is recorded; the agents' routes answered before FastAPI's routing give
    the same answers, and every case they do not take (no token, the wrong role, a token not
    cached yet, an invalid body) gets FastAPI's own 401/403/422."""
    c, admin, agent, other = env["client"], env["admin"], env["agent"], env["other"]
    assert c.post("/api/sweeps", json={"name": "nx", "spec": SPEC},
                  headers=admin).status_code == 201
    first = _claim(c, agent)
    ask = {"agent": "a:1", "sweep": "nx"}
    url = f"/api/trials/{first['trial_id']}/finish"
    # refused results hand out nothing: wrong lease (409), someone else's trial (403)
    wrong = c.post(url, json={"lease": "0" * 32, "state": "complete", "value": 0.5,
                              "next": ask}, headers=agent)
    assert wrong.status_code == 409 and "next" not in wrong.json()
    assert c.post(url, json={"lease": first["lease"], "state": "complete", "value": 0.5,
                             "next": ask}, headers=other).status_code == 403
    assert c.post(url, json={"lease": first["lease"], "state": "complete", "value": 0.5,
                             "next": {"agent": ""}}, headers=agent).status_code == 422
    shown = c.get("/api/sweeps/nx", headers=admin).json()
    assert shown["counts"].get("running") == 1 and shown["finished"] == 0
    done = c.post(url, json={"lease": first["lease"], "state": "complete", "value": 0.5,
                             "next": ask}, headers=agent).json()
    assert done["recorded"] and not done["duplicate"]
    second = done["next"]
    assert second["status"] == "trial" and second["number"] == first["number"] + 1
    assert second["sweep"] == "nx" and set(second["params"]) == {"model.lr"}
    held = c.post(f"/api/trials/{second['trial_id']}/heartbeat",
                  json={"lease": second["lease"]}, headers=agent)
    assert held.json() == {"stop": False}
    third = _claim(c, agent)
    # the budget is held: the next claim answers wait; then done once all are finished
    url2 = f"/api/trials/{second['trial_id']}/finish"
    waiting = c.post(url2, json={"lease": second["lease"], "state": "pruned", "next": ask},
                     headers=agent).json()
    assert waiting["recorded"] and waiting["next"] == {"status": "wait"}
    last = c.post(f"/api/trials/{third['trial_id']}/finish", json={
        "lease": third["lease"], "state": "complete", "value": 0.9, "next": ask},
        headers=agent).json()
    assert last["next"] == {"status": "done"}
    unknown = c.post(url2, json={"lease": second["lease"], "state": "pruned",
                                 "next": {"agent": "a:1", "sweep": "gone"}},
                     headers=agent).json()
    assert unknown["duplicate"] and unknown["next"]["status"] == "refused"
    assert unknown["next"]["code"] == 404
    # what the fast path leaves to FastAPI
    assert c.post("/api/trials/claim", json={"agent": "a:1"}).status_code == 401
    assert c.post("/api/trials/claim", json={"agent": "a:1"},
                  headers={"Authorization": "Bearer hg_nope"}).status_code == 401
    assert c.post("/api/trials/claim", json={"agent": "a:1"},
                  headers=admin).status_code == 403
    assert c.post("/api/trials/claim", content=b"{", headers={
        **agent, "Content-Type": "application/json"}).status_code == 422
    assert c.post("/api/trials/claim", json={"agent": "a:1", "extra": 1},
                  headers=agent).status_code == 422
    assert c.post("/api/trials/99999999999/heartbeat", json={"lease": "0" * 32},
                  headers=agent).status_code == 422
    fresh, _ = env["tokens"].create("agent", "gpu3")  # not in the server's cache yet
    assert c.post("/api/trials/claim", json={"agent": "a:1", "sweep": "nx"}, headers={
        "Authorization": f"Bearer {fresh}"}).json() == {"status": "done"}


def test_dashboard_reads_only_the_sweeps_still_moving(env: dict[str, Any]) -> None:
    """A sweep done with nothing running or queued cannot change: the dashboard keeps its
    entry and reads its trials no more; a sweep with trials running is read on every poll."""
    service = env["app"].state.service
    service.create(SPEC, "over")
    service.create({**SPEC, "run_cap": 2}, "moving")
    for _ in range(3):
        got = service.claim("a:1", 1, "over")
        service.finish(got["trial_id"], got["lease"], 1, "complete", 0.5, None)
    held = service.claim("a:1", 1, "moving")
    first = {s["name"]: s for s in service.dashboard()["sweeps"]}
    assert first["over"]["finished"] == 3 and len(first["over"]["leaderboard"]) == 3
    assert [r["number"] for r in first["moving"]["running"]] == [held["number"]]
    reads: list[str] = []
    for name in ("over", "moving"):
        study = service.sweep(name).study
        real = study.get_trials

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            reads.append(_name)
            return _real(*args, **kwargs)

        study.get_trials = counted  # type: ignore[method-assign]
    service.finish(held["trial_id"], held["lease"], 1, "complete", 0.7, None)
    again = {s["name"]: s for s in service.dashboard()["sweeps"]}
    assert again["over"] == first["over"] and "over" not in reads
    assert reads.count("moving") == 1  # once per poll (describe and leaderboard share it)
    assert again["moving"]["running"] == [] and again["moving"]["finished"] == 1
