"""Trial hand-out throughput of the control server: 16 concurrent agents, no training.

A hand-out is ``claim`` then ``finish`` (state complete, a random value) until the sweep's
budget is used up; every arm checks that exactly ``run_cap`` trials finished. Paths measured in
the same run, on the same kind of storage:

* ``old`` (unless ``--skip-old``): the earlier path (a slot INSERT, Optuna's ``study.ask``,
  attach, suggest, attributes, ``study.tell``: several commits per hand-out);
* ``one-tx``: :mod:`hypergraph.sweeps._handout` drawing each trial when it is claimed (one
  transaction under the sweep's lock to claim, one to finish; ``--prefetch 0``): the baseline
  of the ratios;
* ``pool``: trials drawn ahead (``--prefetch``, default 64) and claimed without the sweep's
  lock (PostgreSQL: ``FOR UPDATE SKIP LOCKED``);
* ``pool + finish&claim``: the same, with the agent's next claim riding on its finish request
  (one request per hand-out instead of two, as ``hypergraph agent`` does).

Arms: without HTTP (16 threads calling the server's ``SweepService`` in this process, SQL
statements and commits counted per hand-out) and through a real ``hypergraph server`` process
(16 agents as coroutines of one client process, each on its own kept-alive connection through
a minimal HTTP/1.1 client, :class:`RawClient`; ``--client httpx`` for httpx, whose CPU per
request is about ten times as much; ``--server-workers N`` adds a run with N server
processes). CPU per hand-out: the server process's (its workers' included; without HTTP, this
process's), the client agents' and, on PostgreSQL, the local database server's (every
``postgres`` process); on a loaded machine it says more about capacity than hand-outs/s do.
``--dashboard 40`` measures a dashboard poll over 40 finished sweeps and one running instead.
``--group-only`` measures the agents' finish-and-claim requests alone (``--group-max 0``, the
baseline) against group commit (PostgreSQL: one statement per group); ``--pruned 0.5`` has
the agents finish half of the trials as pruned (grouped too). Run::

    nice -n 5 .venv/bin/python benchmarks/server_bench.py --trials 400
    nice -n 5 .venv/bin/python benchmarks/server_bench.py --trials 400 \\
        --storage postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/server_bench.py --trials 400 --group-only \\
        --storage postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))


def spec(trials: int) -> dict[str, Any]:
    """A random sweep of ``trials`` trials over one parameter (drawing is not the point)."""
    return {"method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"},
            "run_cap": trials,
            "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                           "model.lr": {"distribution": "log_uniform_values", "min": 1e-4,
                                        "max": 0.1}}}


@contextmanager
def counted(engines: list[Any]) -> Iterator[dict[str, int]]:
    """Count SQL statements and commits on ``engines`` while the block runs."""
    import sqlalchemy as sa

    counts = {"statements": 0, "commits": 0}
    lock = threading.Lock()

    def on_statement(conn: Any, *args: Any) -> None:
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        with lock:
            counts["statements"] += 1
            counts["commits"] += autocommit  # a statement that is its own transaction

    def on_commit(*args: Any) -> None:
        with lock:
            counts["commits"] += 1

    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", on_statement)
        sa.event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", on_statement)
            sa.event.remove(engine, "commit", on_commit)


def in_process(url: str, trials: int, agents: int, fast: bool, prefetch: int = 64,
               combined: bool = False, group: int = 0, window: float = 0.0,
               pruned: float = 0.0) -> dict[str, float]:
    """Hand-outs per second from the server's SweepService in this process (no HTTP).

    ``combined``: each finish carries the next claim; ``group`` > 0: the agents are
    coroutines of one event loop whose finishes go through the server's group commit
    (:class:`~hypergraph.server._group.FinishGroups`, at most ``group`` per group), as the
    server's agent routes do."""
    from hypergraph.server import create_app

    app = create_app(url, maintain_every=0, fast=fast, prefetch=prefetch, group_max=group,
                     group_window=window / 1000.0)
    service = app.state.service
    if group:
        return _in_loop(app, url, trials, agents, pruned)
    name = f"bench-{'new' if fast else 'old'}-{uuid.uuid4().hex[:8]}"
    service.create(spec(trials), name)
    engines = [service.store.engine, service.store.storage.engine]
    if service.handout is not None:
        engines.append(service.handout.engine)
    done: list[int] = []
    errors: list[BaseException] = []

    def agent(i: int) -> None:
        rng = random.Random(i)
        try:
            while True:
                got = service.claim(f"bench:{i}", 1, name)
                if got["status"] == "done":
                    return
                if got["status"] == "wait":
                    time.sleep(0.01)
                    continue
                ask = (f"bench:{i}", name) if combined else None
                answer = service.finish(got["trial_id"], got["lease"], 1,
                                        _state(got["number"], pruned), rng.random(), None, ask)
                done.append(1)
                while combined:  # the next trial came with the answer
                    got = answer["next"]
                    if got["status"] != "trial":
                        break
                    answer = service.finish(got["trial_id"], got["lease"], 1,
                                            _state(got["number"], pruned), rng.random(), None,
                                            ask)
                    done.append(1)
                if combined and got["status"] == "done":
                    return
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(agents)]
    with counted(engines) as counts:
        start, cpu, db = time.perf_counter(), time.process_time(), _database_cpu()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        db = _database_cpu() - db
    if errors:
        raise errors[0]
    shown = service.describe(name)
    assert len(done) == trials == shown["finished"] == _results(shown), shown
    if service.handout is not None:
        service.handout.dispose()
    service.store.engine.dispose()
    return {"rate": trials / wall, "statements": counts["statements"] / trials,
            "commits": counts["commits"] / trials, "server_cpu": 1000 * cpu / trials,
            "db_cpu": 1000 * db / trials}


