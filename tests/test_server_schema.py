"""schemathesis against the control server's OpenAPI spec (ASGI, in-process).

For every operation and generated request: no 5xx with the right token; 401 without a token
(every route but ``/api/health``); 403 with a token of the wrong role.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from hypergraph.server import TokenStore, create_app  # noqa: E402

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

SPEC: dict[str, Any] = {
    "method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 50,
    "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                   "trainer.epochs": {"value": 1},
                   "model.lr": {"distribution": "log_uniform_values", "min": 0.001,
                                "max": 0.1}}}

ACE_SPEC: dict[str, Any] = {
    "method": "ace", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 4,
    "parameters": {"dataset": {"value": "iris"}, "model": {"values": ["mlp", "logreg"]},
                   "trainer.epochs": {"value": 1}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("schema")
    url = f"sqlite:///{tmp / 'sweeps.db'}"
    app = create_app(url, heartbeat_interval=1, grace_period=3, maintain_every=0)
    tokens = TokenStore(url)
    admin, agent = tokens.create("admin")[0], tokens.create("agent")[0]
    app.state.service.create(SPEC, "s")  # a sweep to find, claim from and report on
    app.state.service.create(ACE_SPEC, "a")  # an ACE sweep for GET /api/sweeps/{name}/ace
    return {"app": app, "admin": {"Authorization": f"Bearer {admin}"},
            "agent": {"Authorization": f"Bearer {agent}"}}


def _check(case: Any, served: dict[str, Any]) -> None:
    path = case.operation.path
    role = "agent" if path.startswith("/api/trials") else "admin"
    wrong = "admin" if role == "agent" else "agent"
    case.call_and_validate(headers=dict(served[role]), checks=[not_a_server_error])
    if path == "/api/health":
        return
    assert case.call().status_code == 401
    bad = case.call(headers={"Authorization": "Bearer hg_forged"})
    assert bad.status_code == 401
    assert bad.headers.get("www-authenticate") == ["Bearer"]
    assert case.call(headers=dict(served[wrong])).status_code == 403


def test_openapi_no_5xx_and_auth_everywhere(served: dict[str, Any]) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", served["app"])
    seen = []
    for result in api.get_all_operations():
        operation = result.ok()
        seen.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            _check(case, served)

        run()
    assert len(seen) == 12, seen  # every route of the spec was exercised
    assert "GET /api/sweeps/{name}/ace" in seen


def test_ace_route_answers_ace_and_other_sweeps(served: dict[str, Any]) -> None:
    """The generated names rarely hit a sweep: the two real answers of the ACE route, and its
    401/403, asked for explicitly."""
    with TestClient(served["app"]) as client:
        ace = client.get("/api/sweeps/a/ace", headers=served["admin"])
        assert ace.status_code == 200 and ace.json()["ace"] is True
        assert {tuple(r["combo"].values()) for r in ace.json()["untried"]} == {
            ("mlp",), ("logreg",)}  # nothing tried yet: both, with the prior's std
        other = client.get("/api/sweeps/s/ace", headers=served["admin"]).json()
        assert other["ace"] is False and other["untried"] == []
        assert client.get("/api/sweeps/a/ace", params={"top": 0},
                          headers=served["admin"]).status_code == 422
        assert client.get("/api/sweeps/a/ace").status_code == 401
        assert client.get("/api/sweeps/a/ace", headers=served["agent"]).status_code == 403
