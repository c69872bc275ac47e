"""Trial hand-out in one transaction: claim a trial and finish it against Optuna's RDB schema.

Optuna's ``study.ask`` writes a new trial, its heartbeat, each parameter and each attribute in
separate commits (about 66 SQL statements and 17 commits per hand-out through
:class:`~hypergraph.sweeps.SweepStore`). Here the same rows are written in ONE transaction:

1. **Draft.** The study's own sampler draws the parameters through ``study.ask`` on a
   :class:`DraftStorage`: a view of the real storage that reads from it but keeps every write
   of the new trial (its parameters, attributes, a popped retry) in memory. Optuna stays the
   source of truth for what is drawn: the same sampler, the same retries with the same
   parameters (``fixed_params``), the same rows in the same tables.
2. **Commit.** One transaction under the sweep's write lock (SQLite: ``BEGIN IMMEDIATE``, and a
   lock per process so threads queue without busy-waiting; PostgreSQL: the study's row
   ``SELECT ... FOR UPDATE``, the lock Optuna's own trial creation takes) checks the budget,
   takes a free slot of ``hypergraph_sweep_slots`` (its primary key keeps ``run_cap`` exact
   even against writers that do not take the lock), creates the trial (or moves a queued retry
   ``WAITING -> RUNNING`` with ``UPDATE ... WHERE state = 'WAITING'``; a lost race redrafts),
   and writes its parameters, attributes and first heartbeat.
3. **Finish** is one transaction too: the fenced ``UPDATE trials SET state = ... WHERE
   state = 'RUNNING' AND <the slot still names this lease>``, then the value (or the error).
   A trial failed as stale meanwhile matches no row: the late result is refused.

Every other part of the protocol (stale-trial maintenance, retries, release, reports) stays in
:class:`~hypergraph.sweeps.SweepStore` and Optuna, on the same rows.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import threading
import uuid
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hypergraph.exceptions import HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.sweeps._store import (
    CONFIG_ATTR,
    ERROR_ATTR,
    SLOTS,
    WORKER_ATTR,
    SweepStore,
    quiet,
)

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial, TrialState

    from hypergraph.sweeps._spec import SweepSpec

__all__ = ["DraftStorage", "FinishOutcome", "HandOut", "HandOutStore"]

logger = get_logger(__name__)

#: The id of a drafted trial that is not in the storage yet.
DRAFT_ID = -1
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


class DraftStorage:
    """A view of an Optuna storage that drafts ONE new trial in memory.

    Reads go to ``base`` (the drafted trial shown in its place); the writes ``study.ask`` and
    the sampler make for the new trial (state, parameters, attributes, a study system
    attribute) are kept here for :class:`HandOutStore` to write in one transaction. A queued
    trial (``WAITING``: an enqueued trial or a retry) that ``ask`` pops becomes the draft
    (``popped`` names it); a fresh trial gets the id :data:`DRAFT_ID`.

    Not thread-safe: one draft at a time (the caller holds the sweep's sampler lock).
    """

    def __init__(self, base: optuna.storages.BaseStorage) -> None:
        self.base = base
        self.reset()

    def reset(self, trials: int | None = None, waiting: bool = True) -> None:
        """Forget the last draft; ``trials`` (the study's count of trials) and ``waiting``
        (whether any is queued), read by the caller in one query, spare the two reads of
        every trial that ``ask`` would make otherwise."""
        self.trials = trials
        self.waiting = waiting
        self.draft: FrozenTrial | None = None
        self.popped: int | None = None
        self.new_params: dict[str, tuple[float, BaseDistribution]] = {}
        self.user_attrs: dict[str, Any] = {}
        self.system_attrs: dict[str, Any] = {}
        self.study_system_attrs: dict[str, Any] = {}

    # -- the drafted trial ---------------------------------------------------------------------

    def _mine(self, trial_id: int) -> FrozenTrial:
        if self.draft is None or trial_id != self.draft._trial_id:
            raise RuntimeError(f"Only the drafted trial can be written here, not {trial_id}.")
        return self.draft

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None
                         ) -> int:
        from optuna.trial import FrozenTrial, TrialState

        if self.draft is not None or template_trial is not None:
            raise RuntimeError("A draft holds one new trial, without a template.")
        number = self.trials
        if number is None:
            number = len(self.base.get_all_trials(study_id, deepcopy=False))
        self.draft = FrozenTrial(
            number=number, state=TrialState.RUNNING, value=None, values=None,
            datetime_start=dt.datetime.now(), datetime_complete=None, params={},
            distributions={}, user_attrs={}, system_attrs={}, intermediate_values={},
            trial_id=DRAFT_ID)
        return DRAFT_ID

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        from optuna.trial import TrialState

        if self.draft is None and state == TrialState.RUNNING:  # ask pops a queued trial
            queued = self.base.get_trial(trial_id)
            if queued.state != TrialState.WAITING:
                return False
            self.draft = copy.deepcopy(queued)
            self.draft.state = TrialState.RUNNING
            self.draft.datetime_start = dt.datetime.now()
            self.popped = trial_id
            return True
        raise RuntimeError("A draft only starts a trial; it is finished through the storage.")

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        draft = self._mine(trial_id)
        draft.params[param_name] = distribution.to_external_repr(param_value_internal)
        draft.distributions[param_name] = distribution
        self.new_params[param_name] = (param_value_internal, distribution)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._mine(trial_id).user_attrs[key] = value
        self.user_attrs[key] = value

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._mine(trial_id).system_attrs[key] = value
        self.system_attrs[key] = value

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.study_system_attrs[key] = value

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        raise RuntimeError("A drafted trial has no intermediate values.")

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if self.draft is not None and trial_id == self.draft._trial_id:
            return self.draft
        return self.base.get_trial(trial_id)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        from optuna.trial import TrialState

        if (not self.waiting and self.draft is None and states is not None
                and all((s in states) == (s == TrialState.WAITING) for s in TrialState)):
            # ask looks for a queued trial, and the census said there is none
            return []
        trials = [t for t in self.base.get_all_trials(study_id, deepcopy=deepcopy,
                                                      states=states)
                  if self.draft is None or t._trial_id != self.draft._trial_id]
        if self.draft is not None and (states is None or self.draft.state in states):
            trials.append(self.draft)
        return trials

    # -- everything else reads (or, for studies, writes) through the real storage ------------

    def create_new_study(self, directions: Sequence[StudyDirection],
                         study_name: str | None = None) -> int:
        return self.base.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        raise RuntimeError("A draft does not delete studies.")

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.base.set_study_user_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.base.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self.base.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self.base.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self.base.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return {**self.base.get_study_system_attrs(study_id), **self.study_system_attrs}

    def get_all_studies(self) -> list[Any]:
        return self.base.get_all_studies()


def _draft_storage_class() -> type:
    """:class:`DraftStorage` as a subclass of Optuna's ``BaseStorage`` (imported lazily)."""
    from optuna.storages import BaseStorage

    return type("OptunaDraftStorage", (DraftStorage, BaseStorage), {})


@dataclass
class HandOut:
    """A trial handed out: ids, the lease (the slot's token) and what the agent needs."""

    trial_id: int
    number: int
    lease: str
    params: dict[str, Any]
    config: dict[str, Any]


@dataclass
class FinishOutcome:
    """What :meth:`HandOutStore.finish` did: ``status`` is ``recorded``, ``duplicate``,
    ``unknown`` (no such trial), ``forbidden`` (another token's), ``lost`` (the lease is gone)
    or ``finished`` (already finished otherwise)."""

    status: str
    number: int = -1
    state: str = ""
    study_id: int = -1


@dataclass
class _Drafter:
    study: optuna.Study
    storage: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


class HandOutStore:
    """Claims and finishes of trials, each in one transaction of the sweep storage.

    Args:
        store: The sweep storage (its engine's URL; a separate engine is made here).
        pool_size: Connections kept open (PostgreSQL; SQLite serialises writers anyway).
        lazy_claims: PostgreSQL: commit claims with ``synchronous_commit = off``, so the
            study's lock is not held while the claim's WAL is flushed (1.35x more claims per
            second in the hand-out benchmark). A crash of the database server may then
            forget the last claims (never a result: a finish is flushed, and with it every
            claim before it); their agents are refused (404) and their trials are handed
            out again. The same bargain as SQLite's ``synchronous=NORMAL`` under the server.
    """

    def __init__(self, store: SweepStore, pool_size: int = 8, lazy_claims: bool = True
                 ) -> None:
        from optuna.storages._rdb import models

        self.store = store
        self.url = store.url
        self.sqlite = self.url.startswith("sqlite")
        self._models = models
        self._trials = models.TrialModel.__table__
        self._params = models.TrialParamModel.__table__
        self._values = models.TrialValueModel.__table__
        self._user = models.TrialUserAttributeModel.__table__
        self._system = models.TrialSystemAttributeModel.__table__
        self._study_system = models.StudySystemAttributeModel.__table__
        self._beats = models.TrialHeartbeatModel.__table__
        self._studies = models.StudyModel.__table__
        if self.sqlite:
            self.engine = sa.create_engine(self.url, connect_args={"timeout": 60})
            sa.event.listen(self.engine, "connect", _sqlite_manual_transactions)
            sa.event.listen(self.engine, "begin", _sqlite_begin_immediate)
            with _PROCESS_LOCKS_GUARD:
                self._write_lock = _PROCESS_LOCKS.setdefault(self.url, threading.Lock())
        else:
            # no pre-ping (a round trip per checkout): a connection found dead is retried
            # once instead (see _retry_disconnect)
            self.engine = sa.create_engine(self.url, pool_size=pool_size,
                                           max_overflow=pool_size)
            self._write_lock = threading.Lock()  # unused: the database's row lock serialises
        self.lazy_claims = lazy_claims
        self._drafters: dict[int, _Drafter] = {}
        self._guard = threading.Lock()
        self._build_statements()

    def _build_statements(self) -> None:
        """The hot statements, built once with bind parameters (building SQLAlchemy
        expressions per call cost more CPU than running them)."""
        from optuna.trial import TrialState

        t, u, v = self._trials, self._user, self._values
        state = t.c.state.type
        sid, tid = sa.bindparam("sid", type_=sa.Integer), sa.bindparam("tid", type_=sa.Integer)
        self._census_sql = sa.select(
            sa.select(sa.func.count()).select_from(SLOTS)
            .where(SLOTS.c.study_id == sid).scalar_subquery(),
            sa.select(sa.func.count()).select_from(t).where(t.c.study_id == sid)
            .scalar_subquery(),
            sa.select(sa.func.count()).select_from(t)
            .where((t.c.study_id == sid) & (t.c.state == TrialState.WAITING))
            .scalar_subquery())
        self._slots_sql = sa.select(SLOTS.c.slot).where(SLOTS.c.study_id == sid)
        self._slot_range_sql = sa.select(sa.func.count(), sa.func.max(SLOTS.c.slot)).where(
            SLOTS.c.study_id == sid)
        self._pop_sql = t.update().where(
            (t.c.trial_id == tid) & (t.c.state == TrialState.WAITING)).values(
            state=sa.bindparam("to_state", type_=state),
            datetime_start=sa.bindparam("start", type_=sa.DateTime),
            datetime_complete=sa.bindparam("done", type_=sa.DateTime))
        # the number as Optuna gives it: trials of the study before this one (exact: under
        # the lock Optuna's own trial creation takes too)
        self._new_trial_sql = t.insert().from_select(
            ["number", "study_id", "state", "datetime_start", "datetime_complete"],
            sa.select(sa.func.count(), sid, sa.bindparam("to_state", type_=state),
                      sa.bindparam("start", type_=sa.DateTime),
                      sa.bindparam("done", type_=sa.DateTime))
            .select_from(t).where(t.c.study_id == sid)).returning(t.c.trial_id, t.c.number)
        lease = sa.bindparam("lease", type_=sa.String)
        self._finish_read_sql = (
            sa.select(t.c.study_id, t.c.number, t.c.state, u.c.value_json, SLOTS.c.slot,
                      v.c.value)
            .select_from(t.outerjoin(u, (u.c.trial_id == t.c.trial_id)
                                     & (u.c.key == sa.bindparam("holder_key")))
                         .outerjoin(SLOTS, (SLOTS.c.trial_id == t.c.trial_id)
                                    & (SLOTS.c.token == lease))
                         .outerjoin(v, (v.c.trial_id == t.c.trial_id) & (v.c.objective == 0)))
            .where(t.c.trial_id == tid))
        self._beats_sql = self._beats.insert().values(heartbeat=sa.func.current_timestamp())
        self._finish_sql = t.update().where(
            (t.c.trial_id == tid) & (t.c.state == TrialState.RUNNING)
            & sa.exists().where((SLOTS.c.trial_id == tid) & (SLOTS.c.token == lease))
        ).values(state=sa.bindparam("to_state", type_=state),
                 datetime_complete=sa.bindparam("done", type_=sa.DateTime))

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    @contextmanager
    def _transaction(self, study_id: int | None) -> Iterator[sa.Connection]:
        """One write transaction holding the sweep's lock (see the module's docstring)."""
        if self.sqlite:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
            return
        with self.engine.begin() as conn:
            if study_id is not None:
                if self.lazy_claims:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO off")
                conn.execute(sa.select(self._studies.c.study_id).where(
                    self._studies.c.study_id == study_id).with_for_update())
            yield conn

    # -- claim -------------------------------------------------------------------------------

    def _drafter(self, study: optuna.Study) -> _Drafter:
        import optuna

        sid = study._study_id
        with self._guard:
            found = self._drafters.get(sid)
            if found is None or found.study.sampler is not study.sampler:
                storage = _draft_storage_class()(study._storage)
                draft = optuna.Study(study.study_name, storage, sampler=study.sampler,
                                     pruner=study.pruner)
                found = self._drafters[sid] = _Drafter(draft, storage)
        return found

    def census(self, study_id: int) -> tuple[int, int, bool]:
        """``(slots held, trials, whether a trial is queued)`` of a study, in one query."""
        # SQLite: the store's engine (this one's connections take the write lock to begin)
        with (self.store.engine if self.sqlite else self.engine).connect() as conn:
            held, trials, waiting = conn.execute(self._census_sql, {"sid": study_id}).one()
        return int(held or 0), int(trials or 0), bool(waiting)

    def claim(self, study: optuna.Study, spec: SweepSpec, budget: int, worker: str,
              user_attrs: dict[str, Any] | None = None, lock: threading.Lock | None = None,
              tries: int = 8) -> HandOut | None:
        """Hand out a trial of ``study`` to ``worker``; ``None`` when every slot is held.

        Args:
            study: The sweep's study (its sampler draws the parameters).
            spec: The sweep (turns the drawn parameters into a run config).
            budget: The sweep's ``run_cap``.
            worker: Name of the holder (stored as the trial's worker attribute).
            user_attrs: More trial attributes to write with it (the server's token id).
            lock: Held while drafting (the sampler is not thread-safe).
            tries: Drafts before giving up on races for queued trials or slots (then ``None``:
                the caller waits and asks again).

        A draw the sweep refuses (an invalid module combination) is written as a trial failed
        by its own error, which uses its slot as in :meth:`SweepStore.fail`; the next try draws
        again.
        """
        sid = study._study_id
        drafter = self._drafter(study)
        for _ in range(tries):
            held, trials, waiting = self.census(sid)
            if held >= budget:
                return None
            with lock or drafter.lock, quiet():
                drafter.storage.reset(trials, waiting)
                trial = drafter.study.ask()
                error = None
                config: dict[str, Any] = {}
                try:
                    run_config = spec.suggest(trial)
                    config = run_config.model_dump(mode="json")
                except HyperGraphError as err:
                    error = str(err)
                draft = drafter.storage
                snapshot = (draft.draft, draft.popped, dict(draft.new_params),
                            dict(draft.user_attrs), dict(draft.system_attrs),
                            dict(draft.study_system_attrs))
            frozen, popped, params, uattrs, sattrs, study_attrs = snapshot
            assert frozen is not None
            uattrs = {**uattrs, WORKER_ATTR: worker, **(user_attrs or {})}
            if error is None:
                uattrs[CONFIG_ATTR] = json.dumps(config)
            else:
                uattrs[ERROR_ATTR] = error[:2000]
            try:
                got = _retry_disconnect(functools.partial(
                    self._commit_claim, sid, budget, worker, frozen, popped, params, uattrs,
                    sattrs, study_attrs, failed=error is not None))
            except _LostRaceError:
                continue
            except IntegrityError as err:  # a slot taken by a writer outside the lock
                logger.debug("Claim of sweep %d raced another writer: %s", sid, err)
                continue
            if got is None:
                return None
            trial_id, number, lease = got
            if error is not None:
                logger.warning("Trial %d of %s failed at its draw: %s", number,
                               study.study_name, error)
                continue
            return HandOut(trial_id, number, lease, dict(frozen.params), config)
        return None

    def _commit_claim(self, sid: int, budget: int, worker: str, frozen: FrozenTrial,
                      popped: int | None, params: dict[str, tuple[float, BaseDistribution]],
                      uattrs: dict[str, Any], sattrs: dict[str, Any],
                      study_attrs: dict[str, Any], failed: bool
                      ) -> tuple[int, int, str] | None:
        from optuna.distributions import distribution_to_json
        from optuna.trial import TrialState

        now = _now()
        lease = uuid.uuid4().hex
        if not self.sqlite and popped is None and not failed and not study_attrs:
            return self._commit_fresh_pg(sid, budget, worker, params, uattrs, sattrs, now,
                                         lease)
        with self._transaction(sid) as conn:
            held, top = conn.execute(self._slot_range_sql, {"sid": sid}).one()
            if held >= budget:
                return None
            if top is None or top + 1 == held:  # slots 0..held-1 taken: the next is free
                slot = int(held)
            else:  # a slot was freed (its trial died): the first gap
                taken = {int(r[0]) for r in conn.execute(self._slots_sql, {"sid": sid})}
                slot = next(s for s in range(budget) if s not in taken)
            state = TrialState.FAIL if failed else TrialState.RUNNING
            if popped is not None:
                moved = conn.execute(self._pop_sql, {
                    "tid": popped, "to_state": state, "start": now,
                    "done": now if failed else None}).rowcount
                if moved != 1:
                    raise _LostRaceError
                trial_id, number = popped, frozen.number
            else:
                trial_id, number = conn.execute(self._new_trial_sql, {
                    "sid": sid, "to_state": state, "start": now,
                    "done": now if failed else None}).one()
            conn.execute(SLOTS.insert(), {"study_id": sid, "slot": slot, "trial_id": trial_id,
                                          "token": lease, "worker": worker[:255],
                                          "claimed_at": now})
            if params:
                conn.execute(self._params.insert(), [
                    {"trial_id": trial_id, "param_name": name, "param_value": value,
                     "distribution_json": distribution_to_json(dist)}
                    for name, (value, dist) in params.items()])
            self._upsert(conn, self._user, "trial_id", trial_id, uattrs, popped is not None)
            if sattrs:
                self._upsert(conn, self._system, "trial_id", trial_id, sattrs,
                             popped is not None)
            if study_attrs:
                self._upsert(conn, self._study_system, "study_id", sid, study_attrs, True)
            if not failed:
                if popped is not None:
                    conn.execute(self._beats.delete().where(self._beats.c.trial_id == trial_id))
                conn.execute(self._beats_sql, {"trial_id": trial_id})
        return trial_id, number, lease

    def _commit_fresh_pg(self, sid: int, budget: int, worker: str,
                         params: dict[str, tuple[float, BaseDistribution]],
                         uattrs: dict[str, Any], sattrs: dict[str, Any], now: dt.datetime,
                         lease: str) -> tuple[int, int, str] | None:
        """The common claim on PostgreSQL (a new trial) as ONE statement once the study's
        row is locked: the same rows as :meth:`_commit_claim`, in three round trips instead
        of eight, so the lock is held for less time."""
        from optuna.distributions import distribution_to_json

        names = list(params)
        with self._transaction(sid) as conn:  # a new snapshot after the lock: see the
            row = conn.execute(_FRESH_PG, {  # trials its last holder committed
                "sid": sid, "budget": budget, "now": now, "lease": lease,
                "worker": worker[:255], "pn": names,
                "pv": [float(params[n][0]) for n in names],
                "pd": [distribution_to_json(params[n][1]) for n in names],
                "uk": list(uattrs), "uv": [json.dumps(v) for v in uattrs.values()],
                "sk": list(sattrs), "sv": [json.dumps(v) for v in sattrs.values()]}).first()
        if row is None:
            return None
        return int(row[0]), int(row[1]), lease

    @staticmethod
    def _upsert(conn: sa.Connection, table: sa.Table, owner: str, owner_id: int,
                attrs: dict[str, Any], replace: bool) -> None:
        if not attrs:
            return
        if replace:
            conn.execute(table.delete().where((table.c[owner] == owner_id)
                                              & table.c.key.in_(list(attrs))))
        conn.execute(table.insert(), [{owner: owner_id, "key": k, "value_json": json.dumps(v)}
                                      for k, v in attrs.items()])

    # -- finish ------------------------------------------------------------------------------

    def finish(self, trial_id: int, lease: str, state: str, value: float | None = None,
               error: str | None = None, holder: tuple[str, Any] | None = None
               ) -> FinishOutcome:
        """Finish a held trial in one transaction (the fence included).

        Args:
            trial_id: The trial.
            lease: The lease its claim returned.
            state: ``complete`` (with ``value``), ``pruned`` or ``fail`` (with ``error``).
            value: The objective value of a complete trial.
            error: Why the trial failed (stored as its error attribute: its slot stays used).
            holder: ``(key, value)``: the trial user attribute naming its holder and the value
                the caller must match (the server's token id); otherwise ``forbidden``.
        """
        return _retry_disconnect(lambda: self._finish(trial_id, lease, state, value, error,
                                                      holder))

    def _finish(self, trial_id: int, lease: str, state: str, value: float | None,
                error: str | None, holder: tuple[str, Any] | None) -> FinishOutcome:
        from optuna.storages._rdb.models import TrialValueModel
        from optuna.trial import TrialState

        u, v = self._user, self._values
        target = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                  "fail": TrialState.FAIL}[state]
        with self._transaction(None) as conn:
            row = conn.execute(self._finish_read_sql, {
                "tid": trial_id, "lease": lease,
                "holder_key": holder[0] if holder else ""}).first()
            if row is None:
                return FinishOutcome("unknown")
            sid, number, current, token_json, slot, stored = row
            out = FinishOutcome("", int(number), current.name.lower(), int(sid))
            if holder is not None and (token_json is None
                                       or json.loads(token_json) != holder[1]):
                out.status = "forbidden"
                return out
            if slot is None:
                out.status = "lost"
                return out
            if current != TrialState.RUNNING:
                same = current == target and (state != "complete" or stored == value)
                out.status = "duplicate" if same else "finished"
                return out
            moved = conn.execute(self._finish_sql, {
                "tid": trial_id, "lease": lease, "to_state": target, "done": _now()}).rowcount
            if moved != 1:  # failed as stale between the read and the write (PostgreSQL)
                out.status = "lost"
                return out
            if target == TrialState.COMPLETE:
                assert value is not None
                stored_value, kind = TrialValueModel.value_to_stored_repr(value)
                conn.execute(v.insert(), {"trial_id": trial_id, "objective": 0,
                                          "value": stored_value, "value_type": kind})
            elif target == TrialState.FAIL:
                self._upsert(conn, u, "trial_id", trial_id,
                             {ERROR_ATTR: (error or "failed on its agent")[:2000]}, True)
            out.status = "recorded"
            out.state = state
            return out


#: A new trial on PostgreSQL, with its slot, parameters, attributes and heartbeat, in one
#: statement (data-modifying CTEs; the foreign keys are checked at its end). No row: every
#: slot is held. The number is Optuna's: the study's trials before it, counted under the
#: study's lock that Optuna's own trial creation takes too.
_FRESH_PG = sa.text("""
WITH free AS (
    SELECT min(g) AS slot FROM generate_series(0, :budget - 1) AS g
    WHERE NOT EXISTS (SELECT 1 FROM hypergraph_sweep_slots s
                      WHERE s.study_id = :sid AND s.slot = g)),
t AS (
    INSERT INTO trials (number, study_id, state, datetime_start)
    SELECT (SELECT count(*) FROM trials WHERE study_id = :sid), :sid,
           CAST('RUNNING' AS trialstate), :now
    FROM free WHERE free.slot IS NOT NULL
    RETURNING trial_id, number),
sl AS (
    INSERT INTO hypergraph_sweep_slots (study_id, slot, trial_id, token, worker, claimed_at)
    SELECT :sid, free.slot, t.trial_id, :lease, :worker, :now FROM free, t),
p AS (
    INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)
    SELECT t.trial_id, x.n, x.v, x.d
    FROM t, unnest(CAST(:pn AS text[]), CAST(:pv AS float8[]), CAST(:pd AS text[]))
         AS x(n, v, d)),
u AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT t.trial_id, x.k, x.v FROM t, unnest(CAST(:uk AS text[]), CAST(:uv AS text[]))
         AS x(k, v)),
y AS (
    INSERT INTO trial_system_attributes (trial_id, key, value_json)
    SELECT t.trial_id, x.k, x.v FROM t, unnest(CAST(:sk AS text[]), CAST(:sv AS text[]))
         AS x(k, v)),
h AS (
    INSERT INTO trial_heartbeats (trial_id, heartbeat)
    SELECT t.trial_id, CURRENT_TIMESTAMP FROM t)
SELECT t.trial_id, t.number FROM t
""")

_T = TypeVar("_T")


def _retry_disconnect(fn: Callable[[], _T]) -> _T:
    """Run the transaction ``fn``, once more if its pooled connection turned out dead (the
    database restarted): the pool then holds fresh connections. A transaction that was cut
    off is rolled back, so running it again is safe; a finish whose commit landed just before
    the cut answers ``duplicate`` the second time."""
    try:
        return fn()
    except sa.exc.DBAPIError as err:
        if not err.connection_invalidated:
            raise
        logger.warning("The storage's connection was lost (%s); trying once more.",
                       str(err).splitlines()[0])
        return fn()


class _LostRaceError(Exception):
    """A queued trial was popped by another claim first: draft again."""


def _sqlite_manual_transactions(dbapi_conn: Any, record: Any) -> None:
    # pysqlite's own BEGIN handling is off, so the "begin" listener can take the write lock
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")  # see hypergraph.server._app._tune_sqlite
    cur.close()


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