def _state(number: int, pruned: float) -> str:
    """The result an agent sends for trial ``number``: ``pruned`` for a share ``pruned`` of
    the trials (spread evenly over the numbers, the same in every arm), else ``complete``."""
    return "pruned" if (number * 0.6180339887) % 1.0 < pruned else "complete"


def _results(shown: dict[str, Any]) -> int:
    """Trials finished complete or pruned, as ``sweep show`` counts them."""
    return int(shown["counts"].get("complete", 0)) + int(shown["counts"].get("pruned", 0))


def _in_loop(app: Any, url: str, trials: int, agents: int, pruned: float = 0.0
             ) -> dict[str, float]:
    """:func:`in_process` with the agents as coroutines and grouped finishes."""
    from hypergraph.server._service import FinishRequest

    service, groups = app.state.service, app.state.groups
    assert groups is not None, "grouped finishes need PostgreSQL"
    name = f"bench-group-{uuid.uuid4().hex[:8]}"
    service.create(spec(trials), name)
    engines = [service.store.engine, service.store.storage.engine, service.handout.engine]
    done: list[int] = []

    async def agent(i: int) -> None:
        rng = random.Random(i)
        ask = (f"bench:{i}", name)
        got = await asyncio.to_thread(service.claim, ask[0], 1, name)
        while True:
            if got["status"] == "done":
                return
            if got["status"] == "wait":
                await asyncio.sleep(0.01)
                got = await asyncio.to_thread(service.claim, ask[0], 1, name)
                continue
            answer = await groups.finish(FinishRequest(
                got["trial_id"], got["lease"], 1, _state(got["number"], pruned), rng.random(),
                None, ask))
            done.append(1)
            got = answer["next"]

    async def run() -> None:
        await asyncio.gather(*(agent(i) for i in range(agents)))

    with counted(engines) as counts:
        start, cpu, db = time.perf_counter(), time.process_time(), _database_cpu()
        asyncio.run(run())
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        db = _database_cpu() - db
    shown = service.describe(name)
    assert len(done) == trials == shown["finished"] == _results(shown), shown
    service.handout.dispose()
    service.store.engine.dispose()
    return {"rate": trials / wall, "statements": counts["statements"] / trials,
            "commits": counts["commits"] / trials, "server_cpu": 1000 * cpu / trials,
            "db_cpu": 1000 * db / trials, "group": groups.requests / max(groups.groups, 1)}


