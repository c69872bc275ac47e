"""The equal tuning budget of the fair bench (issue 15, item 2): ``hypergraph bench --tune N``
tunes every method on design seeds by validation accuracy with exactly N trials, resumes, and
``--tuned`` runs the report seeds with the tuned settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from cli_helpers import cli
from hypergraph import registry
from hypergraph.bench import (
    DATASETS,
    METHODS,
    TUNE_SPACES,
    BenchDataset,
    BenchSpec,
    _tune,
    current_params,
    load_tuned,
    markdown_report,
    parse_method,
    run_bench,
    run_tune,
    tune_space,
    tuned_arms,
)
from hypergraph.exceptions import ConfigError
from hypergraph.spaces import Categorical

TINY = BenchDataset("tiny", "synthetic", {"n_samples": 300, "label_noise": 0.2}, steps=20)
SMALL_MODEL = {"name": "mlp", "params": {"width": 16, "depth": 1}}


def _fake_run_cell(calls: list[tuple[str, str, int]]) -> Any:
    """A stand-in for a training run: validation accuracy is a smooth function of the
    parameters (best at prune_ratio 0.3 / pressure 10) and test accuracy its opposite, so a
    tuning that read test accuracy would pick the worst setting."""

    def run_cell(spec: BenchSpec, dataset: BenchDataset, method: Any, seed: int,
                 ) -> dict[str, Any]:
        calls.append((dataset.key, method.key, seed))
        p = dict(method.params)
        p |= {f"inner.{k}": v for k, v in (p.get("inner_params") or {}).items()}
        score = 0.8 - abs(p.get("inner.prune_ratio", p.get("prune_ratio", 0.3)) - 0.3) \
            - 0.01 * abs(float(p.get("pressure", 10.0)) - 10.0) ** 0.5 + 0.001 * seed
        curve = [{"step": s, "val_acc": score * s / 10, "test_acc": 1 - score * s / 10}
                 for s in range(11)]
        return {"curve": curve, "budget": 10}

    return run_cell


def _spec(seeds: list[int], methods: str = "uniform,infobatch_dedup,loss_topk") -> BenchSpec:
    return BenchSpec(datasets=[TINY], methods=[parse_method(m) for m in methods.split(",")],
                     seeds=seeds, model=SMALL_MODEL, evals=4)


def _trials(out: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{out / 'tune.db'}")
    return loaded.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


# ---------------------------------------------------------------------------- spaces
def test_tuning_spaces_lie_inside_the_declared_spaces_and_hold_the_defaults() -> None:
    for name in TUNE_SPACES:
        registry.resolve("traversal", name)  # a registered traversal
    for key in ("epoch_dedup", "infobatch", "infobatch_dedup", "loss_topk", "rho_loss",
                "ivalue"):
        method = METHODS[key]
        space = tune_space(method)  # raises when a range leaves the declared space
        assert space, key
        for name, value in current_params(method, space).items():
            param = space[name]
            if isinstance(param, Categorical):
                assert value in param.choices, (key, name)
            else:
                assert param.low <= value <= param.high, (key, name, value)  # type: ignore
    assert tune_space(METHODS["uniform"]) == {}
    assert set(tune_space(METHODS["infobatch_dedup"])) == {"dedup", "inner.prune_ratio",
                                                           "inner.delta"}


# ---------------------------------------------------------------------------- tuning
def test_tuning_uses_design_seeds_and_validation_with_exactly_n_trials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, int]] = []
    monkeypatch.setattr(_tune, "run_cell", _fake_run_cell(calls))
    result = run_tune(_spec([0, 1]), trials=5, out_dir=tmp_path)
    assert {seed for _, _, seed in calls} == {0, 1}  # design seeds only
    methods = result["datasets"]["tiny"]["methods"]
    assert methods["uniform"]["trials"] == 1 and "empty" in methods["uniform"]["note"]
    assert methods["uniform"]["tuned"] == {}
    for key in ("infobatch_dedup", "loss_topk"):
        entry = methods[key]
        assert entry["trials"] == 5
        trials = _trials(tmp_path, entry["study"])
        assert len(trials) == 5
        # trial 0 is the method's current setting, the score is the validation objective
        assert trials[0].params == entry["default"]
        best = max(trials, key=lambda t: t.value)
        assert entry["score"] == pytest.approx(best.value)
        assert entry["tuned"] == best.params
        assert entry["score"] >= entry["default_score"]
    # 1 + 5 + 5 trials, two design seeds each
    assert len(calls) == (1 + 5 + 5) * 2
    # the score is the mean best validation accuracy (0.8 - ... + 0.001 seed), never test
    ib = methods["infobatch_dedup"]
    assert ib["val_per_seed"][1] - ib["val_per_seed"][0] == pytest.approx(0.001)
    assert ib["params"]["inner_params"]["prune_ratio"] == ib["tuned"]["inner.prune_ratio"]
    on_disk = load_tuned(tmp_path / "tuned.json")
    assert on_disk["design_seeds"] == [0, 1] and on_disk["trials"] == 5


def test_tuning_resumes_after_an_interruption_as_if_uninterrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, int]] = []
    monkeypatch.setattr(_tune, "run_cell", _fake_run_cell(calls))
    whole = run_tune(_spec([0], "loss_topk"), trials=6, out_dir=tmp_path / "a")

    def stop_after(n: int) -> Any:
        seen = [0]

        def on_cell(info: str) -> None:
            seen[0] += 1
            if seen[0] == n:
                raise KeyboardInterrupt

        return on_cell

    with pytest.raises(KeyboardInterrupt):
        run_tune(_spec([0], "loss_topk"), trials=6, out_dir=tmp_path / "b",
                 on_cell=stop_after(4))
    calls.clear()
    resumed = run_tune(_spec([0], "loss_topk"), trials=6, out_dir=tmp_path / "b")
    assert len(calls) == 3  # trials 3, 4, 5 (trial 3 was interrupted and is run again)
    a = whole["datasets"]["tiny"]["methods"]["loss_topk"]
    b = resumed["datasets"]["tiny"]["methods"]["loss_topk"]
    assert b["trials"] == 6
    assert [t.params for t in _trials(tmp_path / "a", a["study"])] == \
        [t.params for t in _trials(tmp_path / "b", b["study"])]
    calls.clear()
    run_tune(_spec([0], "loss_topk"), trials=6, out_dir=tmp_path / "b")
    assert calls == []  # complete: nothing runs again


# ---------------------------------------------------------------------------- --tuned
def _tuned_file(path: Path, **change: Any) -> Path:
    data: dict[str, Any] = {
        "version": 1, "design_seeds": [0, 1], "trials": 3, "sampler": "TPESampler",
        "objective": "validation",
        "datasets": {"noisy": {"methods": {
            "uniform": {"traversal": "uniform", "params": {}, "tuned": {}},
            "infobatch": {"traversal": "infobatch",
                          "params": {"prune_ratio": 0.25, "delta": 0.6},
                          "tuned": {"prune_ratio": 0.25, "delta": 0.6}}}}}}
    data.update(change)
    path.write_text(json.dumps(data))
    return path


def test_tuned_arms_carry_the_tuned_params_into_the_bench(tmp_path: Path) -> None:
    tuned = load_tuned(_tuned_file(tmp_path / "tuned.json"))
    noisy = BenchDataset("noisy", "synthetic", {"n_samples": 300, "label_noise": 0.3},
                         steps=12)
    methods = [parse_method("uniform"), parse_method("infobatch")]
    arms = tuned_arms(tuned, [noisy], methods)
    assert [(a.key, a.params) for a in arms["noisy"]] == [
        ("infobatch_tuned", {"prune_ratio": 0.25, "delta": 0.6})]  # uniform: nothing tuned
    spec = BenchSpec(datasets=[noisy], methods=methods, seeds=[100], design_seeds=[0, 1],
                     evals=3, model=SMALL_MODEL, tuned=arms,
                     tuned_from={"file": "tuned.json", "design_seeds": [0, 1], "trials": 3,
                                 "sampler": "TPESampler", "objective": "validation",
                                 "transfer_from": None, "untuned": ["uniform"]})
    results = run_bench(spec, tmp_path / "b")
    cells = {c["method"]: c for c in results["cells"].values()}
    assert set(cells) == {"uniform", "infobatch", "infobatch_tuned"}
    assert cells["infobatch_tuned"]["traversal_params"] == {"prune_ratio": 0.25, "delta": 0.6}
    assert cells["infobatch"]["traversal_params"] == {}
    assert results["spec"]["tuned"]["arms"]["noisy"][0]["key"] == "infobatch_tuned"
    text = markdown_report(results)
    assert "`infobatch_tuned`" in text and "design seeds 0, 1" in text
    # a transfer uses another dataset's settings; a dataset never tuned is refused
    other = BenchDataset("other", "synthetic", {}, steps=5)
    assert tuned_arms(tuned, [other], methods, source="noisy")["other"][0].params == \
        {"prune_ratio": 0.25, "delta": 0.6}
    with pytest.raises(ConfigError, match="no settings tuned on 'other'"):
        tuned_arms(tuned, [other], methods)


@pytest.mark.parametrize("change, message", [
    ({"version": 7}, "format version"),
    ({"design_seeds": []}, "design_seeds"),
    ({"datasets": {"noisy": {"methods": {"infobatch": {"traversal": "infobatch",
                                                       "params": {"prune_ratio": 5}}}}}},
     "prune_ratio"),
    ({"datasets": {"noisy": {"methods": {"x": {"traversal": "nope", "params": {}}}}}},
     "nope"),
    ({"datasets": {"noisy": []}}, "methods"),
])
def test_a_bad_tuned_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  change: dict[str, Any], message: str) -> None:
    path = _tuned_file(tmp_path / "tuned.json", **change)
    code, out, err = cli(["bench", "--tuned", str(path), "--seeds", "100-101", "--datasets",
                          "noisy", "--methods", "infobatch", "-o", str(tmp_path / "b"),
                          "--no-progress"], capsys)
    assert code == 2, out + err
    assert message in out + err and "Traceback" not in out + err


def test_cli_refuses_bad_tuning_requests_with_exit_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    good = _tuned_file(tmp_path / "tuned.json")
    (tmp_path / "junk.json").write_text("{not json")
    for argv, message in [
        (["--tuned", str(tmp_path / "missing.json"), "--seeds", "100-101"], "no such file"),
        (["--tuned", str(tmp_path / "junk.json"), "--seeds", "100-101"], "not readable JSON"),
        (["--tuned", str(good), "--seeds", "1-3"], "include report seeds"),
        (["--tuned", str(good), "--seeds", "100-101", "--datasets", "redundant"],
         "no settings tuned on 'redundant'"),
        (["--tune", "3", "--seeds", "100-101", "--design-seeds", "0-1"], "--design-seeds only"),
        (["--tune", "3"], "needs --design-seeds"),
        (["--tuned-dataset", "noisy", "--seeds", "100-101"], "need --tuned"),
        (["--tuned-only", "--seeds", "100-101"], "need --tuned"),
    ]:
        code, out, err = cli(["bench", *argv, "--methods", "uniform,infobatch", "-o",
                              str(tmp_path / "b"), "--no-progress"], capsys)
        assert code == 2 and message in out + err, (argv, out + err)
        assert "Traceback" not in out + err


def test_cli_tune_writes_tuned_json_on_a_tiny_budget(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["bench", "--tune", "2", "--design-seeds", "0-0", "--datasets", "noisy",
                          "--methods", "uniform,loss_topk", "--step-scale", "0.02", "--evals",
                          "2", "-o", str(tmp_path / "t"), "--no-progress"], capsys)
    assert code == 0, out + err
    tuned = load_tuned(tmp_path / "t" / "tuned.json")
    entry = tuned["datasets"]["noisy"]["methods"]["loss_topk"]
    assert entry["trials"] == 2 and tuned["design_seeds"] == [0]
    assert DATASETS["noisy"].steps * 0.02 == tuned["datasets"]["noisy"]["budget"]
    assert "empty tuning space" in out


def test_cli_tuned_only_runs_the_tuned_arms_and_the_untuned_methods(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _tuned_file(tmp_path / "tuned.json")
    code, out, err = cli(["bench", "--tuned", str(good), "--tuned-only", "--seeds", "100-100",
                          "--datasets", "noisy", "--methods", "uniform,infobatch",
                          "--step-scale", "0.02", "--evals", "2", "-o", str(tmp_path / "b"),
                          "--no-progress"], capsys)
    assert code == 0, out + err
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    cells = {c["method"]: c for c in results["cells"].values()}
    assert set(cells) == {"uniform", "infobatch_tuned"}
    assert cells["infobatch_tuned"]["traversal_params"] == {"prune_ratio": 0.25, "delta": 0.6}
    assert results["spec"]["tuned"]["untuned"] == ["uniform"]
    assert results["spec"]["design_seeds"] == [0, 1]
