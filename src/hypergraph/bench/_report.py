"""Turning bench results into numbers: curves over seeds, steps and compute to a target, tables.

Accuracy at a checkpoint is the **test accuracy of the best-on-validation checkpoint so far**
(model selection on validation, report on test). Curves are aligned by checkpoint index (every
cell of a dataset evaluates at the same steps) and averaged over seeds.

The target of a dataset is uniform's final accuracy (mean over seeds, at the full step budget).
For each method, *steps to target* is the first checkpoint where its seed-mean curve reaches the
target; compute and wall time to target are read at that checkpoint (seed means). Ratios divide
by uniform's steps, compute and wall time at the full budget.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["best_so_far", "head_to_head", "markdown_report", "summarise"]


def best_so_far(curve: list[dict[str, float]]) -> np.ndarray:
    """Test accuracy of the best-validation checkpoint up to each checkpoint."""
    out = np.empty(len(curve))
    best_val, best_test = -math.inf, math.nan
    for i, point in enumerate(curve):
        if point["val_acc"] > best_val:
            best_val, best_test = point["val_acc"], point["test_acc"]
        out[i] = best_test
    return out


def _stack(cells: list[dict[str, Any]], key: str) -> np.ndarray:
    size = min(len(c["curve"]) for c in cells)
    return np.array([[p[key] for p in c["curve"][:size]] for c in cells], np.float64)


def summarise(results: dict[str, Any], reference: str = "uniform") -> dict[str, Any]:
    """Per dataset and method: mean curves and the matched-budget figures.

    Returns:
        ``{dataset: {"target": float, "methods": {method: {...}}}}`` where each method holds
        ``steps``, ``acc_mean``/``acc_std`` (curves), ``compute``, ``wall_s``, ``final_mean``,
        ``final_std``, ``seeds``, ``steps_to_target``, ``compute_to_target``,
        ``wall_to_target`` and the ratios to ``reference`` (``*_ratio``), plus totals.
    """
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    order: dict[str, list[str]] = defaultdict(list)
    for cell in results["cells"].values():
        groups[cell["dataset"]][cell["method"]].append(cell)
        if cell["method"] not in order[cell["dataset"]]:
            order[cell["dataset"]].append(cell["method"])
    out: dict[str, Any] = {}
    for dataset, methods in groups.items():
        table: dict[str, dict[str, Any]] = {}
        for method in order[dataset]:
            cells = sorted(methods[method], key=lambda c: c["seed"])
            acc = np.array([best_so_far(c["curve"])[:min(len(x["curve"]) for x in cells)]
                            for c in cells])
            table[method] = {
                "method": method,
                "seeds": [c["seed"] for c in cells],
                "steps": _stack(cells, "step").mean(0),
                "compute": _stack(cells, "compute").mean(0),
                "wall_s": _stack(cells, "wall_s").mean(0),
                "selection_forward": _stack(cells, "selection_forward").mean(0),
                "acc_mean": acc.mean(0), "acc_std": acc.std(0),
                "final_mean": float(acc[:, -1].mean()), "final_std": float(acc[:, -1].std()),
                "final_per_seed": acc[:, -1].tolist(),
                "budget": cells[0]["budget"],
            }
        ref = table.get(reference)
        target = ref["final_mean"] if ref else math.nan
        for stats in table.values():
            hit = np.flatnonzero(stats["acc_mean"] >= target - 1e-12)
            if hit.size and math.isfinite(target):
                i = int(hit[0])
                stats["steps_to_target"] = float(stats["steps"][i])
                stats["compute_to_target"] = float(stats["compute"][i])
                stats["wall_to_target"] = float(stats["wall_s"][i])
            else:
                stats["steps_to_target"] = stats["compute_to_target"] = math.nan
                stats["wall_to_target"] = math.nan
            if ref:
                for key, base in (("steps", ref["steps"][-1]), ("compute", ref["compute"][-1]),
                                  ("wall", ref["wall_s"][-1])):
                    stats[f"{key}_to_target_ratio"] = stats[f"{key}_to_target"] / base \
                        if base > 0 else math.nan
                stats["total_compute_ratio"] = float(stats["compute"][-1] / ref["compute"][-1])
                _paired(stats, ref, methods_cells=groups[dataset], method=stats["method"],
                        reference=reference)
        out[dataset] = {"target": target, "methods": table}
    return out


def _paired(stats: dict[str, Any], ref: dict[str, Any],
            methods_cells: dict[str, list[dict[str, Any]]], method: str, reference: str,
            ) -> None:
    """Seed-paired figures: each seed's target is the reference's final accuracy on that seed."""
    ref_cells = {c["seed"]: c for c in methods_cells[reference]}
    deltas, ratios = [], []
    for cell in methods_cells[method]:
        base = ref_cells.get(cell["seed"])
        if base is None:
            continue
        ref_acc = best_so_far(base["curve"])
        acc = best_so_far(cell["curve"])
        deltas.append(float(acc[-1] - ref_acc[-1]))
        hit = np.flatnonzero(acc >= ref_acc[-1] - 1e-12)
        ratios.append(cell["curve"][int(hit[0])]["step"] / base["curve"][-1]["step"]
                      if hit.size else math.inf)
    stats["paired_delta_mean"] = float(np.mean(deltas)) if deltas else math.nan
    stats["paired_delta_std"] = float(np.std(deltas)) if deltas else math.nan
    stats["paired_steps_ratio_median"] = float(np.median(ratios)) if ratios else math.nan
    stats["paired_reached"] = int(np.sum(np.isfinite(ratios)))
    stats["paired_n"] = len(ratios)


def head_to_head(results: dict[str, Any], focus: str = "ivalue", z: float = 2.0,
                 ) -> dict[str, dict[str, dict[str, Any]]]:
    """Seed-paired comparison of ``focus`` with every other method, per dataset.

    For each seed run by both, ``d = acc_focus - acc_other`` at the full budget (test accuracy
    of the best-validation checkpoint) and ``d_auc`` = the same difference averaged over every
    checkpoint (how much earlier ``focus`` is ahead: a speed measure). The verdict is ``ahead``
    when the mean of ``d`` minus ``z`` standard errors is above 0, ``behind`` when the mean plus
    ``z`` standard errors is below 0, else ``tie``; a single seed always gives ``tie``.

    Returns:
        ``{dataset: {other: {"n", "delta", "se", "wins", "delta_auc", "se_auc", "verdict"}}}``
        (datasets where ``focus`` did not run are left out).
    """
    groups: dict[str, dict[str, dict[int, np.ndarray]]] = defaultdict(lambda: defaultdict(dict))
    for cell in results["cells"].values():
        groups[cell["dataset"]][cell["method"]][cell["seed"]] = best_so_far(cell["curve"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for dataset, methods in groups.items():
        mine = methods.get(focus)
        if not mine:
            continue
        block: dict[str, dict[str, Any]] = {}
        for other, theirs in methods.items():
            if other == focus:
                continue
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                continue
            d, d_auc = [], []
            for s in seeds:
                size = min(mine[s].size, theirs[s].size)
                a, b = mine[s][:size], theirs[s][:size]
                d.append(float(a[-1] - b[-1]))
                d_auc.append(float(np.mean(a - b)))
            n = len(seeds)
            se = float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            se_auc = float(np.std(d_auc, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            mean = float(np.mean(d))
            verdict = "tie"
            if n > 1 and mean - z * se > 0:
                verdict = "ahead"
            elif n > 1 and mean + z * se < 0:
                verdict = "behind"
            block[other] = {"n": n, "delta": mean, "se": se,
                            "wins": int(np.sum(np.asarray(d) > 0)),
                            "delta_auc": float(np.mean(d_auc)), "se_auc": se_auc,
                            "verdict": verdict}
        out[dataset] = block
    return out


def _fmt(x: float, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec) + suffix


def markdown_report(results: dict[str, Any], command: str = "",
                    reference: str = "uniform", focus: str = "ivalue") -> str:
    """The bench report as markdown: one table per dataset, the conventions, the command."""
    summary = summarise(results, reference)
    spec = results.get("spec", {})
    lines = ["# HyperGraph bench report", ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    lines += [
        f"Model: `{spec.get('model')}`; graph: `{spec.get('dataloader')}`; batch size "
        f"{spec.get('batch_size')}; seeds {spec.get('seeds')}.",
        "",
        "Accuracy = test accuracy of the best-validation checkpoint so far (mean ± std over "
        "seeds), at the full step budget, equal for every method. Compute is counted in "
        "forward-pass equivalents: 3 x training samples (forward + backward ≈ 2 forwards) + "
        "forward-only selection samples + other selection work (irreducible-loss models) "
        "converted by parameter count. Graph construction is excluded (the same kNN graph is "
        "built for every method). *To target* = first checkpoint where the seed-mean curve "
        f"reaches {reference}'s final accuracy; ratios divide by {reference}'s steps, compute "
        "and wall time at the full budget (lower is better; n/a = never reached). *Paired*: "
        f"each seed's target is {reference}'s final accuracy on the same seed (same data, "
        "same initialisation); Δ is the seed-paired accuracy difference at the budget.",
        "",
    ]
    for dataset, block in summary.items():
        methods = block["methods"]
        budget = next(iter(methods.values()))["budget"]
        lines += [f"## {dataset} (budget {budget} steps; target {_fmt(block['target'], '.4f')})",
                  "",
                  "| method | final test acc | Δ vs ref (paired) | steps to target | "
                  "paired steps (median, reached) | compute to target | wall to target | "
                  "total compute | selection fwd / step |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for method, s in methods.items():
            sel = s["selection_forward"][-1] / max(s["steps"][-1], 1)
            lines.append(
                f"| {method} | {s['final_mean']:.4f} ± {s['final_std']:.4f} "
                f"(n={len(s['seeds'])}) | {_fmt(s.get('paired_delta_mean', math.nan), '+.4f')} ± "
                f"{_fmt(s.get('paired_delta_std', math.nan), '.4f')} | "
                f"{_fmt(s.get('steps_to_target_ratio', math.nan), '.2f', 'x')} "
                f"({_fmt(s['steps_to_target'], '.0f')}) | "
                f"{_fmt(s.get('paired_steps_ratio_median', math.nan), '.2f', 'x')} "
                f"({s.get('paired_reached', 0)}/{s.get('paired_n', 0)}) | "
                f"{_fmt(s.get('compute_to_target_ratio', math.nan), '.2f', 'x')} | "
                f"{_fmt(s.get('wall_to_target_ratio', math.nan), '.2f', 'x')} | "
                f"{_fmt(s.get('total_compute_ratio', math.nan), '.2f', 'x')} | {sel:.0f} |")
        lines.append("")
    h2h = head_to_head(results, focus)
    if h2h:
        lines += [f"## {focus} against each method (seed-paired)", "",
                  f"Δ = {focus}'s test accuracy minus the other method's, same seed, at the "
                  "full budget (mean ± standard error over seeds; wins = seeds where "
                  f"{focus} is ahead). Δ curve = the same difference averaged over every "
                  f"checkpoint (positive: {focus} is ahead earlier in training). Verdict: "
                  "*ahead* / *behind* when Δ is more than 2 standard errors from 0, else *tie*.",
                  "",
                  "| dataset | vs | Δ at budget | wins | Δ curve | verdict |",
                  "|---|---|---|---|---|---|"]
        for dataset, block in h2h.items():
            for other, r in block.items():
                lines.append(
                    f"| {dataset} | {other} | {r['delta']:+.4f} ± {_fmt(r['se'], '.4f')} | "
                    f"{r['wins']}/{r['n']} | {r['delta_auc']:+.4f} ± "
                    f"{_fmt(r['se_auc'], '.4f')} | {r['verdict']} |")
        lines.append("")
    return "\n".join(lines) + "\n"