class RawClient:
    """A minimal HTTP/1.1 client for the benchmark's agents: one kept-alive connection, the
    same requests as ``hypergraph agent`` makes (JSON bodies, bearer token), no more.

    httpx spends about 2 ms of CPU per request, as much as the server; on a machine where
    the agents share the server's cores, that CPU is taken from the server and the
    benchmark measures its own client. Real agents spend seconds to hours per trial.
    """

    def __init__(self, base: str, token: str) -> None:
        host, port = base.split("://", 1)[1].rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.head = (f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST ``body`` as JSON; ``(status, decoded JSON answer)``."""
        import json

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.head
                          + str(len(data)).encode() + b"\r\n\r\n" + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        answer = await self.reader.readexactly(length)
        return status, json.loads(answer) if answer else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


class HttpxClient:
    """The agents' requests through one shared ``httpx.AsyncClient`` (``--client httpx``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = await self.client.post(path, json=body)
        return r.status_code, r.json()

    async def close(self) -> None:
        pass


async def _agent(client: RawClient | HttpxClient, name: str, sweep: str, counts: list[int],
                 combined: bool, pruned: float = 0.0) -> None:
    ask = {"agent": name, "sweep": sweep}
    got = None
    try:
        while True:
            if got is None:
                status, got = await client.post("/api/trials/claim", ask)
                assert status == 200, got
            if got["status"] == "done":
                return
            if got["status"] == "wait":
                await asyncio.sleep(0.01)
                got = None
                continue
            body = {"lease": got["lease"], "state": _state(got["number"], pruned),
                    "value": random.random()}
            if combined:  # the result and the next claim in one request
                body["next"] = ask
            status, answer = await client.post(f"/api/trials/{got['trial_id']}/finish", body)
            assert status == 200, answer
            counts.append(1)
            got = answer.get("next")
    finally:
        await client.close()


async def _drive(base: str, token: str, admin: str, trials: int, agents: int,
                 combined: bool, meter: Callable[[], tuple[float, ...]], pruned: float = 0.0,
                 client: str = "raw") -> tuple[float, tuple[float, ...]]:
    """Hand-outs per second of ``agents`` agents through the server at ``base``, and what
    ``meter`` (CPU seconds of the server, the database, this process) counted while they ran:
    the sweep's creation before and its ``show`` after (which reads every trial) are not
    hand-outs."""
    import httpx

    name = f"bench-http-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=base, timeout=120,
                                 headers={"Authorization": f"Bearer {admin}"}) as adm:
        r = await adm.post("/api/sweeps", json={"name": name, "spec": spec(trials)})
        assert r.status_code == 201, r.text
    counts: list[int] = []
    limits = httpx.Limits(max_connections=agents)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as shared:
        clients = [RawClient(base, token) if client == "raw" else HttpxClient(shared)
                   for _ in range(agents)]
        before, start = meter(), time.perf_counter()
        await asyncio.gather(*(_agent(c, f"bench:{i}", name, counts, combined, pruned)
                               for i, c in enumerate(clients)))
        wall, after = time.perf_counter() - start, meter()
    async with httpx.AsyncClient(base_url=base, timeout=120,
                                 headers={"Authorization": f"Bearer {admin}"}) as adm:
        shown = (await adm.get(f"/api/sweeps/{name}")).json()
    assert len(counts) == trials == shown["finished"] == _results(shown), shown
    return trials / wall, tuple(b - a for a, b in zip(before, after, strict=True))


