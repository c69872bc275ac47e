"""ACE: the space, the surrogate, ask/tell, state, replay and its CLI, the Optuna sampler."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import cli as run_cli
from hypergraph import registry, tags
from hypergraph.ace import ACE, Space, Table, regret_curve, replay
from hypergraph.exceptions import ConfigError, DataError, InvalidParameterError

EFFECTS = {"a": [1.0, -0.5, -0.5], "b": [0.3, -0.3], "c": [2.0, 0.0, -1.0, -1.0]}
SLOTS = {"a": ["x", "y", "z"], "b": ["p", "q"], "c": ["1", "2", "3", "4"]}


def additive(combo: dict[str, str]) -> float:
    return 5.0 + sum(EFFECTS[s][SLOTS[s].index(combo[s])] for s in SLOTS)


def test_recovers_main_effects_of_noiseless_additive_space() -> None:
    space = Space(SLOTS)
    ace = ACE(space, seed=0)
    for code in space.valid_codes():
        ace.tell(space.decode(code), additive(space.decode(code)))
    effects = ace.effects()
    for slot, values in EFFECTS.items():
        got = [effects["main"][slot][c]["mean"] for c in SLOTS[slot]]
        np.testing.assert_allclose(got, values, atol=1e-2)
        assert all(effects["main"][slot][c]["std"] < 0.02 for c in SLOTS[slot])
    assert max(effects["importance"], key=effects["importance"].get) == "c"
    mean, std = ace.predict([{"a": "x", "b": "p", "c": "1"}, ("z", "q", "4")])
    np.testing.assert_allclose(mean, [8.3, 3.2], atol=1e-2)
    assert np.all(std < 0.05)


def test_minimize_flips_the_effects_back_to_score_units() -> None:
    space = Space(SLOTS)
    ace = ACE(space, seed=0, maximize=False)
    for code in space.valid_codes():
        ace.tell(space.decode(code), additive(space.decode(code)))
    got = [ace.effects()["main"]["c"][c]["mean"] for c in SLOTS["c"]]
    np.testing.assert_allclose(got, EFFECTS["c"], atol=1e-2)
    assert ace.ask(1) and ace.ranking(1)[0]["combo"]["c"] in ("3", "4")


def constrained_space() -> Space:
    return Space(SLOTS, constraint=lambda c: not (c["a"] == "x" and c["c"] == "1"),
                 forbidden=[{"b": "q", "c": "4"}])


@pytest.mark.parametrize("acquisition", ["thompson", "ucb", "ei", "greedy"])
def test_never_proposes_invalid_or_scored_while_untried_remain(acquisition: str) -> None:
    space = constrained_space()
    valid = {tuple(c) for c in space.valid_codes().tolist()}
    assert len(valid) == 24 - 2 - 3  # (x, *, 1): 2 combinations, (*, q, 4): 3
    ace = ACE(space, seed=3, acquisition=acquisition, epsilon=0.3)
    seen: set[tuple[int, ...]] = set()
    rng = np.random.default_rng(0)
    while len(seen) < len(valid):
        batch = ace.ask(min(3, len(valid) - len(seen)))
        keys = [tuple(space.encode(c).tolist()) for c in batch]
        assert len(set(keys)) == len(keys)  # a batch never repeats itself
        for combo, key in zip(batch, keys, strict=True):
            assert space.is_valid(combo) and key in valid
            assert key not in seen  # not scored before while untried ones remain
            seen.add(key)
            ace.tell(combo, additive(combo) + rng.normal(0, 0.1))
    again = ace.ask(2)  # all scored: re-scoring for noise is all that is left
    assert len(again) == 2 and all(space.is_valid(c) for c in again)


def test_pending_combinations_are_not_proposed_again() -> None:
    space = Space(SLOTS)
    ace = ACE(space, seed=1, n_init=2)
    for combo in ace.ask(2):
        ace.tell(combo, additive(combo))
    first = ace.ask(4)
    second = ace.ask(4)
    keys = [tuple(sorted(c.items())) for c in first + second]
    assert len(set(keys)) == 8
    ace.forget(first[0])  # a failed run: may come back
    assert len(ace.pending_) == 7


def test_deterministic_under_a_seed_and_state_round_trip() -> None:
    def run(seed: int, k: int) -> tuple[list[dict[str, str]], ACE]:
        ace = ACE(Space(SLOTS), seed=seed)
        out = []
        for _ in range(k):
            combo = ace.ask(1)[0]
            out.append(combo)
            ace.tell(combo, additive(combo) + 0.1 * len(out) % 0.3)
        return out, ace

    a, ace_a = run(7, 10)
    b, _ = run(7, 10)
    assert a == b
    assert run(8, 10)[0] != a
    restored = ACE.from_dict(json.loads(json.dumps(ace_a.to_dict())))
    assert restored.ask(3) == ace_a.ask(3)
    np.testing.assert_allclose(restored.predict([a[0]])[0], ace_a.predict([a[0]])[0])


def test_registry_space_only_proposes_tag_valid_combinations() -> None:
    space = Space.from_registry(("dataloader", "model", "traversal", "manager"),
                                allow={"model": ["mlp", "logreg", "cnn"]},
                                fixed={"dataset": "iris"})
    codes = space.valid_codes()
    assert 0 < len(codes) < space.size  # the tags rule some out (cnn needs images)
    for code in codes:
        combo = space.decode(code)
        classes = {"dataset": registry.resolve("dataset", "iris")}
        classes.update({k: registry.resolve(k, v) for k, v in combo.items()})
        assert not tags.problems(classes)
    ace = ACE(space, seed=0)
    for combo in ace.ask(8):
        assert combo["model"] != "cnn" and space.is_valid(combo)
    again = Space.from_dict(json.loads(json.dumps(space.to_dict())))
    assert len(again.valid_codes()) == len(codes)


def test_bad_input_raises_project_errors() -> None:
    space = Space(SLOTS)
    ace = ACE(space, seed=0)
    with pytest.raises(DataError):
        ace.tell({"a": "x", "b": "p", "c": "1"}, float("nan"))
    with pytest.raises(DataError):
        ace.tell({"a": "x", "b": "p", "c": "1"}, 1.0, cost=-1)
    with pytest.raises(ConfigError):
        ace.tell({"a": "x", "b": "p"}, 1.0)
    with pytest.raises(KeyError):  # UnknownNameError, with the choices
        ace.tell({"a": "w", "b": "p", "c": "1"}, 1.0)
    with pytest.raises(ConfigError):
        ACE(space, acquisition="bogus")
    with pytest.raises(InvalidParameterError):
        ace.ask(0)
    with pytest.raises(ConfigError):
        Space({"a": []})


def test_cost_model_and_score_per_cost() -> None:
    space = Space(SLOTS)
    ace = ACE(space, seed=0, objective="score_per_cost", n_init=4)
    for code in space.valid_codes()[::3]:
        combo = space.decode(code)
        ace.tell(combo, additive(combo), cost=10.0 if combo["a"] == "x" else 1.0)
    cost, _ = ace.predict_cost([{"a": "x", "b": "p", "c": "1"}, {"a": "y", "b": "p", "c": "1"}])
    assert cost[0] > 3 * cost[1]
    assert ace.ask(1)


def synthetic_table(seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    sizes = [4, 3, 5]
    codes = list(itertools.product(*[range(n) for n in sizes]))
    mains = [rng.normal(0, 1, n) for n in sizes]
    truth = np.array([sum(m[c] for m, c in zip(mains, code, strict=True)) for code in codes])
    score = truth + rng.normal(0, 0.1, len(truth))
    values = [[f"v{c}" for c in code] for code in codes]
    return Table(["a", "b", "c"], values, score, truth)


def test_replay_visits_table_rows_without_repeats() -> None:
    table = synthetic_table()
    for method in ("ace", "random", "tpe"):
        rows = replay(table, method, 20, seed=0)
        assert len(rows) == 20 and len(set(rows)) == 20
        assert all(0 <= r < len(table) for r in rows)
        curve = regret_curve(table, rows)
        assert np.all(curve >= 0)
    assert replay(table, "ace", 20, seed=1) == replay(table, "ace", 20, seed=1)
    with pytest.raises(ConfigError):
        replay(table, "bogus", 5, 0)


def write_csv(path: Path, table: Table, nan_row: int | None = None) -> None:
    lines = ["a,b,c,score,truth"]
    for i, (vals, s, t) in enumerate(zip(table.values, table.score, table.truth, strict=True)):
        lines.append(",".join([*vals, "nan" if i == nan_row else f"{s:.6f}", f"{t:.6f}"]))
    path.write_text("\n".join(lines) + "\n")




def test_replay_cli_writes_result_json(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    table = synthetic_table()
    csv = tmp_path / "t.csv"
    write_csv(csv, table)
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(["ace", "replay", str(csv), "--slots", "a,b,c", "--score",
                                 "score", "--truth", "truth", "--budget", "12", "--seeds", "3",
                                 "--method", "ace", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert set(result) == {"method", "runs"} and result["method"] == "ace"
    assert [r["seed"] for r in result["runs"]] == [0, 1, 2]
    for run in result["runs"]:
        assert set(run) == {"seed", "rows"}
        assert len(run["rows"]) == 12 and len(set(run["rows"])) == 12
        assert all(isinstance(i, int) and 0 <= i < len(table) for i in run["rows"])
    assert "median regret" in stdout
    report_dir = tmp_path / "rep"
    code, stdout, err = run_cli(["ace", "report", str(csv), "--slots", "a,b,c", "--score",
                                 "score", "--truth", "truth", "--results", str(out),
                                 "--out-dir", str(report_dir)], capsys)
    assert code == 0, err
    assert (report_dir / "effects.png").is_file() and (report_dir / "regret.png").is_file()
    assert "Spearman" in stdout and "held-out" in stdout


@pytest.mark.parametrize(("change", "fragment"), [
    ({"--slots": "a,b,zz"}, "no column 'zz'"),
    ({"--method": "bayes"}, "Unknown --method"),
    ({"--budget": "0"}, "--budget"),
    ({"--score": "nope"}, "no column 'nope'"),
    ({"table": "empty"}, "no rows"),
    ({"table": "nan"}, "non-finite"),
    ({"table": "missing"}, "does not exist"),
])
def test_replay_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      change: dict[str, str], fragment: str) -> None:
    table = synthetic_table()
    csv = tmp_path / "t.csv"
    if change.get("table") == "empty":
        csv.write_text("a,b,c,score,truth\n")
    elif change.get("table") == "nan":
        write_csv(csv, table, nan_row=3)
    elif change.get("table") != "missing":
        write_csv(csv, table)
    opts = {"--slots": "a,b,c", "--score": "score", "--budget": "5", "--seeds": "1",
            "--method": "random", "--out": str(tmp_path / "r.json")}
    opts.update({k: v for k, v in change.items() if k != "table"})
    argv = ["ace", "replay", str(csv), *itertools.chain.from_iterable(opts.items())]
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in err and err.startswith("Error: ") and fragment in err
    assert not (tmp_path / "r.json").exists()


def test_optuna_sampler_proposes_only_valid_combinations() -> None:
    optuna = pytest.importorskip("optuna")
    from hypergraph.ace import ACESampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = constrained_space()
    sampler = ACESampler(space=space, seed=0, n_init=3)

    def objective(trial: optuna.Trial) -> float:
        combo = {s: trial.suggest_categorical(s, SLOTS[s]) for s in SLOTS}
        assert space.is_valid(combo)
        lr = trial.suggest_float(f"{combo['a']}.lr", 1e-3, 1.0, log=True)
        return additive(combo) - abs(np.log10(lr) + 1)

    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(objective, n_trials=15)
    assert len(study.trials) == 15
    assert all(space.is_valid({s: t.params[s] for s in SLOTS}) for t in study.trials)
    assert study.best_params["c"] == "1" and study.best_params["a"] in ("y", "z")
    assert "ace:theta" in study._storage.get_study_system_attrs(study._study_id)
