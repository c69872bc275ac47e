"""Trial hand-out throughput of the control server: 16 concurrent agents, no training.

Each agent is an async httpx client looping ``claim`` -> ``finish`` (state complete, a random
value) until the sweep's budget is used up, against a real ``hypergraph server`` process. The
baseline, measured in the same run on the same kind of storage, is one process handing out
trials straight from :class:`~hypergraph.sweeps.SweepStore` (claim, ask, attach, suggest, tell:
what a ``hypergraph sweep`` worker does, on SQLite's default journal), so the ratio is what the
HTTP door costs or gains.
Run::

    nice -n 10 .venv/bin/python benchmarks/server_bench.py --trials 400
    nice -n 10 .venv/bin/python benchmarks/server_bench.py --trials 400 \\
        --storage postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

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


def direct(url: str, trials: int) -> float:
    """Baseline: hand-outs per second from SweepStore in this process (one worker)."""
    from optuna.trial import TrialState

    from hypergraph.sweeps import SweepStore, sweep_from_mapping
    from hypergraph.sweeps._store import quiet

    store = SweepStore(url)
    name = f"bench-direct-{uuid.uuid4().hex[:8]}"
    sweep = sweep_from_mapping(spec(trials), "(bench)")
    store.create(name, sweep)
    study = store.load(name, sweep)
    start = time.perf_counter()
    done = 0
    while True:
        claim = store.claim(study, trials)
        if claim is None:
            break
        with quiet():
            trial = study.ask()
        store.attach(claim, trial)
        sweep.suggest(trial)
        store.tell(study, trial, TrialState.COMPLETE, random.random())
        done += 1
    return done / (time.perf_counter() - start)


async def agent(client: Any, name: str, sweep: str, counts: list[int]) -> None:
    while True:
        r = await client.post("/api/trials/claim", json={"agent": name, "sweep": sweep})
        got = r.json()
        if got["status"] == "done":
            return
        if got["status"] == "wait":
            await asyncio.sleep(0.01)
            continue
        r = await client.post(f"/api/trials/{got['trial_id']}/finish", json={
            "lease": got["lease"], "state": "complete", "value": random.random()})
        assert r.status_code == 200, r.text
        counts.append(1)


async def through_server(base: str, token: str, admin: str, trials: int, agents: int
                         ) -> tuple[float, float]:
    import httpx

    name = f"bench-server-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=base, timeout=120,
                                 headers={"Authorization": f"Bearer {admin}"}) as adm:
        r = await adm.post("/api/sweeps", json={"name": name, "spec": spec(trials)})
        assert r.status_code == 201, r.text
    counts: list[int] = []
    limits = httpx.Limits(max_connections=agents)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        start = time.perf_counter()
        await asyncio.gather(*(agent(client, f"bench:{i}", name, counts)
                               for i in range(agents)))
        wall = time.perf_counter() - start
    async with httpx.AsyncClient(base_url=base, timeout=120,
                                 headers={"Authorization": f"Bearer {admin}"}) as adm:
        shown = (await adm.get(f"/api/sweeps/{name}")).json()
    assert len(counts) == trials == shown["finished"] == shown["counts"]["complete"], shown
    return trials / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default=None, help="Default: a new SQLite file.")
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--agents", type=int, default=16)
    args = parser.parse_args()
    import httpx

    from hypergraph.server import TokenStore

    tmp = Path(tempfile.mkdtemp(prefix="server-bench-"))
    url = args.storage or f"sqlite:///{tmp / 'bench.db'}"
    tokens = TokenStore(url)
    admin, token = tokens.create("admin", "bench")[0], tokens.create("agent", "bench")[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", "from hypergraph.cli import main; main()", "server",
         "--storage", url, "--port", str(port)], env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        # the baseline's SQLite file is its own: the server switches its file to WAL
        base_rate = direct(f"sqlite:///{tmp / 'direct.db'}" if args.storage is None else url,
                           args.trials)
        rate, wall = asyncio.run(through_server(base, token, admin, args.trials, args.agents))
    finally:
        server.terminate()
        server.wait()
    kind = url.split(":", 1)[0]
    print(f"storage {kind}: {args.agents} agents, {args.trials} trials in {wall:.1f}s: "
          f"{rate:.0f} claims/s through the server (claim + finish each); baseline, one "
          f"process on SweepStore directly: {base_rate:.0f}/s; ratio {rate / base_rate:.2f}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
