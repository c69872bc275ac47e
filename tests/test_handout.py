"""One-transaction hand-out (:mod:`hypergraph.sweeps._handout`): no trial handed out twice,
an exact ``run_cap`` under contention (threads and processes), the fence, retries with the
same parameters, revoked tokens, and the storage created by two processes at once."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from hypergraph.sweeps import SweepStore, sweep_from_mapping
from hypergraph.sweeps._handout import HandOutStore
from storages import BACKENDS, storage_url

SPEC: dict[str, Any] = {
    "method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 12,
    "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                   "model.width": {"distribution": "int_uniform", "min": 8, "max": 64},
                   "model.lr": {"distribution": "log_uniform_values", "min": 0.001,
                                "max": 0.1}}}


def _sweep(url: str, run_cap: int = 12) -> tuple[SweepStore, Any, Any, str]:
    store = SweepStore(url, heartbeat_interval=1, grace_period=3)
    spec = sweep_from_mapping({**SPEC, "run_cap": run_cap}, "(test)")
    name = f"handout-{uuid.uuid4().hex[:8]}"
    store.create(name, spec)
    return store, spec, store.load(name, spec, seed=0), name


def _claim_all(url: str, name: str, worker: str, hold: bool = True) -> list[int]:
    """Claim trials of ``name`` until none is left (finishing each unless ``hold``)."""
    from hypergraph.sweeps import SweepStore

    store = SweepStore(url, heartbeat_interval=1, grace_period=3)
    spec = store.spec(name)
    study = store.load(name, spec)
    handout = HandOutStore(store)
    got: list[int] = []
    while True:
        trial = handout.claim(study, spec, spec.budget(), worker)
        if trial is None:
            break
        got.append(trial.trial_id)
        if not hold:
            assert handout.finish(trial.trial_id, trial.lease, "complete",
                                  0.5).status == "recorded"
    handout.dispose()
    return got


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_never_share_a_trial_and_fill_run_cap_exactly(tmp_path: Path,
                                                              backend: str) -> None:
    from optuna.trial import TrialState

    url = storage_url(backend, tmp_path)
    store, _spec, study, name = _sweep(url, run_cap=12)
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        _claim_all(url, name, f"t:{i}", hold=i % 2 == 0))) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == 12  # never the same trial twice, exactly run_cap
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 12 and len({t.number for t in trials}) == 12
    assert sorted(t.number for t in trials) == list(range(12))
    assert len(store.slots(study)) == 12
    for t in trials:  # every row a study.ask would write: params, attributes, heartbeat
        assert set(t.params) == {"model.width", "model.lr"}
        assert t.user_attrs["hypergraph_worker"].startswith("t:")
        assert t.user_attrs["hypergraph_config"]
        assert t.state in (TrialState.RUNNING, TrialState.COMPLETE)
    beats = store.storage._get_stale_trial_ids(study._study_id)
    assert beats == []  # the running ones have a fresh heartbeat


def _process_claims(url: str, name: str, worker: str, queue: Any) -> None:
    queue.put(_claim_all(url, name, worker, hold=worker.endswith("0")))


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_fill_run_cap_exactly(tmp_path: Path, backend: str) -> None:
    url = storage_url(backend, tmp_path)
    store, _spec, study, name = _sweep(url, run_cap=10)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_claims, args=(url, name, f"p:{i}", queue))
             for i in range(3)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(ids) == len(set(ids)) == 10
    assert len(study.get_trials(deepcopy=False)) == 10
    assert len(store.slots(study)) == 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_fence_retry_and_duplicate(tmp_path: Path, backend: str) -> None:
    import optuna
    from optuna.trial import TrialState

    url = storage_url(backend, tmp_path)
    store, spec, study, _name = _sweep(url, run_cap=2)
    handout = HandOutStore(store)
    attrs = {"hypergraph_token": 7}
    a = handout.claim(study, spec, 2, "a:1", attrs)
    b = handout.claim(study, spec, 2, "b:1", attrs)
    assert a is not None and b is not None and a.trial_id != b.trial_id
    assert handout.claim(study, spec, 2, "c:1", attrs) is None  # every slot held
    # someone else's token, an unknown trial
    assert handout.finish(a.trial_id, a.lease, "complete", 1.0,
                          holder=("hypergraph_token", 8)).status == "forbidden"
    assert handout.finish(10**6, a.lease, "complete", 1.0).status == "unknown"
    assert handout.finish(a.trial_id, b.lease, "complete", 1.0).status == "lost"
    # a goes stale: failed, retried with the same parameters, its slot freed
    store.release(study, optuna.Trial(study, a.trial_id))
    late = handout.finish(a.trial_id, a.lease, "complete", 1.0,
                          holder=("hypergraph_token", 7))
    assert late.status == "lost"  # the fence
    retry = handout.claim(study, spec, 2, "c:1", attrs)
    assert retry is not None and retry.params == a.params and retry.number == 2
    frozen = store.storage.get_trial(retry.trial_id)
    assert frozen.state == TrialState.RUNNING and frozen.system_attrs["failed_trial"] == 0
    assert frozen.user_attrs["hypergraph_worker"] == "c:1"
    assert handout.finish(retry.trial_id, retry.lease, "complete", 0.25).status == "recorded"
    assert handout.finish(retry.trial_id, retry.lease, "complete", 0.25).status == "duplicate"
    assert handout.finish(retry.trial_id, retry.lease, "complete", 0.5).status == "finished"
    assert handout.finish(b.trial_id, b.lease, "fail", error="boom").status == "recorded"
    assert handout.claim(study, spec, 2, "c:1", attrs) is None
    assert store.finished(study) == 2  # complete + failed by its own error: run_cap used
    failed = store.storage.get_trial(b.trial_id)
    assert failed.state == TrialState.FAIL and failed.user_attrs["hypergraph_error"] == "boom"
    assert store.storage.get_trial(retry.trial_id).value == 0.25
    handout.dispose()


def test_two_servers_race_for_one_queued_retry(tmp_path: Path) -> None:
    """Two hand-out stores (two server processes) drafting the same queued retry: one wins
    the ``WAITING -> RUNNING`` update, the other drafts again and gets a new trial."""
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    store, spec, study, _name = _sweep(url, run_cap=3)
    # drawn one at a time: the race is for the retry, not for a trial of the pool
    first, second = HandOutStore(store, prefetch=0), HandOutStore(store, prefetch=0)
    a = first.claim(study, spec, 3, "a:1")
    assert a is not None
    store.release(study, optuna.Trial(study, a.trial_id))  # queued again
    drafter = second._drafter(study)
    real = second._commit_claim
    raced: list[int] = []

    def commit_after_the_other(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # the other server takes the retry between our draft and commit
            raced.append(1)
            other = first.claim(study, spec, 3, "b:1")
            assert other is not None and other.params == a.params
        return real(*args, **kwargs)

    second._commit_claim = commit_after_the_other  # type: ignore[method-assign]
    got = second.claim(study, spec, 3, "c:1")
    assert drafter is second._drafter(study)
    assert got is not None and got.params != a.params and raced
    numbers = [t.number for t in study.get_trials(deepcopy=False)]
    assert sorted(numbers) == list(range(len(numbers)))


def test_revoked_token_stops_within_the_cache_time(tmp_path: Path) -> None:
    """A token revoked by another process (the CLI) is refused once ``token_cache_seconds``
    have passed, though the server cached it as valid."""
    import time

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from hypergraph.server import TokenStore, create_app

    url = f"sqlite:///{tmp_path / 's.db'}"
    app = create_app(url, maintain_every=0, token_cache_seconds=0.5)
    admin, _ = TokenStore(url).create("admin", "boss")
    c = TestClient(app)
    headers = {"Authorization": f"Bearer {admin}"}
    assert c.get("/api/sweeps", headers=headers).status_code == 200  # now cached
    assert TokenStore(url).revoke("boss") == 1  # elsewhere: the server's cache is not told
    time.sleep(0.6)
    assert c.get("/api/sweeps", headers=headers).status_code == 401


def test_storage_created_by_two_processes_at_once(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The loser of the race to write Optuna's schema version (an integrity error on
    ``alembic_version``) opens the storage again instead of failing."""
    import optuna
    from sqlalchemy.exc import IntegrityError

    real = optuna.storages.RDBStorage
    calls: list[int] = []

    class Racing(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    store = SweepStore(f"sqlite:///{tmp_path / 's.db'}")
    assert len(calls) == 2 and store.names() == []


def test_pruned_trial_keeps_its_last_reported_value(tmp_path: Path) -> None:
    """As Optuna's ``tell(state=PRUNED)``: the value of the last step becomes the trial's."""
    from optuna.trial import TrialState

    store, spec, study, _name = _sweep(f"sqlite:///{tmp_path / 's.db'}", run_cap=2)
    handout = HandOutStore(store)
    a, b = (handout.claim(study, spec, 2, "a:1") for _ in range(2))
    assert a is not None and b is not None
    store.storage.set_trial_intermediate_value(a.trial_id, 1, 0.25)
    store.storage.set_trial_intermediate_value(a.trial_id, 3, 0.75)
    assert handout.finish(a.trial_id, a.lease, "pruned").status == "recorded"
    assert handout.finish(b.trial_id, b.lease, "pruned").status == "recorded"
    pruned = store.storage.get_trial(a.trial_id)
    assert pruned.state == TrialState.PRUNED and pruned.value == 0.75
    assert store.storage.get_trial(b.trial_id).value is None  # nothing reported
    assert store.finished(study) == 2


def test_worker_processes_build_their_app_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``hypergraph server --workers N``: each uvicorn worker builds the same app from the
    options the command put in the environment."""
    import json

    from hypergraph.server._app import FACTORY_ENV, app_from_env

    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv(FACTORY_ENV, json.dumps({"storage_url": url, "heartbeat_interval": 2,
                                                "grace_period": 9}))
    app = app_from_env()
    assert app.state.service.store.grace_period == 9
    assert app.state.service.handout is not None


def test_optuna_sessions_on_sqlite_take_the_write_lock_first(tmp_path: Path) -> None:
    """Optuna's check-then-write of a trial's state is one step on SQLite: its sessions
    begin with the write lock, so no other process can write between the check and the
    write (two processes failing one stale trial would queue two retries)."""
    import sqlite3

    import sqlalchemy as sa

    path = tmp_path / "s.db"
    store = SweepStore(f"sqlite:///{path}")
    with store.storage.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # a read: its transaction holds the write lock
        other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        conn.rollback()
    other.execute("BEGIN IMMEDIATE")  # free again
    other.execute("ROLLBACK")
    other.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_drawn_ahead_within_the_budget_and_shared_with_storage_workers(
        tmp_path: Path, backend: str) -> None:
    """A claim draws the trials after it ahead (``WAITING``, a slot reserved each, never
    more than the budget left), later claims take them without drawing; a worker of the
    storage (``hypergraph agent --storage``) that finds every slot reserved takes one back,
    and a pooled trial its ``ask`` pops moves into its reserved slot. A retry queued
    meanwhile is handed out before the budget closes."""
    import optuna
    from optuna.trial import TrialState

    from hypergraph.sweeps._store import POOL_TOKEN

    url = storage_url(backend, tmp_path)
    store, spec, study, _name = _sweep(url, run_cap=5)
    handout = HandOutStore(store, prefetch=16)
    first = handout.claim(study, spec, 5, "a:1", {"hypergraph_token": 7})
    assert first is not None and first.number == 0
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.RUNNING] + [TrialState.WAITING] * 4
    slots = store.slots(study)
    assert len(slots) == 5 and sum(s["token"] == POOL_TOKEN for s in slots) == 4
    pooled = handout.claim(study, spec, 5, "b:1", {"hypergraph_token": 7})
    assert pooled is not None and pooled.number == 1
    frozen = store.storage.get_trial(pooled.trial_id)
    assert pooled.params == frozen.params and set(pooled.params) == {"model.width",
                                                                     "model.lr"}
    assert pooled.config["model"]["name"] == "mlp"
    assert frozen.user_attrs["hypergraph_worker"] == "b:1"
    assert frozen.user_attrs["hypergraph_token"] == 7
    assert handout.finish(pooled.trial_id, pooled.lease, "complete", 0.5,
                          holder=("hypergraph_token", 7)).status == "recorded"
    # another process's store reads what it hands out from the storage
    other = HandOutStore(store)
    read = other.claim(study, spec, 5, "c:1")
    assert read is not None and read.number == 2
    assert read.params == store.storage.get_trial(read.trial_id).params
    assert read.config["model"]["name"] == "mlp"
    # a storage worker: every slot is held or reserved, so it takes a reservation back
    claim = store.claim(study, 5, worker="w:1")
    assert claim is not None and claim.trial_id is None
    assert sum(s["token"] == POOL_TOKEN for s in store.slots(study)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = study.ask()  # pops the lowest queued trial: the one without its slot now
    assert trial.number == 3 and store.attach(claim, trial, worker="w:1")
    # the first trial dies: retried, its slot freed; a worker's ask pops the pooled trial
    store.release(study, optuna.Trial(study, first.trial_id))
    claim = store.claim(study, 5, worker="w:2")
    assert claim is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        popped = study.ask()
    assert popped.number == 4 and store.attach(claim, popped, worker="w:2")
    assert not [s for s in store.slots(study) if s["token"] == POOL_TOKEN]
    retry = handout.claim(study, spec, 5, "d:1")
    assert retry is not None and retry.params == first.params and retry.number == 5
    assert handout.claim(study, spec, 5, "d:1") is None  # every slot held
    slots = store.slots(study)
    assert len(slots) == 5 and len({s["trial_id"] for s in slots}) == 5
    for got in (read, retry):
        assert handout.finish(got.trial_id, got.lease, "complete", 0.1).status == "recorded"
    for t in (trial, popped):
        assert store.tell(study, t, TrialState.COMPLETE, 0.2)
    assert store.finished(study) == 5
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(TrialState.COMPLETE) == 5 and TrialState.WAITING not in states
    handout.dispose()
    other.dispose()


def _pool(store: SweepStore, study: Any) -> list[int]:
    """The slots reserved for the pool, in order."""
    from hypergraph.sweeps._store import POOL_TOKEN

    return sorted(s["slot"] for s in store.slots(study) if s["token"] == POOL_TOKEN)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fill_draws_into_the_pool_within_the_budget(tmp_path: Path, backend: str) -> None:
    """``fill`` draws ``prefetch`` trials ahead without handing one out, only while the pool
    is below the level asked, never beyond the budget, and not while a retry is queued
    (claims take that first); claims then take the filled trials without drawing."""
    import optuna
    from optuna.trial import TrialState

    url = storage_url(backend, tmp_path)
    store, spec, study, _name = _sweep(url, run_cap=10)
    handout = HandOutStore(store, prefetch=4)
    assert handout.fill(study, spec, 10) == 4
    assert _pool(store, study) == [0, 1, 2, 3]
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.WAITING] * 4
    assert handout.fill(study, spec, 10) == 0  # the pool holds prefetch already
    assert handout.fill(study, spec, 10, below=8) == 4
    assert handout.fill(study, spec, 10, below=10) == 2  # the budget's last two slots
    assert handout.fill(study, spec, 10, below=20) == 0
    assert _pool(store, study) == list(range(10))
    drawn = {t._trial_id: t.params for t in study.get_trials(deepcopy=False)}
    got = handout.claim(study, spec, 10, "a:1")
    assert got is not None and got.number == 0 and got.params == drawn[got.trial_id]
    # a trial that dies is retried: no fill while its retry waits for a claim
    store.release(study, optuna.Trial(study, got.trial_id))
    assert handout.fill(study, spec, 10, below=20) == 0
    handed = []
    while (next_one := handout.claim(study, spec, 10, "a:2")) is not None:
        handed.append(next_one)
    assert len(handed) == 10  # the nine left in the pool, then the retry in the freed slot
    assert handed[-1].params == got.params and handed[-1].number == 10
    assert len(store.slots(study)) == 10  # exactly run_cap
    handout.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_draw_ahead_takes_a_freed_slot_first(tmp_path: Path, backend: str) -> None:
    """A draw of several trials fills the budget's gaps (a slot freed by a trial that left
    the pool) before the slots after the highest one held."""
    import sqlalchemy as sa
    from optuna.trial import TrialState

    from hypergraph.sweeps._store import SLOTS

    url = storage_url(backend, tmp_path)
    store, spec, study, _name = _sweep(url, run_cap=6)
    handout = HandOutStore(store, prefetch=3)
    assert handout.fill(study, spec, 6) == 3
    gone = next(s for s in store.slots(study) if s["slot"] == 1)
    with store.engine.begin() as conn:  # slot 1's trial leaves the pool for good
        conn.execute(SLOTS.delete().where((SLOTS.c.study_id == study._study_id)
                                          & (SLOTS.c.slot == 1)))
    store.storage.set_trial_state_values(gone["trial_id"], TrialState.FAIL)
    assert handout.fill(study, spec, 6, below=6) == 3
    assert _pool(store, study) == [0, 1, 2, 3, 4]
    assert sa.inspect(store.engine).get_indexes  # the storage is still readable
    handout.dispose()


def test_a_storage_made_before_the_slot_index_gets_it(tmp_path: Path) -> None:
    """Opening a storage created before the index of slots by token adds the index."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = SweepStore(url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_hypergraph_sweep_slots_token")
    names = {i["name"] for i in sa.inspect(store.engine).get_indexes("hypergraph_sweep_slots")}
    assert "ix_hypergraph_sweep_slots_token" not in names
    store.engine.dispose()
    again = SweepStore(url)
    names = {i["name"] for i in sa.inspect(again.engine).get_indexes("hypergraph_sweep_slots")}
    assert "ix_hypergraph_sweep_slots_token" in names
