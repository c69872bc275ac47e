"""The fair bench (issue 15): seed sets, equal steps, shared components, baselines as their
papers run them, and the statistics of the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import cli
from hypergraph.bench import (
    BenchDataset,
    BenchSpec,
    bootstrap_interval,
    markdown_report,
    paired_fractions,
    paired_interval,
    parse_method,
    parse_seeds,
    report_cells,
    run_bench,
    steps_to_target,
)
from hypergraph.exceptions import ConfigError
from hypergraph.graph import HyperGraph
from hypergraph.traversals import (
    ComponentsTraversal,
    InfoBatchTraversal,
    LossTopKTraversal,
    TraversalContext,
    UniformTraversal,
)

# ---------------------------------------------------------------------------- seeds


def test_overlapping_seed_sets_are_refused() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        BenchSpec(datasets=[], methods=[], seeds=[5, 6], design_seeds=[0, 5])
    BenchSpec(datasets=[], methods=[], seeds=[10, 11], design_seeds=[0, 1])  # disjoint: fine


def test_cli_refuses_overlapping_seeds_with_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["bench", "--seeds", "100-119", "--design-seeds", "0-100",
                          "--out", str(tmp_path / "b"), "--no-progress"], capsys)
    assert code == 2
    assert "overlap" in out + err and "Traceback" not in out + err
    code, out, err = cli(["bench", "--seeds", "9-x", "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and "range" in out + err


def test_parse_seeds_forms() -> None:
    assert parse_seeds("100-103") == [100, 101, 102, 103]
    assert parse_seeds("0,2,5-6") == [0, 2, 5, 6]
    assert parse_seeds("3", first=10) == [10, 11, 12]
    for bad in ("5-2", "a", "1,1", ""):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def _cell(method: str, seed: int, accs: list[float]) -> dict[str, object]:
    curve = [{"step": 100 * i, "val_acc": a, "test_acc": a, "compute": 192.0 * i,
              "wall_s": i / 10, "selection_forward": 0.0} for i, a in enumerate(accs)]
    return {"dataset": "d", "method": method, "seed": seed, "budget": 400, "curve": curve,
            "timings": {"graph_s": 1.0, "setup_s": 0.5, "selection_s": 0.1, "step_s": 2.0},
            "run_wall_s": 4.0}


def test_report_uses_report_seeds_only() -> None:
    cells = {f"u{s}": _cell("uniform", s, [0.1, 0.5, 0.6, 0.7, 0.8]) for s in (0, 100, 101)}
    cells |= {f"i{s}": _cell("ivalue", s, [0.1, 0.6, 0.7, 0.8, 0.9]) for s in (100, 101)}
    cells["i0"] = _cell("ivalue", 0, [0.1, 0.1, 0.1, 0.1, 0.1])  # a design seed: ignored
    results = {"cells": cells, "spec": {"seeds": [100, 101], "design_seeds": [0]}}
    kept = report_cells(results)["cells"]
    assert {c["seed"] for c in kept.values()} == {100, 101}
    text = markdown_report(results)
    assert "report seeds 100, 101" in text and "design seeds 0" in text
    frac = paired_fractions(report_cells(results))["d"]["uniform"]
    # at 1/4 budget (step 100): .6 - .5; at 1/2: .7 - .6; at the budget: .9 - .8
    assert [round(frac[f].mean, 6) for f in (0.25, 0.5, 1.0)] == [0.1, 0.1, 0.1]
    assert all(frac[f].n == 2 for f in frac)
    stt = steps_to_target(report_cells(results))["d"]
    assert stt["ivalue"].mean == pytest.approx(0.75)  # reaches .8 at step 300 of 400
    assert stt["uniform"].mean == pytest.approx(1.0)


# ---------------------------------------------------------------------------- statistics
def test_paired_interval_matches_the_t_formula() -> None:
    iv = paired_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert iv.mean == pytest.approx(2.0)
    assert (iv.low, iv.high) == (pytest.approx(2.0 - half), pytest.approx(2.0 + half))
    assert not iv.significant and not paired_interval([-1.0, 1.0]).significant
    assert paired_interval([1.0, 1.2, 0.9, 1.1]).significant
    assert math.isnan(paired_interval([0.5]).low)


def test_bootstrap_interval_is_deterministic_and_brackets_the_median() -> None:
    values = [0.3, 0.35, 0.4, 0.33, 0.37, 0.5, 0.31, 0.36]
    a, b = bootstrap_interval(values), bootstrap_interval(values)
    assert a == b
    assert a.low <= a.mean <= a.high and a.mean == pytest.approx(float(np.median(values)))
    same = bootstrap_interval([0.5] * 6)
    assert (same.low, same.mean, same.high) == (0.5, 0.5, 0.5)
    never = bootstrap_interval([math.inf] * 5)
    assert math.isinf(never.mean)


# ---------------------------------------------------------------------------- equal steps
def test_every_arm_takes_exactly_the_step_budget(tmp_path: Path) -> None:
    tiny = BenchDataset("tiny", "synthetic", {"n_samples": 300, "redundancy": 0.5}, steps=37)
    methods = [parse_method(m) for m in ("uniform", "infobatch", "epoch_dedup", "ivalue")]
    spec = BenchSpec(datasets=[tiny], methods=methods, seeds=[100], design_seeds=[0],
                     evals=5, model={"name": "mlp", "params": {"width": 16, "depth": 1}})
    results = run_bench(spec, tmp_path)
    assert results["spec"]["design_seeds"] == [0]
    assert len(results["cells"]) == 4
    for cell in results["cells"].values():
        assert cell["steps_run"] == 37, cell["method"]
        assert cell["curve"][-1]["step"] == 37
        t = cell["timings"]
        assert {"graph_s", "setup_s", "selection_s", "step_s"} <= set(t)
        assert cell["curve"][-1]["wall_s"] >= t["graph_s"] + t["setup_s"]


# ---------------------------------------------------------------------------- components
def _grouped_graph() -> HyperGraph:
    """20 training nodes: 0-9 near-duplicates (edges of weight 1), 10-19 distinct
    (a ring of weight 0.5), and 4 test nodes."""
    src = list(range(9)) + list(range(10, 20))
    dst = [*range(1, 10), *range(11, 20), 10]
    w = [1.0] * 9 + [0.5] * 10
    split = np.array([0] * 20 + [2] * 4, np.int8)
    label = np.array([0] * 10 + [1] * 10 + [0, 1, 0, 1], np.int64)
    return HyperGraph.from_edges(24, np.array(src), np.array(dst), np.array(w),
                                 split=split, label=label)


def _run(trav: ComponentsTraversal, steps: int, batch: int, seed: int = 0,
         ) -> list[np.ndarray]:
    trav.setup(_grouped_graph(), batch, np.random.default_rng(seed),
               TraversalContext(epochs=10))
    out = []
    for step in range(steps):
        if step % trav.steps_per_epoch() == 0:
            trav.on_epoch_start(step // trav.steps_per_epoch())
        sel = trav.next_batch()
        out.append(sel.ids)
        trav.feedback(sel.ids, np.ones(sel.ids.size, np.float32))
    return out


def test_epoch_dedup_visits_one_member_per_group_per_pass() -> None:
    trav = ComponentsTraversal(inner="comprehensive", dedup=0.9)
    batches = _run(trav, steps=11, batch=1)  # 11 groups: one pass
    assert trav.steps_per_epoch() == 11
    ids = np.concatenate(batches)
    assert np.sum(ids < 10) == 1  # the ten copies count as one node
    assert sorted(ids[ids >= 10].tolist()) == list(range(10, 20))


def test_cover_sweeps_every_group_and_dedup_off_changes_nothing() -> None:
    trav = ComponentsTraversal(inner="uniform", dedup=0.9, cover=0.5)
    batches = _run(trav, steps=6, batch=4)  # 2 swept per batch: 11 groups in 6 batches
    swept = np.concatenate([b[:2] for b in batches])
    groups = {0 if i < 10 else int(i) for i in swept}
    assert groups == {0, *range(10, 20)}
    # with neither component the wrapper selects what its inner traversal selects (after the
    # one permutation of the coverage pass drawn at setup)
    plain = _run(ComponentsTraversal(inner="uniform"), steps=5, batch=4, seed=3)
    inner, rng = UniformTraversal(), np.random.default_rng(3)
    inner.setup(_grouped_graph(), 4, rng, TraversalContext(epochs=10))
    rng.permutation(20)
    assert all(np.array_equal(a, inner.next_batch().ids) for a in plain)


def test_dedup_feeds_losses_to_the_group_and_keeps_inner_weights() -> None:
    trav = ComponentsTraversal(inner="infobatch", inner_params={"prune_ratio": 0.5},
                               dedup=0.9)
    _run(trav, steps=3, batch=4)
    assert trav.inner_.train_ids_.size == 11  # the inner traversal sees one node per group
    sel = trav.next_batch()
    assert sel.weights is not None and sel.weights.size == sel.ids.size


# ---------------------------------------------------------------------------- baselines
def _line_graph(n: int = 200) -> HyperGraph:
    src = np.arange(n - 1)
    return HyperGraph.from_edges(n, src, src + 1, np.ones(n - 1),
                                 split=np.zeros(n, np.int8), label=np.arange(n) % 2)


def test_infobatch_anneals_inside_the_step_budget() -> None:
    budget, batch = 100, 16
    trav = InfoBatchTraversal(prune_ratio=0.5, delta=0.8)
    trav.setup(_line_graph(), batch, np.random.default_rng(0),
               TraversalContext(epochs=100_000, max_steps=budget))
    rng = np.random.default_rng(1)
    step, epoch, weighted = 0, 0, []
    while step < budget:
        trav.on_epoch_start(epoch)
        for _ in range(trav.steps_per_epoch()):
            if step >= budget:
                break
            sel = trav.next_batch()
            assert sel.weights is not None
            weighted.append(bool(np.any(sel.weights > 1.0)))
            trav.feedback(sel.ids, rng.random(sel.ids.size))
            step += 1
        epoch += 1
    assert any(weighted[:80])  # pruning (with rescaled weights) happened early on
    assert not any(weighted[80:])  # the last 20% of the steps use all data, weight 1


def test_loss_topk_recomputes_every_loss_between_epochs() -> None:
    calls: list[int] = []

    def score(ids: np.ndarray) -> np.ndarray:
        calls.append(int(ids.size))
        return np.asarray(ids, np.float64)  # loss = node id: the highest ids rank first

    trav = LossTopKTraversal(pressure=1e6, recompute_every=1)
    trav.setup(_line_graph(), 8, np.random.default_rng(0), TraversalContext(score=score))
    trav.on_epoch_start(0)
    trav.next_batch()
    assert calls == []  # nothing to refresh before the first epoch
    trav.on_epoch_start(1)
    assert calls == [200]  # every training node scored once
    assert float(np.mean(trav.next_batch().ids)) > 150  # and the refreshed losses rank


# ---------------------------------------------------------------------------- the default
def test_default_traversal_is_the_one_the_report_seeds_support() -> None:
    """Issue 15, item 5: the default of ``hypergraph train`` is chosen on report seeds
    (``docs/benchmarks.md``, 2026-12-03). Against epoch order over near-duplicate groups
    (``epoch_dedup``, the strongest baseline) ivalue is ahead on mixture_large, behind on
    redundant, tied on five sets at the full budget, and ahead or tied at 1/4 of the budget
    everywhere. With an equal tuning budget (8 trials per method on design seeds 0-4 of noisy,
    redundant and mixture, ``hypergraph bench --tune 8``) tuned ivalue is never behind a tuned
    arm at the full budget on report seeds and is ahead of every one on mixture; it ties the
    tuned epoch order with groups on noisy and redundant. So the default stays. Change this pin
    only with new report-seed evidence."""
    from hypergraph.kinds import DEFAULTS

    assert DEFAULTS["traversal"] == "ivalue"
