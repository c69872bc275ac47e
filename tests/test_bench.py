"""`hypergraph bench`: a tiny matrix writes results, report and plots, and resumes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypergraph.bench import (
    BenchSpec,
    best_so_far,
    head_to_head,
    parse_dataset,
    parse_method,
    run_bench,
    summarise,
)
from hypergraph.cli import app, main


def _point(step: int, val: float, test: float) -> dict[str, float]:
    return {"step": step, "val_acc": val, "test_acc": test, "compute": 3.0 * 64 * step,
            "wall_s": step / 100, "selection_forward": 0.0}


def _cell(method: str, seed: int, tests: list[float]) -> dict[str, object]:
    curve = [_point(100 * i, v, v) for i, v in enumerate(tests)]
    return {"dataset": "d", "method": method, "seed": seed, "budget": 400, "curve": curve}


def test_best_so_far_selects_on_validation() -> None:
    curve = [_point(0, 0.1, 0.2), _point(1, 0.5, 0.4), _point(2, 0.4, 0.9), _point(3, 0.6, 0.5)]
    assert best_so_far(curve).tolist() == [0.2, 0.4, 0.4, 0.5]


def test_summary_steps_and_compute_to_target_by_hand() -> None:
    results = {"cells": {
        "u0": _cell("uniform", 0, [0.1, 0.5, 0.6, 0.7, 0.8]),
        "u1": _cell("uniform", 1, [0.1, 0.5, 0.6, 0.7, 0.8]),
        "f0": _cell("fast", 0, [0.1, 0.7, 0.8, 0.8, 0.9]),
        "f1": _cell("fast", 1, [0.1, 0.6, 0.9, 0.9, 0.9]),
    }}
    s = summarise(results)["d"]
    assert s["target"] == pytest.approx(0.8)
    fast = s["methods"]["fast"]
    # seed-mean curve of "fast": .1, .65, .85, ... -> first reaches .8 at checkpoint 2 (step 200)
    assert fast["steps_to_target"] == 200 and fast["steps_to_target_ratio"] == 0.5
    assert fast["compute_to_target_ratio"] == pytest.approx(0.5)
    assert fast["paired_steps_ratio_median"] == pytest.approx(0.5)
    assert fast["paired_delta_mean"] == pytest.approx(0.1)
    assert s["methods"]["uniform"]["steps_to_target_ratio"] == 1.0


def test_parse_method_variants() -> None:
    m = parse_method("hot=ivalue:temperature=2.0,signal=loss")
    assert (m.key, m.name, m.params) == ("hot", "ivalue", {"temperature": 2.0, "signal": "loss"})
    assert parse_method("uniform").name == "uniform"


def test_cli_smoke_writes_results_report_plots_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", "--datasets", "digits", "--methods", "uniform,ivalue,infobatch",
            "--seeds", "1", "--step-scale", "0.05", "--evals", "4", "-o", str(out),
            "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    for name in ("results.json", "report.md", "curves_digits.png"):
        assert (out / name).is_file()
    data = json.loads((out / "results.json").read_text())
    assert len(data["cells"]) == 3
    for cell in data["cells"].values():
        assert cell["curve"][-1]["step"] == 20  # every method stopped at the same budget
        assert all(math.isfinite(p["test_acc"]) for p in cell["curve"])
    assert "| ivalue |" in (out / "report.md").read_text()
    skipped: list[bool] = []
    spec = BenchSpec([parse_dataset("digits")],
                     [parse_method(m) for m in ("uniform", "ivalue", "infobatch")], [0],
                     evals=4, step_scale=0.05)
    run_bench(spec, out, on_cell=lambda key, skip: skipped.append(skip))
    assert skipped == [True, True, True]
    # a changed setting of one arm re-runs that arm and drops its stale cell
    spec.methods[1] = parse_method("ivalue=ivalue:pressure=10.0")
    skipped.clear()
    data = run_bench(spec, out, on_cell=lambda key, skip: skipped.append(skip))
    assert skipped == [True, False, True] and len(data["cells"]) == 3


def test_head_to_head_paired_deltas_and_verdicts_by_hand() -> None:
    results = {"cells": {
        f"{m}{s}": _cell(m, s, curve)
        for m, per_seed in {
            "ivalue": [[0.1, 0.6, 0.9], [0.1, 0.7, 0.8], [0.1, 0.5, 0.7]],
            "uniform": [[0.1, 0.5, 0.8], [0.1, 0.5, 0.7], [0.1, 0.5, 0.6]],
            "rival": [[0.1, 0.6, 0.8], [0.1, 0.7, 0.9], [0.1, 0.5, 0.7]],
        }.items() for s, curve in enumerate(per_seed)}}
    h = head_to_head(results)["d"]
    # vs uniform: +0.1 on every seed -> se 0, ahead; the curve difference averages 3 checkpoints
    assert h["uniform"]["delta"] == pytest.approx(0.1)
    assert h["uniform"]["wins"] == 3 and h["uniform"]["verdict"] == "ahead"
    assert h["uniform"]["delta_auc"] == pytest.approx((0 + 0.1 + 0.1 + 0 + 0.2 + 0.1 + 0
                                                       + 0 + 0.1) / 9)
    # vs rival: +0.1, -0.1, 0 -> mean 0, a tie, one win
    assert h["rival"]["delta"] == pytest.approx(0.0, abs=1e-12)
    assert (h["rival"]["wins"], h["rival"]["verdict"]) == (1, "tie")
    assert "ivalue" not in h


def test_cli_first_seed_runs_later_seeds(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["bench", "--datasets", "digits", "--methods", "uniform",
                                   "--seeds", "2", "--first-seed", "7", "--step-scale", "0.02",
                                   "--evals", "2", "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert sorted(c["seed"] for c in data["cells"].values()) == [7, 8]
    with pytest.raises(SystemExit) as info:
        main(["bench", "--first-seed", "-1", "-o", str(out)])
    assert info.value.code == 2
