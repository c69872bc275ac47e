"""Sweeps on digits: a bayes sweep against the default config, hyperband against no pruning.

Three arms, in this process, one after the other:

* ``default``: the default configuration (``hypergraph train --dataset digits``) at the same
  number of epochs, over ``--default-seeds`` run seeds (the baseline score).
* ``bayes``: a TPE (bayes) sweep of ``--trials`` trials over the declared spaces of ``mlp`` and
  of the traversals ``ivalue`` and ``random_walk`` (a conditional space: each traversal's
  parameters only when it is chosen), no pruning.
* ``hyperband``: the same sweep file and sampler seed with ``early_terminate: hyperband``.

Reported: best validation accuracy of each sweep against the default's, and the training
epochs each sweep spent (the sum over trials of the epochs each trained). Run::

    nice -n 10 .venv/bin/python benchmarks/sweep_bench.py --epochs 4 --trials 30
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))


#: Ranges narrowed from the declared space to keep a trial to seconds on 2 shared cores (the
#: declared width reaches 2048 units and 6 layers).
NARROW: dict[str, dict[str, Any]] = {
    "model.width": {"distribution": "q_log_uniform_values", "min": 16, "max": 256, "q": 1},
    "model.depth": {"distribution": "int_uniform", "min": 1, "max": 3},
}
#: Traversal parameters searched (the others stay at their defaults). ``walkers`` stays fixed:
#: one walker is the slow path of a walk (a batch of 64 takes 64 sequential steps). Most of
#: IValue's parameters stay fixed because draws from their full declared ranges ran for
#: minutes at 4.7-7.8 GB per process on digits (pressure 3776 with temperature 24.3 and
#: hops 18; signal uncertainty with hops 11 and stratify label), which 2 shared cores and
#: 23 GB cannot hold.
SEARCHED = {
    "ivalue": ("signal", "explore", "refresh", "alpha"),
    "random_walk": ("teleport", "no_return", "teleport_to", "restart"),
}


def sweep_file(epochs: int, trials: int, hyperband: bool, eta: int = 2) -> dict[str, Any]:
    """The benchmark sweep: mlp's space, and ivalue / random_walk with their own spaces."""
    from hypergraph import registry

    parameters: dict[str, Any] = {
        "dataset": {"value": "digits"}, "model": {"value": "mlp"},
        "traversal": {"values": ["ivalue", "random_walk"]},
        "trainer.epochs": {"value": epochs},
    }
    for name, param in registry.resolve("model", "mlp").space.items():
        if param.searchable:
            parameters[f"model.{name}"] = NARROW.get(f"model.{name}", param.to_wandb())
    for trav in ("ivalue", "random_walk"):
        for name, param in registry.resolve("traversal", trav).space.items():
            if param.searchable and name in SEARCHED[trav]:
                parameters[f"traversal.{trav}.{name}"] = param.to_wandb()
    data: dict[str, Any] = {"method": "bayes", "run_cap": trials,
                            "metric": {"name": "val.accuracy", "goal": "maximize"},
                            "parameters": parameters}
    if hyperband:
        data["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": eta}
    return data


def run_sweep(data: dict[str, Any], folder: Path, seed: int) -> dict[str, Any]:
    """Run one sweep with one worker; return best value, epochs spent, trial states, time."""
    import torch

    torch.set_num_threads(1)
    from optuna.trial import TrialState

    from hypergraph.sweeps import SweepStore, run_worker, sweep_from_mapping

    spec = sweep_from_mapping(data, "(bench)")
    store = SweepStore(f"sqlite:///{folder / 'sweep.db'}")
    store.create("bench", spec)
    t0 = time.perf_counter()
    run_worker(store, "bench", spec, folder, seed=seed)
    wall = time.perf_counter() - t0
    study = store.load("bench")
    trials = study.get_trials(deepcopy=False)
    epochs = 0
    for t in trials:
        hist = folder / "trials" / str(t.number) / "history.jsonl"
        if hist.is_file():
            epochs += sum(1 for line in hist.read_text().splitlines() if line.strip())
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    best = study.best_trial
    return {"best_val": best.value, "best_trial": best.number, "best_params": best.params,
            "epochs": epochs, "states": states, "wall_s": round(wall, 1),
            "complete": sum(t.state == TrialState.COMPLETE for t in trials)}


def default_score(epochs: int, seeds: int, folder: Path) -> list[float]:
    """Validation accuracy of the default configuration on digits (one per run seed)."""
    from hypergraph.config import config_from_mapping
    from hypergraph.run import train

    scores = []
    for seed in range(seeds):
        cfg = config_from_mapping({"seed": seed, "dataset": "digits",
                                   "trainer": {"name": "standard",
                                               "params": {"epochs": epochs}}})
        result = train(cfg, folder / f"default-s{seed}")
        scores.append(float(result["val"]["accuracy"]))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="sampler seed of both sweeps")
    parser.add_argument("--eta", type=int, default=2, help="hyperband reduction factor")
    parser.add_argument("--default-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="keep the sweeps here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    root = args.out or Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    defaults = default_score(args.epochs, args.default_seeds, root)
    default_s = time.perf_counter() - t0
    # the two sweeps side by side, one process (and one thread) each
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(run_sweep, sweep_file(args.epochs, args.trials, prune, args.eta),
                            root / arm, args.seed)
                for arm, prune in (("bayes", False), ("hyperband", True))]
        plain, pruned = (job.result() for job in jobs)
    report = {
        "epochs_per_trial": args.epochs, "trials": args.trials, "sampler_seed": args.seed,
        "eta": args.eta,
        "default_val": defaults, "default_val_median": statistics.median(defaults),
        "default_wall_s": round(default_s, 1), "bayes": plain, "hyperband": pruned,
        "bayes_minus_default": plain["best_val"] - max(defaults),
        "epoch_saving": 1.0 - pruned["epochs"] / plain["epochs"],
        "hyperband_minus_bayes": pruned["best_val"] - plain["best_val"],
        "folder": str(root),
    }
    print(json.dumps(report, indent=2, default=str))
    print(f"default val accuracy (seeds 0..{args.default_seeds - 1}): "
          + ", ".join(f"{v:.4f}" for v in defaults))
    print(f"bayes sweep best val {plain['best_val']:.4f} (trial {plain['best_trial']}), "
          f"{plain['epochs']} epochs, {plain['wall_s']} s; vs best default: "
          f"{report['bayes_minus_default']:+.4f}")
    print(f"hyperband best val {pruned['best_val']:.4f}, {pruned['epochs']} epochs "
          f"({pruned['states']}), {pruned['wall_s']} s; epochs saved: "
          f"{report['epoch_saving']:.1%}; best vs no pruning: "
          f"{report['hyperband_minus_bayes']:+.4f}")


if __name__ == "__main__":
    main()
