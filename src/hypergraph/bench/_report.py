"""Turning bench results into numbers: curves over seeds, steps and compute to a target, tables.

Accuracy at a checkpoint is the **test accuracy of the best-on-validation checkpoint so far**
(model selection on validation, report on test). Curves are aligned by checkpoint index (every
cell of a dataset evaluates at the same steps) and averaged over seeds.

The target of a dataset is uniform's final accuracy (mean over seeds, at the full step budget).
For each method, *steps to target* is the first checkpoint where its seed-mean curve reaches the
target; compute and wall time to target are read at that checkpoint (seed means). Ratios divide
by uniform's steps, compute and wall time at the full budget.

**Report seeds only.** A results file records the seeds it was run on (``spec.seeds``) and the
seeds used to design or tune the methods (``spec.design_seeds``); the headline tables use
cells whose seed is a report seed and not a design seed (:func:`report_cells`). The paired
tables give, for every other arm, the seed-paired difference at 1/4, 1/2 and the full budget
with Student-t intervals, and the steps to each seed's target with a bootstrap interval over
seeds (:mod:`hypergraph.bench._stats`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from hypergraph.bench._stats import Interval, bootstrap_interval, paired_interval

__all__ = ["FRACTIONS", "best_so_far", "head_to_head", "markdown_report", "paired_fractions",
           "report_cells", "steps_to_target", "summarise", "timings_table"]

#: Shares of the step budget at which paired accuracy differences are reported.
FRACTIONS = (0.25, 0.5, 1.0)


def report_cells(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with only the cells of report seeds: seeds listed in ``spec.seeds`` (all
    when absent) that are not in ``spec.design_seeds``."""
    spec = results.get("spec", {})
    seeds = spec.get("seeds")
    design = set(spec.get("design_seeds") or [])
    keep = {k: c for k, c in results["cells"].items()
            if (seeds is None or c["seed"] in seeds) and c["seed"] not in design}
    return {**results, "cells": keep}


def _acc_at(cell: dict[str, Any], fraction: float) -> float:
    """Best-on-validation test accuracy at the last checkpoint within ``fraction`` of the
    budget."""
    acc = best_so_far(cell["curve"])
    limit = fraction * cell["budget"] + 1e-9
    idx = [i for i, p in enumerate(cell["curve"]) if p["step"] <= limit]
    return float(acc[idx[-1]]) if idx else math.nan


def paired_fractions(results: dict[str, Any], focus: str = "ivalue",
                     fractions: tuple[float, ...] = FRACTIONS, level: float = 0.95,
                     ) -> dict[str, dict[str, dict[float, Interval]]]:
    """``focus`` minus every other arm, seed-paired, at each share of the budget, with
    Student-t intervals: ``{dataset: {other: {fraction: Interval}}}``."""
    by = _by_seed(results)
    out: dict[str, dict[str, dict[float, Interval]]] = {}
    for dataset, methods in by.items():
        mine = methods.get(focus)
        if not mine:
            continue
        out[dataset] = {}
        for other, theirs in methods.items():
            if other == focus:
                continue
            seeds = sorted(set(mine) & set(theirs))
            out[dataset][other] = {
                f: paired_interval([_acc_at(mine[s], f) - _acc_at(theirs[s], f)
                                    for s in seeds], level) for f in fractions}
    return out


def steps_to_target(results: dict[str, Any], reference: str = "uniform", level: float = 0.95,
                    ) -> dict[str, dict[str, Interval]]:
    """Per arm, the median over seeds of the steps to reach ``reference``'s final accuracy on
    the same seed, as a share of the budget (``inf`` when a seed never reaches it), with a
    percentile bootstrap interval: ``{dataset: {method: Interval}}``."""
    by = _by_seed(results)
    out: dict[str, dict[str, Interval]] = {}
    for dataset, methods in by.items():
        ref = methods.get(reference)
        if not ref:
            continue
        out[dataset] = {}
        for method, cells in methods.items():
            ratios = []
            for seed in sorted(set(cells) & set(ref)):
                target = best_so_far(ref[seed]["curve"])[-1]
                acc = best_so_far(cells[seed]["curve"])
                hit = np.flatnonzero(acc >= target - 1e-12)
                ratios.append(cells[seed]["curve"][int(hit[0])]["step"] / cells[seed]["budget"]
                              if hit.size else math.inf)
            out[dataset][method] = bootstrap_interval(ratios, level=level)
    return out


