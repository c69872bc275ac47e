"""``hypergraph server``, ``hypergraph token``, ``hypergraph agent`` and the ``--server`` forms
of ``hypergraph sweep create`` / ``sweep show``.

FastAPI, uvicorn and httpx are imported inside the commands so ``hypergraph --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hypergraph.cli._app import app, console, err_console
from hypergraph.cli._sweep import sweep_app
from hypergraph.exceptions import ConfigError

token_app = typer.Typer(help="API tokens of the control server (admin or agent).",
                        no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(token_app, name="token")

_STORAGE = typer.Option(help="SQLAlchemy URL of the sweep storage (sqlite:///sweeps.db, "
                        "postgresql://user@host/db).")
_SERVER = typer.Option(help="URL of the control server (http://host:8765).")
_TOKEN = typer.Option(help="API token (or the environment variable HYPERGRAPH_TOKEN).",
                      envvar="HYPERGRAPH_TOKEN", show_envvar=False)


@app.command()
def server(
    storage: Annotated[str, _STORAGE],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; "
                                      "put a TLS reverse proxy in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8765,
    heartbeat: Annotated[int, typer.Option(
        min=1, help="Seconds between the heartbeats of a running trial (told to agents).")] = 5,
    grace: Annotated[int, typer.Option(
        min=2, help="Seconds without heartbeat before a trial is failed and retried.")] = 20,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Server processes on the one port (the server keeps no state: "
        "every claim is a transaction in the storage).")] = 1,
    prefetch: Annotated[int, typer.Option(
        min=0, max=1024, help="Trials of a random or grid sweep drawn ahead of the claims "
        "(never beyond its run_cap): claims take them without waiting on the sweep's lock, "
        "and on PostgreSQL the pool is filled again in the background when it runs low. "
        "0: each trial is drawn when it is claimed.")] = 64,
    group_window: Annotated[float, typer.Option(
        min=0.0, max=1000.0, help="Milliseconds a group of agents' results waits for more "
        "before it is written (PostgreSQL: the results and the agents' next trials of a "
        "group in one statement). 0: no wait; the results that arrive while a group is "
        "written form the next.")] = 0.0,
    group_max: Annotated[int, typer.Option(
        min=0, max=1024, help="Most results written in one group; 0: each alone.")] = 32,
) -> None:
    """Run the control server: agents take trials from it; the dashboard is at /.

    Admins create sweeps through it (`hypergraph sweep create --server`). Create tokens first
    with `hypergraph token create`.
    """
    import json
    import os

    import uvicorn

    from hypergraph.server import create_app
    from hypergraph.server._app import FACTORY_ENV

    options = {"storage_url": storage, "heartbeat_interval": heartbeat, "grace_period": grace,
               "prefetch": prefetch, "group_window": group_window / 1000.0,
               "group_max": group_max}
    application = create_app(**options)  # opens (and checks) the storage now
    err_console.print(f"HyperGraph control server on http://{host}:{port} (dashboard at /, "
                      f"API at /docs){f', {workers} processes' if workers > 1 else ''}")
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="warning")
        return
    os.environ[FACTORY_ENV] = json.dumps(options)  # read by each worker process
    uvicorn.run("hypergraph.server._app:app_from_env", factory=True, workers=workers,
                host=host, port=port, log_level="warning")


@token_app.command("create")
def token_create(
    storage: Annotated[str, _STORAGE],
    role: Annotated[str, typer.Option(help="admin (create/cancel/read sweeps) or agent "
                                      "(take and report trials).")] = "agent",
    name: Annotated[str, typer.Option(help="A name to recognise (and revoke) it by.")] = "",
) -> None:
    """Create a token and print it once (the storage keeps only its hash)."""
    from hypergraph.server import TokenStore

    token, who = TokenStore(storage).create(role, name)
    err_console.print(f"Token #{who.id} '{escape(who.name)}' ({who.role}); it is shown only "
                      "now:")
    console.print(token, markup=False, highlight=False)


@token_app.command("revoke")
def token_revoke(
    key: Annotated[str, typer.Argument(help="Token name, #ID, or the token itself.")],
    storage: Annotated[str, _STORAGE],
) -> None:
    """Revoke tokens (by name, #ID, or the token); the server refuses them within 2 s."""
    count = __import__("hypergraph.server", fromlist=["TokenStore"]).TokenStore(storage
                                                                                ).revoke(key)
    if count == 0:
        raise ConfigError(f"No live token matches '{key}' (see `hypergraph token list`).")
    console.print(f"Revoked {count} token(s).")


@token_app.command("list")
def token_list(storage: Annotated[str, _STORAGE]) -> None:
    """List tokens (names, roles, dates; never the secrets)."""
    from hypergraph.server import TokenStore

    table = Table()
    for col in ("id", "name", "role", "created", "revoked"):
        table.add_column(col)
    for row in TokenStore(storage).list():
        table.add_row(f"#{row['id']}", escape(row["name"]), row["role"],
                      f"{row['created_at']:%Y-%m-%d %H:%M}",
                      "" if row["revoked_at"] is None else f"{row['revoked_at']:%Y-%m-%d %H:%M}")
    console.print(table)


@app.command()
def agent(
    server: Annotated[str | None, _SERVER] = None,
    token: Annotated[str | None, _TOKEN] = None,
    storage: Annotated[str | None, typer.Option(
        help="Skip the server: work on this storage directly (a trusted network).")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only this sweep (default: any).")] = None,
    device: Annotated[str | None, typer.Option(
        help="Train every trial on this device (e.g. cuda:0).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folders go to "
                                      "OUT/<sweep>/trials/<number>.")] = Path("agent-runs"),
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between asks while every "
                                        "trial is held.")] = 1.0,
    max_trials: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")
                          ] = None,
    logger_: Annotated[list[str] | None, typer.Option(
        "--logger", help="Add a run logger to every trial, e.g. wandb (grouped by sweep).")
                       ] = None,
    patience: Annotated[float, typer.Option(
        min=0, help="Seconds to keep retrying while the server is unreachable.")] = 300.0,
) -> None:
    """Train trials of the control server's sweeps until none has work.

    Each trial: claim, train (heartbeats, every epoch's metric reported), send the result.
    SIGTERM/SIGINT give the running trial back. --storage skips the server.
    """
    from hypergraph.loggers import check_logger_names

    check_logger_names(list(logger_ or []))
    if storage is not None:
        _agent_on_storage(storage, sweep, out, device, max_trials, logger_)
        return
    if server is None or token is None:
        raise ConfigError("Give --server URL and --token (or HYPERGRAPH_TOKEN), or --storage "
                          "URL to work on a storage directly.")
    from hypergraph.server._agent import AgentClient, run_agent

    client = AgentClient(server, token, patience=patience)
    try:
        ran = run_agent(client, out, sweep=sweep, device=device, poll=poll,
                        max_trials=max_trials, loggers=logger_)
    finally:
        client.close()
    err_console.print(f"Agent done: {ran} trial(s) run here.")


