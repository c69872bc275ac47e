"""Sweeps: sweep files checked before any trial, the storage protocol, results, W&B, dashboard."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypergraph.cli import main
from hypergraph.cli._agent_args import translate_agent_args
from hypergraph.exceptions import ConfigError
from hypergraph.sweeps import SweepStore, load_sweep, sweep_from_mapping
from storages import BACKENDS, storage_url

ROOT = Path(__file__).resolve().parents[1]
EXE = ROOT / ".venv" / "bin" / "hypergraph"

BASE: dict[str, Any] = {
    "method": "random",
    "metric": {"name": "val.accuracy", "goal": "maximize"},
    "run_cap": 3,
    "parameters": {
        "dataset": {"value": "iris"},
        "model": {"value": "mlp"},
        "traversal": {"values": ["random_walk", "comprehensive"]},
        "model.width": {"values": [8, 16]},
        "model.lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1},
        "traversal.random_walk.teleport": {"min": 0.0, "max": 0.5},
        "trainer.epochs": {"value": 2},
    },
}


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp: Path, data: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def with_params(**changes: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if value is None:
            data["parameters"].pop(key, None)
        else:
            data["parameters"][key] = value
    return data


# -- malformed sweep files: exit 2 naming the key, before any trial -------------------------

MALFORMED = {
    "unknown distribution": (
        with_params(**{"model.lr": {"distribution": "log_normal", "min": 0.1, "max": 1}}),
        ["parameters.model.lr", "log_normal"]),
    "min > max": (with_params(**{"model.lr": {"min": 0.5, "max": 0.1}}),
                  ["parameters.model.lr", "min <= max"]),
    "outside the declared space": (with_params(**{"model.lr": {"min": 0.1, "max": 5.0}}),
                                   ["parameters.model.lr", "lr", "5.0"]),
    "unknown module": (with_params(traversal={"values": ["random_walk", "ivalu"]}),
                       ["parameters.traversal", "ivalu", "ivalue"]),
    "unknown parameter": (with_params(**{"model.widht": {"values": [8]}}),
                          ["parameters.model.widht", "width"]),
    "parameter of a module not chosen": (
        with_params(**{"traversal.ivalue.explore": {"min": 0.0, "max": 0.5}}),
        ["parameters.traversal.ivalue.explore", "ivalue", "does not choose"]),
    "parameter only of a module not chosen": (
        with_params(**{"traversal.signal": {"values": ["loss"]}}),
        ["parameters.traversal.signal", "ivalue", "does not choose"]),
    "unknown top-level key": ({**BASE, "controller": {"type": "local"}}, ["controller"]),
    "unknown kind": (with_params(**{"modle.lr": {"value": 0.1}}), ["parameters.modle.lr"]),
    "unknown metric": ({**BASE, "metric": {"name": "val.f1", "goal": "maximize"}},
                       ["metric.name", "f1", "accuracy"]),
    "test metric": ({**BASE, "metric": {"name": "test.accuracy"}}, ["metric.name", "test"]),
    "unsupported metric key": ({**BASE, "metric": {"name": "val.accuracy", "target": 0.9}},
                               ["metric.target"]),
    "unsupported hyperband key": (
        {**BASE, "early_terminate": {"type": "hyperband", "min_iter": 1, "s": 2}},
        ["early_terminate.s"]),
    "unknown method": ({**BASE, "method": "bayesian"}, ["method", "bayes"]),
    "grid over a continuous range": ({**BASE, "method": "grid"},
                                     ["parameters.model.lr", "grid"]),
    "distribution on a module choice": (
        with_params(model={"distribution": "uniform", "min": 0, "max": 1}),
        ["parameters.model"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_sweep_fails_before_any_trial(tmp_path: Path, case: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data, fragments = MALFORMED[case]
    code, _, err = cli(["sweep", "-c", str(write(tmp_path, data)), "--out",
                        str(tmp_path / "out")], capsys)
    assert code == 2, err
    text = " ".join(err.split())
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written, no trial


def test_other_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["sweep"], capsys)
    assert code == 2 and "-c sweep.yaml" in err
    code, _, err = cli(["sweep", "-c", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "does not exist" in err
    no_cap = {k: v for k, v in BASE.items() if k != "run_cap"}
    code, _, err = cli(["sweep", "-c", str(write(tmp_path, no_cap)), "--out",
                        str(tmp_path / "o")], capsys)
    assert code == 2 and "run_cap" in err
    code, _, err = cli(["sweep", "-c", str(write(tmp_path, BASE)), "--resume", "--out",
                        str(tmp_path / "o2")], capsys)
    assert code == 2 and "no sweep named" in err
    (tmp_path / "o3" / "trials" / "0").mkdir(parents=True)
    code, _, err = cli(["sweep", "-c", str(write(tmp_path, BASE)), "--out",
                        str(tmp_path / "o3"), "--storage", f"sqlite:///{tmp_path / 'x.db'}"],
                       capsys)
    assert code == 2 and "another sweep" in err
    code, _, err = cli(["sweep", "show", str(tmp_path)], capsys)
    assert code == 2 and "not a sweep folder" in err


# -- the space --------------------------------------------------------------------------------

def test_spec_maps_onto_optuna() -> None:
    import optuna

    spec = sweep_from_mapping({**BASE, "method": "bayes", "early_terminate": {
        "type": "hyperband", "min_iter": 1, "eta": 3}})
    sampler = spec.sampler(0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert isinstance(spec.pruner(), optuna.pruners.HyperbandPruner)
    assert spec.hyperband == {"min_iter": 1, "eta": 3, "max_iter": 2}  # from trainer.epochs
    assert isinstance(sweep_from_mapping(BASE).sampler(0), optuna.samplers.RandomSampler)
    grid = sweep_from_mapping({"method": "grid", "parameters": {
        "dataset": {"value": "iris"}, "traversal": {"values": ["random_walk", "comprehensive"]},
        "model.width": {"values": [8, 16, 32]}}})
    assert grid.budget() == 6
    assert isinstance(grid.sampler(0), optuna.samplers.GridSampler)


def test_conditional_space_suggests_only_chosen_module_params() -> None:
    import optuna

    spec = sweep_from_mapping(BASE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        config = spec.suggest(trial)
        seen.add(config.traversal.name)
        has = "traversal.random_walk.teleport" in trial.params
        assert has == (config.traversal.name == "random_walk")
        assert ("teleport" in config.traversal.params) == has
        assert config.trainer.params["epochs"] == 2 and config.dataset.name == "iris"
        study.tell(trial, 0.5)
    assert seen == {"random_walk", "comprehensive"}


def test_print_space_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["sweep", "--dataset", "iris", "--model", "mlp", "--traversal",
                          "random_walk", "--epochs", "2", "--trials", "5", "--print-space"],
                         capsys)
    assert code == 0, err
    data = yaml.safe_load(out)
    assert data["run_cap"] == 5 and data["parameters"]["trainer.epochs"] == {"value": 2}
    assert "model.lr" in data["parameters"] and "traversal.teleport" in data["parameters"]
    assert not any(k.startswith("dataset.") for k in data["parameters"])
    spec = sweep_from_mapping(data)
    assert spec.budget() == 5


# -- the storage protocol -----------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_claims_are_exact_when_workers_race(tmp_path: Path, backend: str) -> None:
    url = storage_url(backend, tmp_path, "s.db")
    name = f"race-{uuid.uuid4().hex[:8]}"
    SweepStore(url).create(name, sweep_from_mapping(BASE))
    budget, won, errors = 5, [], []
    start = threading.Barrier(6)

    def worker() -> None:
        try:
            store = SweepStore(url)
            study = store.load(name)
            start.wait()
            while (claim := store.claim(study, budget)) is not None:
                won.append(claim.slot)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(won) == list(range(budget))


def test_stale_trial_is_failed_retried_and_fenced(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = sweep_from_mapping(BASE)
    dead = SweepStore(url, heartbeat_interval=1, grace_period=2)
    study = dead.create("fence", spec)
    claim = dead.claim(study, 3)
    assert claim is not None
    trial = study.ask()
    assert dead.attach(claim, trial)
    spec.suggest(trial)
    params = dict(trial.params)
    assert dead.report(trial, 0.5, 1)
    time.sleep(3.2)  # no heartbeat for longer than the grace period: the worker "died"
    alive = SweepStore(url, heartbeat_interval=1, grace_period=2)
    other = alive.load("fence", spec)
    alive.maintain(other)
    trials = other.get_trials(deepcopy=False)
    assert trials[trial.number].state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == trial.number)
    assert retry.state == TrialState.WAITING
    assert alive.slots(other) == []  # the slot is free again for the retry
    # the old worker comes back: its report and its result are refused
    assert not dead.report(trial, 0.9, 2)
    assert not dead.tell(study, trial, TrialState.COMPLETE, 0.9)
    assert other.get_trials(deepcopy=False)[trial.number].state == TrialState.FAIL
    # the retry is handed out with the same parameters, holding a slot
    claim2 = alive.claim(other, 3)
    assert claim2 is not None
    again = other.ask()
    assert again.number == retry.number and alive.attach(claim2, again)
    spec.suggest(again)
    assert again.params == params


def test_trial_of_a_worker_dead_before_attaching_is_retried_before_its_slot_is_free(
        tmp_path: Path) -> None:
    """A worker killed between asking for a trial and attaching it leaves a claim without a
    trial and a running trial without a slot. The trial is failed and its retry queued first;
    the claim is freed only later, so the next worker to take that slot gets the retry, never a
    new trial that would use up the budget and leave the retry waiting forever."""
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = sweep_from_mapping(BASE)
    dead = SweepStore(url, heartbeat_interval=1, grace_period=2)
    study = dead.create("orphan", spec)
    assert dead.claim(study, 2) is not None
    trial = study.ask()  # ... and the worker dies here, before attach
    spec.suggest(trial)
    params = dict(trial.params)
    alive = SweepStore(url, heartbeat_interval=1, grace_period=2)
    other = alive.load("orphan", spec)
    time.sleep(2.6)  # past one grace period: the trial is failed and retried
    alive.maintain(other)
    trials = other.get_trials(deepcopy=False)
    assert trials[trial.number].state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == trial.number)
    assert retry.state == TrialState.WAITING
    assert [s["trial_id"] for s in alive.slots(other)] == [None]  # the claim is still held
    time.sleep(1.8)  # past two grace periods: the dead worker's claim is freed
    alive.maintain(other)
    assert alive.slots(other) == []
    claim = alive.claim(other, 2)
    assert claim is not None
    again = other.ask()
    assert again.number == retry.number and alive.attach(claim, again)
    spec.suggest(again)
    assert again.params == params


def _attached(store: SweepStore, study: Any, spec: Any, budget: int) -> Any:
    claim = store.claim(study, budget)
    assert claim is not None
    trial = study.ask()
    assert store.attach(claim, trial)
    spec.suggest(trial)
    return trial


def test_trial_failed_without_its_retry_is_retried_once_and_its_slot_freed(
        tmp_path: Path) -> None:
    """A process that failed a stale trial and died before queueing its retry leaves a failed
    trial holding its slot: maintenance frees the slot and queues the retry once, a grace
    period later; a trial failed by its own error keeps its slot (it used up its budget)."""
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = sweep_from_mapping(BASE)
    store = SweepStore(url, heartbeat_interval=1, grace_period=2)
    study = store.create("half", spec)
    lost, errored = (_attached(store, study, spec, 3) for _ in range(2))
    # the first failed as stale by a process that died at once; the second by its own error
    assert store.storage.set_trial_state_values(lost._trial_id, TrialState.FAIL)
    assert store.fail(study, errored, "ValueError: boom")
    store.maintain(study)  # within the grace period: nothing yet
    assert {s["trial_id"] for s in store.slots(study)} == {lost._trial_id, errored._trial_id}
    time.sleep(2.3)
    for _ in range(2):  # a second pass changes nothing
        store.maintain(study)
        trials = study.get_trials(deepcopy=False)
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
        assert len(retries) == 1 and retries[0].state == TrialState.WAITING
        assert retries[0].params == lost.params  # the same parameters
        assert [s["trial_id"] for s in store.slots(study)] == [errored._trial_id]
    assert not [t for t in trials if t.system_attrs.get("failed_trial") == errored.number]


def test_retry_is_queued_once_when_maintenance_takes_over_from_a_stalled_process(
        tmp_path: Path) -> None:
    """The process that failed a stale trial stalls past the grace period before its callback
    queues the retry: maintenance elsewhere takes over (retry queued, THEN the slot freed, so
    no new trial can take the slot first), and the stalled callback, when it runs at last,
    queues nothing more: one retry, never a second left waiting once the budget is used."""
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = sweep_from_mapping(BASE)
    store = SweepStore(url, heartbeat_interval=1, grace_period=2)
    other = SweepStore(url, heartbeat_interval=1, grace_period=2)
    study = store.create("stall", spec)
    lost = _attached(store, study, spec, 3)
    assert store.storage.set_trial_state_values(lost._trial_id, TrialState.FAIL)
    stalled = store.storage.get_trial(lost._trial_id)  # the callback's argument, not run yet
    time.sleep(2.3)
    slots_at_retry: list[set[int]] = []
    queue = other._retry

    def watched(st: Any, trial: Any) -> None:
        slots_at_retry.append({s["trial_id"] for s in other.slots(st)})
        queue(st, trial)

    other._retry = watched  # type: ignore[method-assign]
    other.maintain(other.load("stall"))
    assert slots_at_retry == [{lost._trial_id}]  # the slot was still held while queueing
    store._on_stale(study, stalled)  # the stalled process wakes up
    store.maintain(study)
    retries = [t for t in study.get_trials(deepcopy=False)
               if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retries) == 1 and retries[0].params == lost.params
    assert store.slots(study) == []


def test_retry_mark_of_a_dead_process_is_taken_over_after_the_grace_period(
        tmp_path: Path) -> None:
    """A process that marked a failed trial's slot for its retry and died before queueing it:
    the mark is respected for a grace period, then maintenance takes over (one retry)."""
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = sweep_from_mapping(BASE)
    store = SweepStore(url, heartbeat_interval=1, grace_period=2)
    study = store.create("mark", spec)
    lost = _attached(store, study, spec, 3)
    assert store.storage.set_trial_state_values(lost._trial_id, TrialState.FAIL)
    time.sleep(2.3)  # the trial failed a grace period ago; its slot is marked only now
    mark = store._mark_retrying(lost._trial_id)
    assert mark and store._mark_retrying(lost._trial_id) is None  # one process wins
    store.maintain(study)
    assert [s["token"] for s in store.slots(study)] == [mark]  # the mark is still fresh
    assert not [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING]
    time.sleep(2.3)
    store.maintain(study)
    retries = [t for t in study.get_trials(deepcopy=False)
               if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retries) == 1 and retries[0].state == TrialState.WAITING
    assert store.slots(study) == []


# -- a whole sweep in this process, show, best.yaml, dashboard ------------------------------------

@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sweep")
    path = write(tmp, BASE)
    try:
        main(["sweep", "-c", str(path), "--out", str(tmp / "out"), "--seed", "0"])
    except SystemExit as stop:
        assert not stop.code
    return tmp / "out"


def test_sweep_runs_trials_as_run_folders(done_sweep: Path) -> None:
    import optuna

    info = json.loads((done_sweep / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["name"], storage=info["storage"])
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for t in trials:
        run = done_sweep / "trials" / str(t.number)
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["val"]["accuracy"] == pytest.approx(t.value)
        assert len(t.intermediate_values) == 2  # one report per epoch
        assert (run / "config.yaml").is_file()


def test_rerun_continues_without_new_trials(done_sweep: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["sweep", "-c", str(done_sweep.parent / "sweep.yaml"), "--out",
                        str(done_sweep)], capsys)
    assert code == 0 and "3/3 finished" in " ".join(out.split())
    changed = {**BASE, "run_cap": 4}
    code, _, err = cli(["sweep", "-c", str(write(done_sweep.parent, changed, "sweep.yaml")),
                        "--out", str(done_sweep)], capsys)
    write(done_sweep.parent, BASE, "sweep.yaml")
    assert code == 2 and "different sweep file" in err


def test_show_writes_best_yaml_that_reproduces(done_sweep: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import optuna

    code, out, err = cli(["sweep", "show", str(done_sweep)], capsys)
    assert code == 0, err
    assert "complete" in out and "Best trial" in out
    for plot in ("optimization_history", "parallel_coordinate", "param_importances"):
        assert (done_sweep / "plots" / f"{plot}.png").stat().st_size > 1000
    info = json.loads((done_sweep / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["name"], storage=info["storage"])
    code, _, err = cli(["train", "-c", str(done_sweep / "best.yaml"), "--out",
                        str(tmp_path / "again"), "--no-progress"], capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["val"]["accuracy"] == pytest.approx(study.best_value)


def test_optuna_dashboard_lists_the_study(done_sweep: Path) -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import httpx
    import optuna_dashboard

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    info = json.loads((done_sweep / "sweep.json").read_text())
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(info["storage"]),
                         handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        reply = httpx.get(f"http://127.0.0.1:{server.server_port}/api/studies", timeout=30)
    finally:
        server.shutdown()
    assert reply.status_code == 200
    assert info["name"] in [s["study_name"] for s in reply.json()["study_summaries"]]


# -- W&B -----------------------------------------------------------------------------------------

def test_agent_args_translation() -> None:
    assert translate_agent_args(["train", "--model.lr=0.01", "--traversal=ivalue",
                                 "--traversal.ivalue.explore=0.2",
                                 "--traversal.random_walk.teleport=0.3", "--seed=1"]) == [
        "train", "--set", "model.lr=0.01", "--traversal=ivalue", "--set",
        "traversal.explore=0.2", "--seed=1"]
    assert translate_agent_args(["modules", "--kind=model"]) == ["modules", "--kind=model"]
    assert translate_agent_args(["--plugins", "p", "train", "--model.lr=1"]) == [
        "--plugins", "p", "train", "--set", "model.lr=1"]
    assert translate_agent_args(["sweep", "--name", "train", "--model.lr=1"]) == [
        "sweep", "--name", "train", "--model.lr=1"]


def test_wandb_agent_command_line_trains(tmp_path: Path) -> None:
    """The command `wandb agent` builds from `command: [${program}, train, ${args}]`."""
    sweep = {**BASE, "program": "hypergraph", "command": ["${program}", "train", "${args}"]}
    assert sweep_from_mapping(sweep).budget() == 3  # the same file serves `hypergraph sweep`
    params = {"dataset": "iris", "traversal": "random_walk", "model.lr": 0.02,
              "model.width": 8, "traversal.random_walk.teleport": 0.25, "trainer.epochs": 1}
    args = [f"--{k}={v}" for k, v in params.items()]
    command = [str(EXE) if part == "${program}" else part for part in sweep["command"]]
    command = [a for part in command for a in (args if part == "${args}" else [part])]
    proc = subprocess.run([*command, "--out", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["model"]["params"]["lr"] == 0.02 and config["model"]["params"]["width"] == 8
    assert config["traversal"]["name"] == "random_walk"
    assert config["traversal"]["params"]["teleport"] == 0.25
    assert config["trainer"]["params"]["epochs"] == 1


def test_wandb_logger_groups_trials_by_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    from hypergraph.loggers._wandb import _log_records

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    data = {**BASE, "run_cap": 1}
    code, _, err = cli(["sweep", "-c", str(write(tmp_path, data, "wb.yaml")), "--out",
                        str(tmp_path / "out"), "--logger", "wandb"], capsys)
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    assert code == 0, err
    files = list((tmp_path / "out" / "trials" / "0").rglob("*.wandb"))
    assert files
    groups = set()
    for raw in _log_records(files[0].read_bytes()):
        rec = pb.Record()  # type: ignore[attr-defined]
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "run":
            groups.add(rec.run.run_group)
    assert groups == {"wb"}


# -- method: ace ------------------------------------------------------------------------------

def test_ace_method_searches_only_valid_combinations(tmp_path: Path) -> None:
    """``method: ace``: ACE picks the module slots (skipping combinations whose tags do not
    fit: cluster_hop needs a cluster graph, the sweep builds a kNN one), TPE the rest."""
    import optuna

    data = json.loads(json.dumps(BASE))
    data["method"] = "ace"
    data["run_cap"] = 5
    data["parameters"]["model"] = {"values": ["mlp", "logreg"]}
    data["parameters"]["traversal"] = {"values": ["comprehensive", "random_walk",
                                                  "cluster_hop"]}
    data["parameters"]["trainer.epochs"] = {"value": 1}
    data["parameters"].pop("model.width")
    path = write(tmp_path, data)
    # other methods refuse a choice list holding a combination that does not fit
    with pytest.raises(ConfigError, match="cluster_hop"):
        load_sweep(write(tmp_path, {**data, "method": "bayes"}, "bayes.yaml"))
    spec = load_sweep(path)
    assert type(spec.sampler(seed=0)).__name__ == "ACESampler"
    try:
        main(["sweep", "-c", str(path), "--out", str(tmp_path / "out"), "--seed", "0"])
    except SystemExit as stop:
        assert not stop.code
    info = json.loads((tmp_path / "out" / "sweep.json").read_text())
    trials = optuna.load_study(study_name=info["name"], storage=info["storage"]).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    combos = [(t.params["model"], t.params["traversal"]) for t in trials]
    assert all(traversal != "cluster_hop" for _, traversal in combos)
    assert len(set(combos[:4])) == 4  # the 4 valid combinations are tried before a repeat
    assert all(t.system_attrs.get("ace:combo") for t in trials)


def test_ace_method_needs_a_module_choice(tmp_path: Path) -> None:
    data = with_params(traversal={"value": "comprehensive"})
    data["method"] = "ace"
    data["parameters"].pop("traversal.random_walk.teleport")
    with pytest.raises(ConfigError, match="method: ace chooses among module combinations"):
        load_sweep(write(tmp_path, data))