def through_server(url: str, trials: int, agents: int, fast: bool, workers: int = 1,
                   combined: bool = False, prefetch: int = 64, group: int = 0,
                   window: float = 0.0, pruned: float = 0.0, client: str = "raw"
                   ) -> dict[str, float]:
    """Hand-outs per second through a real server process (``old``: one process only)."""
    import httpx

    from hypergraph.server import TokenStore

    tokens = TokenStore(url)
    admin, token = tokens.create("admin", "bench")[0], tokens.create("agent", "bench")[0]
    tokens.engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    if fast:
        command = ["-c", "from hypergraph.cli import main; main()", "server", "--storage", url,
                   "--port", str(port), "--workers", str(workers), "--prefetch", str(prefetch),
                   "--group-max", str(group), "--group-window", str(window)]
    else:
        command = ["-c", "import sys, uvicorn; from hypergraph.server import create_app; "
                   "uvicorn.run(create_app(sys.argv[1], fast=False), port=int(sys.argv[2]), "
                   "log_level='warning')", url, str(port)]
    server = subprocess.Popen([sys.executable, *command],
                              env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            assert server.poll() is None, "the server did not start"
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        time.sleep(0.5 * workers)  # every worker process up
        def meter() -> tuple[float, ...]:
            return _cpu_of(server.pid), _database_cpu(), time.process_time()

        rate, (used, db, cpu) = asyncio.run(_drive(base, token, admin, trials, agents,
                                                   combined, meter, pruned, client))
    finally:
        server.terminate()
        server.wait()
    return {"rate": rate, "server_cpu": 1000 * used / trials, "client_cpu": 1000 * cpu / trials,
            "db_cpu": 1000 * db / trials}


def _database_cpu() -> float:
    """CPU seconds of every local PostgreSQL process (0 where there is none: SQLite)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its live children (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=None, help="Default: new SQLite files.")
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--server-workers", type=int, default=0,
                        help="Also run the new path with this many server processes.")
    parser.add_argument("--skip-old", action="store_true", help="Measure the new path only.")
    parser.add_argument("--group-only", action="store_true",
                        help="Only the finish-and-claim arms: each request alone (the "
                        "baseline, --group-max 0) against group commit.")
    parser.add_argument("--pruned", type=float, default=0.0,
                        help="Share of the trials the agents finish as pruned in the "
                        "--group-only arms (the others complete; default 0).")
    parser.add_argument("--group-max", type=int, default=32,
                        help="Most finishes in one group in the group-commit arms.")
    parser.add_argument("--group-window", type=float, default=0.0,
                        help="Milliseconds a group waits for more in the group-commit arms.")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="The agents' HTTP client through the server: a minimal "
                        "HTTP/1.1 one (default; about a tenth of httpx's CPU per request, "
                        "so the agents take less of the cores the server runs on) or httpx.")
    parser.add_argument("--dashboard", type=int, default=0, metavar="SWEEPS",
                        help="Instead: the CPU of one dashboard poll over SWEEPS finished "
                        "sweeps and one running, settled sweeps kept (the server's way) "
                        "against every sweep read on every poll (the baseline), interleaved.")
    parser.add_argument("--prefetch", type=int, default=64,
                        help="Trials drawn ahead (the pool) in the new path's arms; the "
                        "baseline arms draw each trial when it is claimed (prefetch 0).")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="server-bench-"))
    made = iter(range(100))

    databases: list[str] = []

    def url() -> str:  # a fresh SQLite file or PostgreSQL database per arm
        if not args.storage:
            return f"sqlite:///{tmp / f'bench{next(made)}.db'}"
        if not args.storage.startswith("postgres"):
            return str(args.storage)
        # a database of its own: the server maintains every sweep of its storage, and a
        # shared database holds other runs' sweeps
        databases.append(f"hgbench_{os.getpid()}_{next(made)}")
        _admin(args.storage, f"CREATE DATABASE {databases[-1]}")
        return sa.engine.make_url(args.storage).set(database=databases[-1]).render_as_string(
            hide_password=False)

    try:
        if args.dashboard:
            _dashboard(url(), args.dashboard, max(2, args.trials // max(args.dashboard, 1)))
        else:
            _arms(args, url)
    finally:
        for name in databases:
            _admin(str(args.storage), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _dashboard(url: str, sweeps: int, trials: int, repeats: int = 15) -> None:
    """CPU ms of one dashboard poll (``SweepService.dashboard``) over ``sweeps`` finished
    sweeps of ``trials`` trials and one with a trial running: with the entries of settled
    sweeps kept, and with them dropped before every poll (every sweep read, as before)."""
    import statistics

    from hypergraph.server import create_app

    service = create_app(url, maintain_every=0).state.service
    for k in range(sweeps):
        name = f"done-{k}"
        service.create(spec(trials), name)
        got = service.claim("bench", 1, name)
        while got["status"] == "trial":
            got = service.finish(got["trial_id"], got["lease"], 1, "complete",
                                 random.random(), None, ("bench", name))["next"]
    service.create(spec(10), "moving")
    assert service.claim("bench", 1, "moving")["status"] == "trial"
    service.dashboard()  # the first poll reads every trial once (Optuna's cache), both arms
    times: dict[str, list[float]] = {"kept": [], "every sweep read": []}
    for _ in range(repeats):
        for arm in times:
            if arm != "kept":
                service._settled.clear()
            cpu = time.process_time()
            service.dashboard()
            times[arm].append(1000 * (time.process_time() - cpu))
    base = statistics.median(times["every sweep read"])
    print(f"dashboard poll, {sweeps} finished sweeps of {trials} trials + 1 running, "
          f"{repeats} polls per arm, load average {os.getloadavg()[0]:.1f}")
    print("| arm | CPU ms per poll (min / median / max) | / every sweep read |")
    print("|---|---|---|")
    for arm, got in times.items():
        med = statistics.median(got)
        print(f"| {arm} | {min(got):.1f} / {med:.1f} / {max(got):.1f} | {med / base:.2f} |")


def _admin(url: str, statement: str) -> None:
    """Run ``statement`` outside a transaction on the PostgreSQL server of ``url``."""
    from hypergraph.sweeps._store import _normalise_url

    engine = sa.create_engine(_normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _arms(args: argparse.Namespace, url: Callable[[], str]) -> None:
    """Every arm of the run, printed as one table."""
    rows: list[tuple[str, str, dict[str, float]]] = []
    n, pre, gmax, win = args.trials, args.prefetch, args.group_max, args.group_window
    pr = args.pruned
    server = functools.partial(through_server, client=args.client)
    grouping = bool(args.storage) and args.storage.startswith("postgresql")
    if args.group_only:
        base_path = "pool + finish&claim"
        rows.append((base_path, "no HTTP (16 threads)", in_process(
            url(), n, args.agents, True, prefetch=pre, combined=True, pruned=pr)))
        if grouping:
            rows.append(("group commit", "no HTTP (16 coroutines)", in_process(
                url(), n, args.agents, True, prefetch=pre, group=gmax, window=win, pruned=pr)))
        rows.append((base_path, "server, 1 process", server(
            url(), n, args.agents, True, combined=True, prefetch=pre, pruned=pr)))
        if grouping:
            rows.append(("group commit", "server, 1 process", server(
                url(), n, args.agents, True, combined=True, prefetch=pre, group=gmax,
                window=win, pruned=pr)))
        if grouping and args.server_workers > 1:
            rows.append(("group commit", f"server, {args.server_workers} processes",
                         server(url(), n, args.agents, True, args.server_workers,
                                        combined=True, prefetch=pre, group=gmax,
                                        window=win, pruned=pr)))
        _print(args, rows, base_path)
        return
    if not args.skip_old:
        rows.append(("old", "no HTTP (16 threads)", in_process(url(), n, args.agents, False)))
        rows.append(("old", "server, 1 process", server(url(), n, args.agents,
                                                                False)))
    # the one-transaction claim drawing each trial when claimed, claim + finish requests
    rows.append(("one-tx", "no HTTP (16 threads)", in_process(url(), n, args.agents, True,
                                                              prefetch=0)))
    rows.append(("one-tx", "server, 1 process", server(url(), n, args.agents, True,
                                                               prefetch=0)))
    # the pool (prefetch), then with the next claim riding on the finish request
    rows.append(("pool", "no HTTP (16 threads)", in_process(url(), n, args.agents, True,
                                                            prefetch=pre)))
    rows.append(("pool", "server, 1 process", server(url(), n, args.agents, True,
                                                             prefetch=pre)))
    rows.append(("pool + finish&claim", "server, 1 process", server(
        url(), n, args.agents, True, combined=True, prefetch=pre)))
    if grouping:
        rows.append(("group commit", "server, 1 process", server(
            url(), n, args.agents, True, combined=True, prefetch=pre, group=gmax)))
    if args.server_workers > 1:
        rows.append(("pool + finish&claim", f"server, {args.server_workers} processes",
                     server(url(), n, args.agents, True, args.server_workers,
                                    combined=True, prefetch=pre, group=gmax)))
    _print(args, rows, "one-tx")


def _print(args: argparse.Namespace, rows: list[tuple[str, str, dict[str, float]]],
           baseline: str) -> None:
    """The table, with ratios to the ``baseline`` path's arm of the same kind."""
    def kind_of(arm: str) -> str:  # several server processes: no baseline of their own
        return "no HTTP" if arm.startswith("no HTTP") else arm

    base = {kind_of(arm): r["rate"] for p, arm, r in rows if p == baseline}
    kind = (args.storage or "sqlite").split(":", 1)[0]
    print(f"storage {kind}: {args.agents} agents, {args.trials} trials per arm; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| path | arm | hand-outs/s | / {baseline} | SQL statements per hand-out | "
          "commits per hand-out | requests per group | server CPU ms per hand-out | "
          "client CPU ms per hand-out | database CPU ms per hand-out |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def cell(r: dict[str, float], key: str, fmt: str = ".1f") -> str:
        return format(r[key], fmt) if key in r else ""

    for path, arm, r in rows:
        ratio = (f"{r['rate'] / base[kind_of(arm)]:.2f}"
                 if path != "old" and kind_of(arm) in base else "")
        print(f"| {path} | {arm} | {r['rate']:.0f} | {ratio} | {cell(r, 'statements')} | "
              f"{cell(r, 'commits')} | {cell(r, 'group')} | {cell(r, 'server_cpu')} | "
              f"{cell(r, 'client_cpu')} | {cell(r, 'db_cpu') if args.storage else ''} |")


if __name__ == "__main__":
    main()
