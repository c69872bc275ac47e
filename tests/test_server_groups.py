"""Group commit of the agents' finish requests (:class:`hypergraph.server._group.FinishGroups`,
``SweepService.finish_many``, ``HandOutStore.finish_group``): every request of a group gets
its own outcome (a stale result refused alone, the others recorded), the next trials come from
the pool, and ``run_cap`` stays exact. On SQLite every request is finished alone, with the same
answers."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from hypergraph.server import TokenStore, create_app
from hypergraph.server._group import FinishGroups
from hypergraph.server._service import TOKEN_ATTR, FinishRequest, RefusedError
from hypergraph.sweeps._store import WORKER_ATTR
from storages import BACKENDS, PG_URL, pg_available, storage_url

SPEC: dict[str, Any] = {
    "method": "random", "metric": {"name": "val.accuracy", "goal": "maximize"}, "run_cap": 8,
    "parameters": {"dataset": {"value": "iris"}, "model": {"value": "mlp"},
                   "model.lr": {"distribution": "log_uniform_values", "min": 0.001,
                                "max": 0.1}}}

needs_pg = pytest.mark.skipif(not pg_available(), reason="PostgreSQL is not reachable at "
                              "127.0.0.1:5432")


def _service(url: str, run_cap: int = 8, prefetch: int = 4) -> tuple[Any, str]:
    app = create_app(url, heartbeat_interval=1, grace_period=3, maintain_every=0,
                     prefetch=prefetch)
    name = f"grp-{uuid.uuid4().hex[:8]}"
    app.state.service.create({**SPEC, "run_cap": run_cap}, name)
    return app, name


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_request_of_a_group_gets_its_own_outcome(tmp_path: Path, backend: str) -> None:
    from optuna.trial import TrialState

    app, name = _service(storage_url(backend, tmp_path), run_cap=8)
    service = app.state.service
    sweep = service.sweep(name)
    a, b, c, d, e = (service.claim(f"w:{i}", 1, name) for i in range(5))
    assert all(x["status"] == "trial" for x in (a, b, c, d, e))
    # b went stale: failed, retried with the same parameters, its lease gone
    service.store.release(sweep.study, optuna.Trial(sweep.study, b["trial_id"]))
    ask = ("w:0", name)
    requests = [
        FinishRequest(a["trial_id"], a["lease"], 1, "complete", 0.5, None, ask),
        FinishRequest(b["trial_id"], b["lease"], 1, "complete", 0.6, None, ("w:1", name)),
        FinishRequest(c["trial_id"], c["lease"], 2, "complete", 0.7, None, ("w:2", name)),
        FinishRequest(d["trial_id"], d["lease"], 1, "complete", 0.8, None, None),
        FinishRequest(e["trial_id"], e["lease"], 1, "pruned", None, None, ("w:4", name)),
        FinishRequest(10**6, a["lease"], 1, "complete", 0.9, None, ask),
    ]
    got = service.finish_many(requests)
    ok_a, stale_b, other_c, ok_d, pruned_e, unknown = got
    assert isinstance(stale_b, RefusedError) and stale_b.status == 409  # the fence
    assert isinstance(other_c, RefusedError) and other_c.status == 403
    assert isinstance(unknown, RefusedError) and unknown.status == 404
    assert isinstance(ok_a, dict) and ok_a["recorded"] and not ok_a["duplicate"]
    assert ok_a["number"] == a["number"]
    assert isinstance(ok_d, dict) and ok_d["recorded"] and "next" not in ok_d
    assert isinstance(pruned_e, dict) and pruned_e["recorded"]
    nxt = ok_a["next"]
    assert nxt["status"] == "trial" and nxt["sweep"] == name and set(nxt["params"]) == {
        "model.lr"}
    assert nxt["config"]["model"]["params"]["lr"] == nxt["params"]["model.lr"]
    assert pruned_e["next"]["status"] == "trial"
    storage = service.store.storage
    held = storage.get_trial(nxt["trial_id"])  # as a claim writes it
    assert held.state == TrialState.RUNNING
    assert held.user_attrs[WORKER_ATTR] == "w:0" and held.user_attrs[TOKEN_ATTR] == 1
    assert nxt["trial_id"] not in storage._get_stale_trial_ids(sweep.study._study_id)
    assert service.heartbeat(nxt["trial_id"], nxt["lease"], 1) == {"stop": False}
    assert storage.get_trial(a["trial_id"]).value == 0.5
    assert storage.get_trial(d["trial_id"]).state == TrialState.COMPLETE
    assert storage.get_trial(c["trial_id"]).state == TrialState.RUNNING  # not its token's
    assert storage.get_trial(b["trial_id"]).state == TrialState.FAIL
    # the same results again: duplicates, recorded once; a different value is refused
    again = service.finish_many([
        FinishRequest(a["trial_id"], a["lease"], 1, "complete", 0.5, None, None),
        FinishRequest(d["trial_id"], d["lease"], 1, "complete", 0.1, None, None)])
    assert isinstance(again[0], dict) and again[0]["duplicate"]
    assert isinstance(again[1], RefusedError) and again[1].status == 409
    # finish everything: exactly run_cap trials used their slot, the stale one retried
    for _ in range(30):
        fresh = service.claim("w:9", 1, name)
        running = [t._trial_id for t in sweep.study.get_trials(deepcopy=False)
                   if t.state == TrialState.RUNNING]
        if not running:
            assert fresh == {"status": "done"}
            break
        leases = {s["trial_id"]: s["token"] for s in service.store.slots(sweep.study)}
        for answer in service.finish_many([
                FinishRequest(tid, leases[tid], 1, "complete", 0.3, None, None)
                for tid in running]):
            assert isinstance(answer, dict) and answer["recorded"], answer
    trials = sweep.study.get_trials(deepcopy=False)
    assert service.finished(sweep) == 8
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 7  # + one pruned
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == b["number"]]
    assert len(retried) == 1 and retried[0].params == storage.get_trial(b["trial_id"]).params
    assert service.claim("w:9", 1, name) == {"status": "done"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_pruned_and_failed_results_are_grouped_as_written_alone(tmp_path: Path,
                                                                 backend: str) -> None:
    """Pruned and failed results go in the group too (PostgreSQL: the same statement) and
    write what a finish alone writes: a pruned trial's value is its last report (none
    without one, none when that was NaN), a failed one keeps its error and its slot (no
    retry); repeating them answers duplicate. SQLite finishes each alone: same rows."""
    from hypergraph.sweeps._store import ERROR_ATTR

    app, name = _service(storage_url(backend, tmp_path), run_cap=8)
    service = app.state.service
    sweep = service.sweep(name)
    reported, silent, nan, failed, done = (service.claim(f"w:{i}", 1, name)
                                           for i in range(5))
    for step, value in enumerate((0.4, 0.6)):
        service.report(reported["trial_id"], reported["lease"], 1, step, value)
    service.report(nan["trial_id"], nan["lease"], 1, 0, 0.3)
    service.report(nan["trial_id"], nan["lease"], 1, 1, float("nan"))
    requests = [
        FinishRequest(reported["trial_id"], reported["lease"], 1, "pruned", None, None,
                      ("w:0", name)),
        FinishRequest(silent["trial_id"], silent["lease"], 1, "pruned", None, None, None),
        FinishRequest(nan["trial_id"], nan["lease"], 1, "pruned", None, None, None),
        FinishRequest(failed["trial_id"], failed["lease"], 1, "fail", None,
                      "CUDA out of memory", ("w:3", name)),
        FinishRequest(done["trial_id"], done["lease"], 1, "complete", 0.9, None, None)]
    written = service.finish_group(requests)
    assert all(w is not None for w in written) == (backend == "postgresql")
    answers = service.finish_many(requests) if backend == "sqlite" else [
        service.finish_rest(r, w) for r, w in zip(requests, written, strict=True)]
    assert all(isinstance(a, dict) and a["recorded"] and not a["duplicate"]
               for a in answers), answers
    assert answers[0]["next"]["status"] == answers[3]["next"]["status"] == "trial"
    storage = service.store.storage
    trials = {x["number"]: storage.get_trial(x["trial_id"])
              for x in (reported, silent, nan, failed, done)}
    assert [t.state.name for t in trials.values()] == ["PRUNED"] * 3 + ["FAIL", "COMPLETE"]
    assert [t.value for t in trials.values()] == [0.6, None, None, None, 0.9]
    assert trials[failed["number"]].user_attrs[ERROR_ATTR] == "CUDA out of memory"
    assert ERROR_ATTR not in trials[reported["number"]].user_attrs
    assert service.finished(sweep) == 5  # the failed trial used its slot: no retry
    assert not [t for t in sweep.study.get_trials(deepcopy=False)
                if t.system_attrs.get("failed_trial") is not None]
    again = service.finish_many([
        FinishRequest(reported["trial_id"], reported["lease"], 1, "pruned", None, None, None),
        FinishRequest(failed["trial_id"], failed["lease"], 1, "fail", None, "x", None),
        FinishRequest(silent["trial_id"], silent["lease"], 1, "complete", 0.2, None, None)])
    assert isinstance(again[0], dict) and again[0]["duplicate"]
    assert isinstance(again[1], dict) and again[1]["duplicate"]
    assert isinstance(again[2], RefusedError) and again[2].status == 409


@needs_pg
def test_concurrent_finishes_form_one_group_and_run_cap_stays_exact() -> None:
    """Finishes submitted together are written as ONE group (one statement); a trial named
    twice goes to the next group and is answered as a duplicate; sixteen agents looping
    finish-and-claim through the groups hand out exactly run_cap trials, never one twice."""
    from optuna.trial import TrialState

    app, name = _service(PG_URL, run_cap=60, prefetch=8)
    service = app.state.service
    groups = FinishGroups(service)
    first = [service.claim(f"w:{i}", 1, name) for i in range(6)]

    async def together() -> list[Any]:
        reqs = [FinishRequest(x["trial_id"], x["lease"], 1, "complete", 0.1 * i, None,
                              (f"w:{i}", name)) for i, x in enumerate(first)]
        reqs.append(reqs[0])  # the same result twice (a retried request)
        return await asyncio.gather(*(groups.finish(r) for r in reqs),
                                    return_exceptions=True)

    answers = asyncio.run(together())
    assert groups.groups == 2 and groups.requests == 7  # six together, the repeat after
    assert all(isinstance(x, dict) and x["recorded"] for x in answers)
    assert [x["duplicate"] for x in answers] == [False] * 6 + [True]
    handed = [x["next"]["trial_id"] for x in answers]  # the repeat gets a next trial too
    assert len(set(handed)) == 7 and not set(handed) & {x["trial_id"] for x in first}
    seen: list[int] = [x["trial_id"] for x in first]

    async def agent(i: int, got: dict[str, Any]) -> None:
        while got["status"] == "trial":
            seen.append(got["trial_id"])
            state = "fail" if got["number"] % 7 == 3 else "complete"  # grouped too
            answer = await groups.finish(FinishRequest(
                got["trial_id"], got["lease"], 1, state, 0.5, "boom", (f"w:{i}", name)))
            got = answer["next"]
            while got["status"] == "wait":
                await asyncio.sleep(0.01)
                got = await asyncio.to_thread(service.claim, f"w:{i}", 1, name)

    async def agents() -> None:
        more = [await asyncio.to_thread(service.claim, f"w:{i}", 1, name)
                for i in range(7, 16)]
        await asyncio.gather(*(agent(i, x["next"]) for i, x in enumerate(answers)),
                             *(agent(7 + i, x) for i, x in enumerate(more)))

    asyncio.run(agents())
    trials = service.sweep(name).study.get_trials(deepcopy=False)
    assert len(seen) == len(set(seen)) == 60  # never one trial twice, exactly run_cap
    assert len(trials) == 60 and service.finished(service.sweep(name)) == 60
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert groups.requests >= groups.groups


@needs_pg
def test_the_servers_finish_route_groups_on_postgresql() -> None:
    """Through HTTP (the agents' fast path): a finish with ``next`` is written by the
    server's groups; a late result from a stale holder is refused with 409 as before."""
    app, name = _service(PG_URL, run_cap=4)
    tokens = TokenStore(PG_URL)
    agent, _ = tokens.create("agent", "grp")
    headers = {"Authorization": f"Bearer {agent}"}
    client = TestClient(app)
    service = app.state.service
    assert app.state.groups is not None
    first = client.post("/api/trials/claim", json={"agent": "a:1", "sweep": name},
                        headers=headers).json()
    second = client.post("/api/trials/claim", json={"agent": "a:2", "sweep": name},
                         headers=headers).json()
    ask = {"agent": "a:1", "sweep": name}
    done = client.post(f"/api/trials/{first['trial_id']}/finish", json={
        "lease": first["lease"], "state": "complete", "value": 0.5, "next": ask},
        headers=headers)
    assert done.status_code == 200 and app.state.groups.requests == 1
    body = done.json()
    assert body["recorded"] and body["next"]["status"] == "trial"
    assert body["next"]["heartbeat_interval"] == 1
    sweep = service.sweep(name)
    service.store.release(sweep.study, optuna.Trial(sweep.study, second["trial_id"]))
    late = client.post(f"/api/trials/{second['trial_id']}/finish", json={
        "lease": second["lease"], "state": "complete", "value": 0.5, "next": ask},
        headers=headers)
    assert late.status_code == 409 and "no longer yours" in late.json()["detail"]
    tokens.engine.dispose()


def test_groups_are_off_on_sqlite_and_with_group_max_zero(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 's.db'}", maintain_every=0)
    assert app.state.groups is None and not app.state.service.groupable()
    with pytest.raises(ValueError, match="group_window"):
        create_app(f"sqlite:///{tmp_path / 's.db'}", maintain_every=0, group_max=-1)
    if pg_available():
        assert create_app(PG_URL, maintain_every=0, group_max=0).state.groups is None


def test_a_group_that_fails_is_finished_request_by_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing a group fails (the database hiccups), each of its requests is finished
    alone, with its own answer; nothing is lost or recorded twice."""
    from optuna.trial import TrialState

    app, name = _service(f"sqlite:///{tmp_path / 's.db'}", run_cap=4)
    service = app.state.service
    held = [service.claim(f"w:{i}", 1, name) for i in range(3)]

    def broken(requests: Any) -> Any:
        raise RuntimeError("connection reset")

    monkeypatch.setattr(service, "finish_group", broken)
    groups = FinishGroups(service)

    async def together() -> list[Any]:
        reqs = [FinishRequest(h["trial_id"], h["lease"], 1, "complete", 0.5, None,
                              (f"w:{i}", name)) for i, h in enumerate(held)]
        reqs[1].lease = "0" * 32  # not this trial's lease
        return await asyncio.gather(*(groups.finish(r) for r in reqs),
                                    return_exceptions=True)

    first, stale, third = asyncio.run(together())
    assert groups.groups == 1 and groups.requests == 3
    assert isinstance(stale, RefusedError) and stale.status == 409
    assert first["recorded"] and third["recorded"]
    # run_cap 4: three held, one left in the pool; one of the two takes it, the other waits
    assert sorted([first["next"]["status"], third["next"]["status"]]) == ["trial", "wait"]
    states = [t.state for t in service.sweep(name).study.get_trials(deepcopy=False)]
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.RUNNING) == 2


@needs_pg
def test_a_group_that_leaves_the_pool_low_has_it_filled_in_the_background() -> None:
    """A group's statement tells how many trials its pool has left; below the low-water
    mark the service fills the pool in a background thread (one fill at a time), so that
    the next groups take drawn trials instead of waiting for a draw; run_cap stays exact."""
    from hypergraph.sweeps._store import POOL_TOKEN

    app, name = _service(PG_URL, run_cap=40, prefetch=4)
    service = app.state.service
    sweep = service.sweep(name)
    held = [service.claim(f"w:{i}", 1, name) for i in range(4)]  # 1 + 4 drawn: 1 left

    def pooled() -> int:
        return sum(s["token"] == POOL_TOKEN for s in service.store.slots(sweep.study))

    assert pooled() == 1
    filled: list[Any] = []
    real_fill = service._fill
    service._fill = lambda s: filled.append(s) or real_fill(s)
    first = held[0]
    [answer] = service.finish_group([FinishRequest(first["trial_id"], first["lease"], 1,
                                                   "complete", 0.5, None, ("w:0", name))])
    assert answer is not None and answer["recorded"]
    assert answer["next"]["status"] == "trial"  # the pool's last trial
    service.close()  # waits for the fill
    assert filled == [sweep]
    assert pooled() == 4  # filled up to prefetch after the group took the last one
    assert not service._filling
    slots = service.store.slots(sweep.study)
    assert len(slots) <= 40 and len({s["trial_id"] for s in slots}) == len(slots)


@needs_pg
def test_a_group_hands_out_trials_drawn_by_another_server_process() -> None:
    """A group that takes trials another server process drew (the pool is the storage's)
    answers with their parameters and config as stored, read in the group's statement."""
    first, name = _service(PG_URL, run_cap=12, prefetch=4)
    second = create_app(PG_URL, heartbeat_interval=1, grace_period=3, maintain_every=0,
                        prefetch=4)
    one, two = first.state.service, second.state.service
    held = two.claim("w:0", 1, name)  # the second process draws 1 + 4 ...
    assert held["status"] == "trial"
    sweep = one.sweep(name)
    assert one.handout.fill(sweep.study, sweep.spec, sweep.budget, below=8) == 4  # ... and
    drawn_by_one = set(one.handout._pooled)  # the first process four more
    [answer] = two.finish_group([FinishRequest(held["trial_id"], held["lease"], 1,
                                               "complete", 0.5, None, ("w:0", name))])
    assert answer is not None and answer["next"]["status"] == "trial"
    taken = answer["next"]
    stored = one.store.storage.get_trial(taken["trial_id"])
    assert taken["params"] == stored.params and set(taken["params"]) == {"model.lr"}
    assert taken["config"]["model"]["name"] == "mlp"
    # the pool is taken in order: the second process's four, then the first's
    seen = [taken]
    while len(seen) < 6:
        [answer] = two.finish_group([FinishRequest(taken["trial_id"], taken["lease"], 1,
                                                   "complete", 0.5, None, ("w:0", name))])
        assert answer is not None
        taken = answer["next"]
        assert taken["status"] == "trial"
        assert taken["params"] == one.store.storage.get_trial(taken["trial_id"]).params
        seen.append(taken)
    assert len({t["trial_id"] for t in seen}) == len(seen)
    assert len({t["trial_id"] for t in seen} & drawn_by_one) == 2
