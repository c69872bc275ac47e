"""Time of ``GET /api/sweeps/{name}/ace``: the first call (ACE fitted) against cached calls.

An ACE sweep of the control server (in-process ASGI, SQLite) gets ``N`` complete trials with
made-up scores (main effects plus noise; no training), then the route is asked once (the report
is computed: ACE rebuilt from the trials, fitted, every valid combination predicted) and
``--repeat`` times more with no new result (the cached report, one COUNT query). The baseline is
the first call, measured in the same run; the ratio is cached / first. Run::

    nice -n 10 .venv/bin/python benchmarks/ace_route_bench.py --trials 10 30 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))

#: 4 dataloaders x 2 models x 5 traversals x 3 managers (the tag-valid ones on iris).
PARAMETERS: dict[str, Any] = {
    "dataset": {"value": "iris"},
    "dataloader": {"values": ["knn", "threshold", "cluster", "attribute"]},
    "model": {"values": ["mlp", "logreg"]},
    "traversal": {"values": ["comprehensive", "random_walk", "uniform", "loss_topk",
                             "cluster_hop"]},
    "manager": {"values": ["static", "reweight", "reduction"]},
    "trainer.epochs": {"value": 1}}


def run(trials: int, repeat: int, seed: int) -> dict[str, Any]:
    """Fill an ACE sweep with ``trials`` results and time the route: first and cached."""
    import numpy as np

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from hypergraph.server import TokenStore, create_app

    rng = np.random.default_rng(seed)
    effect: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'sweeps.db'}"
        app = create_app(url, maintain_every=0)
        service = app.state.service
        spec = {"method": "ace", "metric": {"name": "val.accuracy", "goal": "maximize"},
                "run_cap": trials, "parameters": PARAMETERS}
        service.create(spec, "bench")
        admin = TokenStore(engine=service.store.engine).create("admin", "bench")[0]
        for _ in range(trials):
            got = service.claim("bench:1", 1, "bench")
            score = 0.8 + float(rng.normal(0, 0.01))
            for key in ("dataloader", "model", "traversal", "manager"):
                choice = got["params"][key]
                score += effect.setdefault(choice, float(rng.normal(0, 0.03)))
            service.finish(got["trial_id"], got["lease"], 1, "complete", score, None)
        hdr = {"Authorization": f"Bearer {admin}"}
        with TestClient(app) as client:
            start = time.perf_counter()
            first = client.get("/api/sweeps/bench/ace", headers=hdr).json()
            first_ms = (time.perf_counter() - start) * 1000
            assert first["cached"] is False and first["complete"] == trials
            cached = []
            for _ in range(repeat):
                start = time.perf_counter()
                again = client.get("/api/sweeps/bench/ace", headers=hdr).json()
                cached.append((time.perf_counter() - start) * 1000)
                assert again["cached"] is True
        service.store.engine.dispose()
    cached_ms = statistics.median(cached)
    return {"trials": trials, "first_ms": first_ms, "fit_ms": first["fit_ms"],
            "cached_ms": cached_ms, "ratio": cached_ms / first_ms,
            "untried": first["n_untried"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print("| complete trials | untried combinations | first call (fit) | cached call "
          f"(median of {args.repeat}) | cached / first |")
    print("|---|---|---|---|---|")
    for n in args.trials:
        r = run(n, args.repeat, args.seed)
        print(f"| {r['trials']} | {r['untried']} | {r['first_ms']:.0f} ms "
              f"(fit {r['fit_ms']:.0f} ms) | {r['cached_ms']:.1f} ms | {r['ratio']:.3f} |",
              flush=True)
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