def timings_table(results: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean seconds per phase (graph building, traversal setup, selection, training steps) and
    the run's total wall time, per dataset and method."""
    acc: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for cell in results["cells"].values():
        t = dict(cell.get("timings") or {})
        t["run_wall_s"] = float(cell.get("run_wall_s", math.nan))
        acc[cell["dataset"]][cell["method"]].append(t)
    return {d: {m: {k: float(np.mean([r.get(k, math.nan) for r in rows]))
                    for k in ("graph_s", "setup_s", "selection_s", "step_s", "run_wall_s")}
                for m, rows in ms.items()} for d, ms in acc.items()}


def _by_seed(results: dict[str, Any]) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    by: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for cell in results["cells"].values():
        by[cell["dataset"]][cell["method"]][cell["seed"]] = cell
    return by


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


def _bold(iv: Interval) -> str:
    text = iv.text()
    return f"**{text}**" if iv.significant else text


def _seed_text(seeds: list[int] | None) -> str:
    """``100-119`` for a run of consecutive seeds, else the list."""
    if not seeds:
        return ""
    s = sorted(seeds)
    if s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


def _fmt(x: float, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec) + suffix


def markdown_report(results: dict[str, Any], command: str = "",
                    reference: str = "uniform", focus: str = "ivalue") -> str:
    """The bench report as markdown: one table per dataset, the conventions, the command.

    Only report-seed cells are used (:func:`report_cells`)."""
    results = report_cells(results)
    summary = summarise(results, reference)
    spec = results.get("spec", {})
    lines = ["# HyperGraph bench report", ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    lines += [
        f"Model: `{spec.get('model')}`; graph: `{spec.get('dataloader')}`; batch size "
        f"{spec.get('batch_size')}; report seeds {_seed_text(spec.get('seeds'))}; design "
        f"seeds {_seed_text(spec.get('design_seeds')) or 'not recorded'} (left out of every "
        "table).",
        "",
        "Accuracy = test accuracy of the best-validation checkpoint so far (mean ± std over "
        "seeds), at the full step budget, equal for every method. Compute is counted in "
        "forward-pass equivalents: 3 x training samples (forward + backward ≈ 2 forwards) + "
        "forward-only selection samples + other selection work (irreducible-loss models) "
        "converted by parameter count. Wall time includes building the graph and setting the "
        "traversal up (near-duplicate groups, irreducible-loss models). *To target* = first "
        "checkpoint where the seed-mean curve "
        f"reaches {reference}'s final accuracy; ratios divide by {reference}'s steps, compute "
        "and wall time at the full budget (lower is better; n/a = never reached). *Paired*: "
        f"each seed's target is {reference}'s final accuracy on the same seed (same data, "
        "same initialisation); Δ is the seed-paired accuracy difference at the budget.",
        "",
    ]
    tuned = spec.get("tuned")
    if tuned:
        arms = sorted({a["key"] for per in tuned.get("arms", {}).values() for a in per})
        where = (f"the settings tuned on `{tuned['transfer_from']}`, transferred to every "
                 "dataset" if tuned.get("transfer_from") else "each dataset's own settings")
        lines += [
            f"Tuned arms ({', '.join(f'`{a}`' for a in arms) or 'none'}): {where}, from "
            f"`{tuned.get('file')}`: {tuned.get('trials')} trials per method "
            f"({tuned.get('sampler')}) on design seeds "
            f"{_seed_text(tuned.get('design_seeds'))}, objective: {tuned.get('objective')}. "
            "Arms without the suffix run at their defaults"
            + (f"; not tuned (no tuned entry or an empty tuning space): "
               f"{', '.join(tuned['untuned'])}" if tuned.get("untuned") else "") + ".", ""]
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
    for name in (focus, focus + "_tuned"):  # the tuned arm too, when there is one
        fractions = paired_fractions(results, name)
        if not fractions:
            continue
        lines += [f"## {name} minus each arm at 1/4, 1/2 and the full budget", "",
                  "Seed-paired difference of test accuracy (best-on-validation checkpoint) "
                  "with its 95% Student-t interval; **bold** when the interval excludes 0.", "",
                  "| dataset | vs | 1/4 budget | 1/2 budget | full budget |",
                  "|---|---|---|---|---|"]
        for dataset, block in fractions.items():
            for other, by_f in block.items():
                cells = [_bold(by_f[f]) for f in FRACTIONS]
                lines.append(f"| {dataset} | {other} | " + " | ".join(cells) + " |")
        lines.append("")
    stt = steps_to_target(results, reference)
    if stt:
        lines += [f"## Steps to {reference}'s final accuracy (per seed), share of the budget",
                  "", "Median over seeds with a 95% percentile bootstrap interval over seeds "
                  "(inf: not reached within the budget on half the seeds or more; a bound of inf: "
                  "on enough resampled seeds).", "",
                  "| dataset | method | steps to target |", "|---|---|---|"]
        for dataset, block in stt.items():
            for method, iv in block.items():
                lines.append(f"| {dataset} | {method} | {iv.text('.2f')}x |")
        lines.append("")
    times = timings_table(results)
    if times:
        lines += ["## Seconds per run (means over seeds)", "",
                  "| dataset | method | graph | setup | selection | steps | whole run |",
                  "|---|---|---|---|---|---|---|"]
        for dataset, block in times.items():
            for method, t in block.items():
                lines.append(f"| {dataset} | {method} | {_fmt(t['graph_s'], '.2f')} | "
                             f"{_fmt(t['setup_s'], '.2f')} | {_fmt(t['selection_s'], '.2f')} | "
                             f"{_fmt(t['step_s'], '.2f')} | {_fmt(t['run_wall_s'], '.1f')} |")
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