def _agent_on_storage(storage: str, sweep: str | None, out: Path, device: str | None,
                      max_trials: int | None, loggers: list[str] | None) -> None:
    from hypergraph.sweeps import SweepStore, run_worker

    if device is not None:
        raise ConfigError("--device works with --server; with --storage, set 'device' in the "
                          "sweep file.")
    store = SweepStore(storage)
    ran = 0
    for name in [sweep] if sweep else store.names():
        spec = store.spec(name)
        left = None if max_trials is None else max_trials - ran
        if left is not None and left <= 0:
            break
        ran += run_worker(store, name, spec, out / name, loggers=loggers, max_trials=left)
    err_console.print(f"Agent done: {ran} trial(s) run here.")


def _client(server: str, token: str) -> Any:
    import httpx

    return httpx.Client(base_url=server.rstrip("/"), timeout=30.0,
                        headers={"Authorization": f"Bearer {token}"})


def _call(server: str, token: str, method: str, path: str, body: Any = None) -> Any:
    import httpx

    try:
        with _client(server, token) as http:
            resp = http.request(method, path, json=body)
    except httpx.TransportError as err:
        raise ConfigError(f"Cannot reach the server {server}: {err}") from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise ConfigError(f"The server refused ({resp.status_code}): {detail}")
    return resp.json()


@sweep_app.command("create")
def sweep_create(
    config: Annotated[Path, typer.Option("--config", "-c", help="Sweep file (W&B syntax).")],
    server: Annotated[str, _SERVER],
    token: Annotated[str, _TOKEN],
    name: Annotated[str | None, typer.Option(help="Sweep name (default: the file's name).")
                    ] = None,
) -> None:
    """Create a sweep on the control server (admin token); agents then take its trials."""
    import json

    from hypergraph.sweeps import load_sweep

    spec = load_sweep(config)  # checked here first: errors name the file
    raw = json.loads(spec.to_json())
    got = _call(server, token, "POST", "/api/sweeps",
                {"name": name or spec.name or config.stem, "spec": raw})
    console.print(f"Sweep '{escape(got['name'])}': {got['method']}, {got['budget']} trials, "
                  f"{got['finished']} finished. Start agents: hypergraph agent --server "
                  f"{escape(server)} --token AGENT_TOKEN")


def show_remote(server: str, token: str, name: str, top: int) -> None:
    """``hypergraph sweep show --server URL --token T --name NAME``: the leaderboard."""
    got = _call(server, token, "GET", f"/api/sweeps/{name}?top={top}")
    table = Table(title=f"Sweep {escape(name)}: {got['goal']} val.{got['metric']}")
    for col in ("#", "trial", "state", "value", "params", "worker"):
        table.add_column(col)
    for i, r in enumerate(got["leaderboard"]):
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r["params"].items())
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        table.add_row(str(i + 1), str(r["number"]), r["state"], value, escape(params),
                      escape(r["worker"]))
    console.print(table)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(got["counts"].items()))
    console.print(f"{got['finished']}/{got['budget']} finished"
                  f"{' (cancelled)' if got['cancelled'] else ''}; {counts}")
