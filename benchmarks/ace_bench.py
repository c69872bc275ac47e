"""ACE against random search, Optuna TPE and Optuna's GPSampler on categorical tables.

Each space is a table (every combination with a noisy ``score`` a search sees and a ``truth`` it
is judged by) and every method is replayed against it (``hypergraph.ace.replay``) for the same
seeds. Reported per space: median and interquartile range of the regret (best truth in the
table minus the truth of the best-scored combination found so far) after n evaluations, the
target checks, and the Spearman correlation between ACE's predictions on the combinations it
did not try and their truth.

Spaces:

- synthetic (``synth-<seed>``): 5-8 slots of 3-8 choices (product <= 20,000), main effects whose
  size varies by slot, interactions on ~40% of slot pairs, score = truth + Gaussian noise
  (0.25 x the truth's std). ``--spaces design`` (seeds 100-101) was used to choose ACE's design;
  ``--spaces report`` (seeds 200-202) and the HyperGraph table report it.
- ``hypergraph``: ``benchmarks/data/hypergraph_table.csv`` (``benchmarks/ace_table.py``).

Run: ``nice -n 10 python benchmarks/ace_bench.py --spaces report --seeds 20 --out out.json``
(``--methods``, ``--budget`` to shorten; ``--plot PNG`` draws the regret curves).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts src/ on the path)
import numpy as np
import torch
from scipy.stats import spearmanr

from hypergraph.ace._replay import Table, regret_curve, replay, run_ace

DATA = Path(__file__).resolve().parent / "data" / "hypergraph_table.csv"
SPACES = {"design": ["synth-100", "synth-101"],
          "report": ["synth-200", "synth-201", "synth-202", "hypergraph"]}
METHODS = ("ace", "random", "tpe", "gp")


def synthetic(seed: int, noise: float = 0.25, pair_frac: float = 0.4,
              max_size: int = 20000) -> Table:
    """A synthetic table: main effects + pairwise interactions, noisy score, exact truth."""
    rng = np.random.default_rng(seed)
    while True:
        S = int(rng.integers(5, 9))
        sizes = [int(n) for n in rng.integers(3, 9, size=S)]
        if int(np.prod(sizes)) <= max_size:
            break
    scale = rng.exponential(1.0, S)
    mains = [rng.normal(0, 1, n) * scale[s] for s, n in enumerate(sizes)]
    codes = np.array(list(itertools.product(*[range(n) for n in sizes])), dtype=np.int64)
    f = sum(mains[s][codes[:, s]] for s in range(S))
    for s in range(S):
        for t in range(s + 1, S):
            if rng.random() < pair_frac:
                v = rng.normal(0, 0.6, (sizes[s], sizes[t])) * np.sqrt(scale[s] * scale[t])
                f = f + v[codes[:, s], codes[:, t]]
    score = f + rng.normal(0, noise * f.std(), len(f))
    values = [[f"c{c}" for c in row] for row in codes]
    return Table([f"s{i}" for i in range(S)], values, score, f)


def load_space(name: str) -> Table:
    if name == "hypergraph":
        return Table.from_csv(str(DATA), ["dataloader", "model", "traversal", "manager"],
                              "score", "truth")
    return synthetic(int(name.split("-")[1]))


def checkpoints(size: int) -> list[int]:
    """n from 10% to 30% of the space, capped at 50 (10..50 when 10% is already above 50)."""
    lo, hi = max(2, round(0.1 * size)), min(50, round(0.3 * size))
    if lo >= hi:
        return [10, 20, 30, 40, 50] if hi == 50 else [hi]
    return sorted({round(float(x)) for x in np.linspace(lo, hi, 5)})


def run_space(name: str, methods: list[str], seeds: int, budget: int | None,
              ace_options: dict[str, Any]) -> dict[str, Any]:
    table = load_space(name)
    size = len(table.rows_of)
    cps = checkpoints(size)
    n_max = budget or max(cps)
    best_scored = int(np.argmax(table.signed(table.score)))
    floor = float(regret_curve(table, [best_scored])[0])  # regret once the best score is found
    out: dict[str, Any] = {"space": name, "size": size, "slots": table.space.sizes,
                           "checkpoints": cps, "floor": floor, "methods": {}}
    for method in methods:
        b = min(size, 3 * n_max) if method == "random" else n_max
        curves, rhos, seconds = [], [], []
        for seed in range(seeds):
            t0 = time.perf_counter()
            if method == "ace":
                rows, ace = run_ace(table, b, seed, ace_options)
                untried = [k for k in table.rows_of
                           if table.rows_of[k][0] not in set(rows)]
                if len(untried) > 2:
                    mean, _ = ace.model_.predict(np.array(untried))
                    truth = table.signed(table.truth)[[table.rows_of[k][0] for k in untried]]
                    rhos.append(float(spearmanr(mean, truth).statistic))
            else:
                rows = replay(table, method, b, seed)
            seconds.append(time.perf_counter() - t0)
            curves.append(regret_curve(table, rows).tolist())
        out["methods"][method] = {"curves": curves, "spearman": rhos,
                                  "seconds_per_run": statistics.median(seconds)}
        print(f"  {name} {method}: {statistics.median(seconds):.1f}s/run", flush=True)
    return out


def summarise(result: dict[str, Any]) -> list[str]:
    lines = [f"### {result['space']} ({result['size']} combinations, choices per slot "
             f"{result['slots']})", ""]
    methods = result["methods"]
    cps = result["checkpoints"]

    def at(method: str, n: int) -> tuple[float, float, float]:
        vals = [c[min(n, len(c)) - 1] for c in methods[method]["curves"]]
        q1, med, q3 = np.percentile(vals, [25, 50, 75])
        return float(med), float(q1), float(q3)

    lines.append("| n | " + " | ".join(f"{m} median [IQR]" for m in methods) + " | random@3n | "
                 "ACE <= random@3n | ACE < min(TPE, GP) |")
    lines.append("|---" * (len(methods) + 4) + "|")
    for n in cps:
        cells = [f"{at(m, n)[0]:.3f} [{at(m, n)[1]:.3f}, {at(m, n)[2]:.3f}]" for m in methods]
        r3 = at("random", 3 * n)[0] if "random" in methods else float("nan")
        ace = at("ace", n)[0] if "ace" in methods else float("nan")
        others = [at(m, n)[0] for m in ("tpe", "gp") if m in methods]
        ok1 = "yes" if ace <= r3 else "no"
        ok2 = ("yes" if ace < min(others) else ("tie" if ace == min(others) else "no")
               ) if others else "-"
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {r3:.3f} | {ok1} | {ok2} |")
    lines.append("")
    if "ace" in methods and methods["ace"]["spearman"]:
        rho = methods["ace"]["spearman"]
        lines.append(f"Spearman of ACE's predictions on untried combinations vs truth after "
                     f"{max(cps)} evaluations: median {statistics.median(rho):.3f} "
                     f"(min {min(rho):.3f}, max {max(rho):.3f}).")
    if "gp" in methods and "ace" in methods:
        n_ref = max(cps)
        target = at("gp", n_ref)[0]
        curve = [at("ace", n)[0] for n in range(1, n_ref + 1)]
        reach = next((i + 1 for i, v in enumerate(curve) if v <= target), None)
        if reach:
            lines.append(f"Sample efficiency vs GP: ACE reaches GP's median regret at {n_ref} "
                         f"({target:.3f}) after {reach} evaluations ({n_ref / reach:.2f}x).")
        else:
            lines.append(f"Sample efficiency vs GP: ACE does not reach GP's median regret at "
                         f"{n_ref} ({target:.3f}) within the budget (< 1x).")
    floor = result.get("floor")
    if floor is not None:
        found = []
        for m, v in methods.items():
            hits = [next((i + 1 for i, r in enumerate(c) if r <= floor + 1e-12), None)
                    for c in v["curves"]]
            reached = sorted(h for h in hits if h is not None)
            med = (reached[len(hits) // 2] if len(reached) > len(hits) // 2
                   else f"> {len(v['curves'][0])}")
            found.append(f"{m} {med} ({len(reached)}/{len(hits)} runs)")
        lines.append(f"Evaluations until the regret is at most that of the best-scored "
                     f"combination ({floor:.3f}; median, runs that got there within the "
                     "budget): " + ", ".join(found) + ".")
    secs = ", ".join(f"{m} {v['seconds_per_run']:.1f}s ({len(v['curves'])} seeds)"
                     for m, v in methods.items())
    lines.append(f"Median seconds per run (machine shared, under nice): {secs}.")
    lines.append("")
    return lines


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        n_max = max(res["checkpoints"])
        for method, data in res["methods"].items():
            C = np.array([c[:n_max] for c in data["curves"] if len(c) >= n_max])
            if len(C) == 0:
                continue
            x = np.arange(1, n_max + 1)
            med = np.median(C, axis=0)
            q1, q3 = np.percentile(C, [25, 75], axis=0)
            ax.plot(x, med, label=method)
            ax.fill_between(x, q1, q3, alpha=0.15)
        ax.set_title(f"{res['space']} ({res['size']})")
        ax.set_xlabel("evaluations")
        ax.set_yscale("symlog", linthresh=1e-3)
    axes[0][0].set_ylabel("regret (median, IQR)")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spaces", default="report",
                        help="design, report, or a comma list (synth-SEED, hypergraph)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=None, help="override the max n")
    parser.add_argument("--ace", default="{}", help="ACE options as JSON (design runs)")
    parser.add_argument("--out", type=Path, default=None, help="write all curves as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the regret curves")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="no runs: merge the --out files of earlier runs (per space, per "
                        "method) and print their summary")
    args = parser.parse_args()
    if args.merge:
        merged: dict[str, dict[str, Any]] = {}
        for path in args.merge:
            for res in json.loads(path.read_text()):
                into = merged.setdefault(res["space"], {**res, "methods": {}})
                if "floor" not in into:
                    table = load_space(res["space"])
                    best = int(np.argmax(table.signed(table.score)))
                    into["floor"] = float(regret_curve(table, [best])[0])
                into["methods"].update(res["methods"])
        results = list(merged.values())
        for res in results:
            res["methods"] = {m: res["methods"][m] for m in METHODS if m in res["methods"]}
            print("\n".join(summarise(res)))
        if args.plot:
            plot(results, args.plot)
        return
    torch.set_num_threads(1)
    names = SPACES.get(args.spaces, args.spaces.split(","))
    t0 = time.perf_counter()
    results = []
    for name in names:
        results.append(run_space(name, args.methods.split(","), args.seeds, args.budget,
                                 json.loads(args.ace)))
        if args.out:  # after each space, so that a long run keeps what it measured
            args.out.write_text(json.dumps(results))
    for res in results:
        print("\n".join(summarise(res)))
    print(f"Total {time.perf_counter() - t0:.0f}s, {args.seeds} seeds.")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
