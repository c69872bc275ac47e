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
import math
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
    POOL_TOKEN,
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

__all__ = ["DraftStorage", "FinishOutcome", "GroupedFinish", "GroupedOutcome", "HandOut",
           "HandOutStore"]

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

    def reset(self, trials: int | None = None, waiting: bool = True,
              reserved: frozenset[int] = frozenset()) -> None:
        """Forget the last drafts; ``trials`` (the study's count of trials) and ``waiting``
        (whether any is queued outside the pool), read by the caller in one query, spare the
        two reads of every trial that ``ask`` would make otherwise. ``reserved``: ids of the
        pool's trials (``WAITING`` with a reserved slot): shown as running, never popped."""
        self.trials = trials
        self.waiting = waiting
        self.reserved = reserved
        self.batch: list[FrozenTrial] = []
        self.study_system_attrs: dict[str, Any] = {}
        self._clear()

    def _clear(self) -> None:
        self.draft: FrozenTrial | None = None
        self.popped: int | None = None
        self.new_params: dict[str, tuple[float, BaseDistribution]] = {}
        self.user_attrs: dict[str, Any] = {}
        self.system_attrs: dict[str, Any] = {}

    def next_draft(self) -> None:
        """Keep the current draft (shown as running to the next ones) and draft another: a
        batch of trials drawn ahead, as if each were handed out before the next is drawn."""
        if self.draft is not None:
            self.batch.append(self.draft)
        self._clear()

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
        number += len(self.batch)
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
            if queued.state != TrialState.WAITING or trial_id in self.reserved:
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
        for done in self.batch:
            if done._trial_id == trial_id:
                return done
        return self._shown(self.base.get_trial(trial_id))

    def _shown(self, trial: FrozenTrial) -> FrozenTrial:
        """A pooled trial as the sampler sees it: running (it will run, as if handed out)."""
        from optuna.trial import TrialState

        if trial._trial_id in self.reserved and trial.state == TrialState.WAITING:
            trial = copy.copy(trial)
            trial.state = TrialState.RUNNING
        return trial

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        from optuna.trial import TrialState

        if (not self.waiting and self.draft is None and states is not None
                and all((s in states) == (s == TrialState.WAITING) for s in TrialState)):
            # ask looks for a queued trial, and the census said there is none
            return []
        asked = states
        if self.reserved and states is not None and TrialState.RUNNING in states:
            # the pool's trials, shown as running
            asked = [s for s in TrialState if s in states or s == TrialState.WAITING]
        mine = {t._trial_id for t in self.batch}
        if self.draft is not None:
            mine.add(self.draft._trial_id)
        trials = []
        for t in self.base.get_all_trials(study_id, deepcopy=deepcopy, states=asked):
            if t._trial_id not in mine:
                t = self._shown(t)
                if states is None or t.state in states:
                    trials.append(t)
        trials += [t for t in self.batch if states is None or t.state in states]
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
class GroupedFinish:
    """One request of a group (:meth:`HandOutStore.finish_group`): a held trial finished
    as ``state`` (``complete`` with the finite ``value``, ``pruned``: the value of its last
    report as Optuna's ``tell``, ``fail`` with ``error``: its slot stays used), and, when
    ``take``, the claim of a trial of the group's pool for ``worker`` with the attributes
    ``uattrs`` (the worker's name, the server's token id). ``trial_id`` ``None``: a claim
    alone (nothing to finish)."""

    trial_id: int | None
    lease: str
    value: float | None
    holder: tuple[str, Any]
    take: bool = False
    worker: str = ""
    uattrs: dict[str, Any] = field(default_factory=dict)
    state: str = "complete"
    error: str | None = None


def groupable_result(state: str, value: float | None) -> bool:
    """Whether a result can go in a group (:meth:`HandOutStore.finish_group`): ``pruned``,
    ``fail``, or ``complete`` with a finite value (any other is refused alone)."""
    return state in ("pruned", "fail") or (
        state == "complete" and value is not None and math.isfinite(value))


@dataclass
class GroupedOutcome:
    """What :meth:`HandOutStore.finish_group` did for one request: ``recorded`` (else nothing
    was written for it: the caller finishes it alone, which says why), the finished trial's
    ``number`` and ``study_id``, ``taken``: the next trial handed out (``None``: none
    asked, or the pool had none left), and ``pool_left``: the trials left in the pool."""

    recorded: bool
    number: int = -1
    study_id: int = -1
    taken: HandOut | None = None
    #: trials left in the pool after the group (``None``: no pool asked)
    pool_left: int | None = None


@dataclass
class _Drafter:
    study: optuna.Study
    storage: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Draw:
    """One trial drawn on the draft view, before it is written."""

    frozen: FrozenTrial
    popped: int | None
    params: dict[str, tuple[float, BaseDistribution]]
    uattrs: dict[str, Any]
    sattrs: dict[str, Any]
    error: str | None
    config: dict[str, Any]


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
        prefetch: Trials drawn ahead per draw (the pool, see :meth:`claim`); ``0`` draws
            each trial when it is claimed.
    """

    def __init__(self, store: SweepStore, pool_size: int = 8, lazy_claims: bool = True,
                 prefetch: int = 64) -> None:
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
        #: the same pool, each statement its own transaction (:meth:`finish_group`)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.lazy_claims = lazy_claims
        self.prefetch = prefetch
        #: what the pool's trials drawn here hand out: ``trial_id -> (params, config)``
        self._pooled: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
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
        pooled = (SLOTS.c.study_id == sid) & (SLOTS.c.token == POOL_TOKEN)
        # slots held (reservations included), trials, trials queued outside the pool, pooled,
        # the highest slot held: one pass over the sweep's slots and one over its trials
        slot_counts = (sa.select(sa.func.count().label("held"),
                                 sa.func.count().filter(SLOTS.c.token == POOL_TOKEN)
                                 .label("pooled"),
                                 sa.func.max(SLOTS.c.slot).label("top"))
                       .where(SLOTS.c.study_id == sid).subquery())
        trial_counts = (sa.select(
            sa.func.count().label("trials"),
            sa.func.count().filter(
                (t.c.state == TrialState.WAITING)
                & ~sa.exists().where(pooled & (SLOTS.c.trial_id == t.c.trial_id)))
            .label("waiting"))
            .where(t.c.study_id == sid).subquery())
        self._census_sql = sa.select(slot_counts.c.held, trial_counts.c.trials,
                                     trial_counts.c.waiting, slot_counts.c.pooled,
                                     slot_counts.c.top).select_from(
            slot_counts.join(trial_counts, sa.true()))
        self._reserved_sql = sa.select(SLOTS.c.trial_id).where(pooled)
        # the pool's first trial not handed out yet (SQLite: under the write lock)
        self._pool_first_sql = (
            sa.select(SLOTS.c.slot, SLOTS.c.trial_id)
            .select_from(SLOTS.join(t, t.c.trial_id == SLOTS.c.trial_id))
            .where(pooled & (t.c.state == TrialState.WAITING))
            .order_by(SLOTS.c.trial_id).limit(1))
        self._pool_take_sql = SLOTS.update().where(
            (SLOTS.c.study_id == sid) & (SLOTS.c.slot == sa.bindparam("the_slot"))
            & (SLOTS.c.token == POOL_TOKEN)).values(
            token=sa.bindparam("lease"), worker=sa.bindparam("holder"),
            claimed_at=sa.bindparam("now"))
        self._pool_start_sql = t.update().where(
            (t.c.trial_id == tid) & (t.c.state == TrialState.WAITING)).values(
            state=TrialState.RUNNING, datetime_start=sa.bindparam("now", type_=sa.DateTime)
        ).returning(t.c.number)
        self._config_sql = sa.select(u.c.value_json).where(
            (u.c.trial_id == tid) & (u.c.key == CONFIG_ATTR))
        self._params_sql = sa.select(
            self._params.c.param_name, self._params.c.param_value,
            self._params.c.distribution_json).where(self._params.c.trial_id == tid)
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

    def _reader(self) -> sa.Engine:
        """The engine for reads (SQLite: the store's; this one's connections take the write
        lock when they begin)."""
        return self.store.engine if self.sqlite else self.engine

    def census(self, study_id: int) -> tuple[int, int, int, int]:
        """``(slots held, trials, trials queued outside the pool, trials in the pool)`` of a
        study, in one query (slots held include the pool's reservations)."""
        with self._reader().connect() as conn:
            held, trials, waiting, pooled, _top = conn.execute(self._census_sql,
                                                               {"sid": study_id}).one()
        return int(held or 0), int(trials or 0), int(waiting or 0), int(pooled or 0)

    def claim(self, study: optuna.Study, spec: SweepSpec, budget: int, worker: str,
              user_attrs: dict[str, Any] | None = None, lock: threading.Lock | None = None,
              tries: int = 8, prefetch: int | None = None) -> HandOut | None:
        """Hand out a trial of ``study`` to ``worker``; ``None`` when every slot is held.

        A claim first takes a trial of the sweep's *pool*: trials drawn ahead by the sweep's
        sampler, written ``WAITING`` with a budget slot reserved each (token
        :data:`~hypergraph.sweeps._store.POOL_TOKEN`). Taking one is one short transaction
        that never waits on the sweep's lock (PostgreSQL: ``FOR UPDATE SKIP LOCKED``): the
        reservation becomes this claim's lease, the trial starts and beats. With the pool
        empty, the claim draws: a queued retry (alone) when there is one, otherwise
        ``1 + prefetch`` trials at once, never more than the budget left after the slots held
        and the retries queued (so ``run_cap`` stays exact, and a retry always finds a slot);
        the first is handed out, the others fill the pool.

        Args:
            study: The sweep's study (its sampler draws the parameters).
            spec: The sweep (turns the drawn parameters into a run config).
            budget: The sweep's ``run_cap``.
            worker: Name of the holder (stored as the trial's worker attribute).
            user_attrs: More trial attributes to write with it (the server's token id).
            lock: Held while drafting (the sampler is not thread-safe).
            tries: Drafts before giving up on races for queued trials or slots (then ``None``:
                the caller waits and asks again).
            prefetch: Trials drawn ahead when the pool is empty (default: the store's).

        A draw the sweep refuses (an invalid module combination) is written as a trial failed
        by its own error, which uses its slot as in :meth:`SweepStore.fail`; the next try draws
        again.
        """
        sid = study._study_id
        prefetch = self.prefetch if prefetch is None else prefetch
        drafter = self._drafter(study)
        extra = {WORKER_ATTR: worker, **(user_attrs or {})}
        for _ in range(tries):
            got = _retry_disconnect(functools.partial(self._take_pooled, sid, worker, extra))
            if got is not None:
                return got
            held, trials, waiting, pooled = self.census(sid)
            if pooled and not waiting:
                continue  # filled by another claim meanwhile
            if held >= budget:
                return None
            count = 1 if waiting else max(1, min(1 + prefetch, budget - held))
            reserved: frozenset[int] = frozenset()
            if pooled:  # retries queued beside the pool: the pool's trials are not theirs
                with self._reader().connect() as conn:
                    reserved = frozenset(int(r[0]) for r in conn.execute(
                        self._reserved_sql, {"sid": sid}))
            with lock or drafter.lock, quiet():
                draws, study_attrs = self._draw(drafter, spec, count, trials, bool(waiting),
                                                reserved)
            try:
                if count == 1:
                    d = draws[0]
                    got_one = _retry_disconnect(functools.partial(
                        self._commit_claim, sid, budget, worker, d.frozen, d.popped,
                        d.params, {**d.uattrs, **extra}, d.sattrs, study_attrs,
                        failed=d.error is not None))
                    handed = None if got_one is None else (got_one, d, 0)
                else:
                    handed = _retry_disconnect(functools.partial(
                        self._commit_batch, sid, budget, worker, draws, extra, study_attrs))
            except _LostRaceError:
                continue
            except IntegrityError as err:  # a slot taken by a writer outside the lock
                logger.debug("Claim of sweep %d raced another writer: %s", sid, err)
                continue
            if handed is None:  # every slot held, or reserved by a fill meanwhile: take one
                return _retry_disconnect(functools.partial(self._take_pooled, sid, worker,
                                                           extra))
            (trial_id, number, lease), draw, _pooled = handed
            if draw.error is not None:
                logger.warning("Trial %d of %s failed at its draw: %s", number,
                               study.study_name, draw.error)
                continue
            return HandOut(trial_id, number, lease, dict(draw.frozen.params), draw.config)
        return None

    def fill(self, study: optuna.Study, spec: SweepSpec, budget: int,
             lock: threading.Lock | None = None, below: int | None = None) -> int:
        """Draw trials into the pool of ``study`` ahead of the claims (random and grid
        sweeps), so that claims find it full: ``prefetch`` trials, never beyond the budget
        left. Nothing when retries are queued (claims take those first, each alone), when
        the pool already holds ``below`` trials or more (default: ``prefetch``) or when
        every slot is held. Returns the trials added to the pool.

        ``lock``: held while drafting (the sampler is not thread-safe), as in :meth:`claim`.
        """
        sid = study._study_id
        held, trials, waiting, pooled = self.census(sid)
        count = min(self.prefetch, budget - held)
        if waiting or count <= 0 or pooled >= (self.prefetch if below is None else below):
            return 0
        drafter = self._drafter(study)
        with lock or drafter.lock, quiet():
            draws, study_attrs = self._draw(drafter, spec, count, trials, False, frozenset())
        try:
            written = _retry_disconnect(functools.partial(
                self._commit_batch, sid, budget, "(pool)", draws, {}, study_attrs,
                hand_out=False))
        except (_LostRaceError, IntegrityError) as err:  # raced a claim: it fills instead
            logger.debug("Filling the pool of sweep %d raced a claim: %s", sid, err)
            return 0
        return 0 if written is None else written[2]

    def _draw(self, drafter: _Drafter, spec: SweepSpec, count: int, trials: int,
              waiting: bool, reserved: frozenset[int]) -> tuple[list[_Draw], dict[str, Any]]:
        """Draw ``count`` trials on the draft view (the caller holds the sampler's lock), each
        with its run config (or the error that fails it) among its attributes."""
        draft = drafter.storage
        draft.reset(trials, waiting, reserved)
        draws = []
        for i in range(count):
            if i:
                draft.next_draft()
            trial = drafter.study.ask()
            error = None
            config: dict[str, Any] = {}
            try:
                config = spec.suggest(trial).model_dump(mode="json")
            except HyperGraphError as err:
                error = str(err)
            assert draft.draft is not None
            # the run config to hand out, or the error the trial is failed by
            outcome = ({CONFIG_ATTR: json.dumps(config)} if error is None
                       else {ERROR_ATTR: error[:2000]})
            draws.append(_Draw(draft.draft, draft.popped, dict(draft.new_params),
                               {**draft.user_attrs, **outcome}, dict(draft.system_attrs),
                               error, config))
        return draws, dict(draft.study_system_attrs)

    def _take_pooled(self, sid: int, worker: str, uattrs: dict[str, Any]) -> HandOut | None:
        """Take the pool's first trial not handed out yet, in one transaction that waits on
        no other claim (``None``: the pool is empty)."""
        now = _now()
        lease = uuid.uuid4().hex
        keys = list(uattrs)
        values = [json.dumps(v) for v in uattrs.values()]
        if self.sqlite:
            with self._transaction(None) as conn:
                row = conn.execute(self._pool_first_sql, {"sid": sid}).first()
                if row is None:
                    return None
                slot, trial_id = int(row[0]), int(row[1])
                conn.execute(self._pool_take_sql, {"sid": sid, "the_slot": slot,
                                                   "lease": lease, "holder": worker[:255],
                                                   "now": now})
                number = conn.execute(self._pool_start_sql,
                                      {"tid": trial_id, "now": now}).scalar_one()
                self._upsert(conn, self._user, "trial_id", trial_id, uattrs, False)
                conn.execute(self._beats_sql, {"trial_id": trial_id})
                stored = (None if trial_id in self._pooled else
                          conn.execute(self._config_sql, {"tid": trial_id}).scalar())
        else:
            with self.engine.begin() as conn:  # one round trip, then the commit
                row = conn.execute(_TAKE_PG, {
                    "sid": sid, "pool": POOL_TOKEN, "lease": lease, "worker": worker[:255],
                    "now": now, "uk": keys, "uv": values, "cfg": CONFIG_ATTR,
                    "sync": "off" if self.lazy_claims else "on"}).first()
            if row is None:
                return None
            trial_id, number, stored = int(row[0]), int(row[1]), row[2]  # type: ignore[misc]
        kept = self._pooled.pop(trial_id, None)
        if kept is None:  # drawn by another process (or before a restart): read it
            params = self._read_params(trial_id)
            config = json.loads(json.loads(stored)) if stored else {}
        else:
            params, config = kept
        return HandOut(trial_id, int(number), lease, params, config)

    def _read_params(self, trial_id: int) -> dict[str, Any]:
        with self._reader().connect() as conn:
            rows = conn.execute(self._params_sql, {"tid": trial_id}).all()
        return _external_params(rows)

    def _commit_batch(self, sid: int, budget: int, worker: str, draws: list[_Draw],
                      extra: dict[str, Any], study_attrs: dict[str, Any],
                      hand_out: bool = True
                      ) -> tuple[tuple[int, int, str], _Draw, int] | None:
        """Write ``draws`` in one transaction under the sweep's lock: the first that drew
        without an error is handed out (running, with ``extra`` attributes and a heartbeat;
        none when not ``hand_out``), the others fill the pool (``WAITING``, a slot reserved
        each); draws beyond the budget left (slots held, retries queued) are dropped.
        ``None``: no slot left; else the trial handed out (its draw; ``""`` as its lease when
        every draw failed by its own error) and the number of trials added to the pool."""
        from optuna.distributions import distribution_to_json
        from optuna.trial import TrialState

        now = _now()
        lease = uuid.uuid4().hex
        t = self._trials
        with self._transaction(sid) as conn:
            held, trials, waiting, _pooled, top = conn.execute(self._census_sql,
                                                               {"sid": sid}).one()
            room = budget - int(held) - int(waiting)
            if room <= 0:
                return None
            draws = draws[:room]
            free = self._free_slots(conn, sid, budget, int(held), top, len(draws))
            draws = draws[:len(free)]
            mine = (next((i for i, d in enumerate(draws) if d.error is None), None)
                    if hand_out else None)
            rows = []
            for i, d in enumerate(draws):
                state = (TrialState.FAIL if d.error is not None else
                         TrialState.RUNNING if i == mine else TrialState.WAITING)
                rows.append({"number": int(trials) + i, "study_id": sid, "state": state,
                             "datetime_start": None if state == TrialState.WAITING else now,
                             "datetime_complete": now if d.error is not None else None})
            ids = [int(r[0]) for r in conn.execute(
                t.insert().returning(t.c.trial_id, sort_by_parameter_order=True), rows)]
            conn.execute(SLOTS.insert(), [
                {"study_id": sid, "slot": slot, "trial_id": tid,
                 "token": (lease if i == mine else POOL_TOKEN if d.error is None
                           else uuid.uuid4().hex),
                 "worker": worker[:255] if i == mine or d.error is not None else "(pool)",
                 "claimed_at": now}
                for i, (d, tid, slot) in enumerate(zip(draws, ids, free, strict=True))])
            params = [{"trial_id": tid, "param_name": name, "param_value": value,
                       "distribution_json": distribution_to_json(dist)}
                      for d, tid in zip(draws, ids, strict=True)
                      for name, (value, dist) in d.params.items()]
            if params:
                conn.execute(self._params.insert(), params)
            users = [{"trial_id": tid, "key": k, "value_json": json.dumps(v)}
                     for i, (d, tid) in enumerate(zip(draws, ids, strict=True))
                     for k, v in ({**d.uattrs, **extra} if i == mine or d.error is not None
                                  else d.uattrs).items()]
            if users:
                conn.execute(self._user.insert(), users)
            systems = [{"trial_id": tid, "key": k, "value_json": json.dumps(v)}
                       for d, tid in zip(draws, ids, strict=True) for k, v in d.sattrs.items()]
            if systems:
                conn.execute(self._system.insert(), systems)
            if study_attrs:
                self._upsert(conn, self._study_system, "study_id", sid, study_attrs, True)
            if mine is not None:
                conn.execute(self._beats_sql, {"trial_id": ids[mine]})
        if len(self._pooled) > 100_000:  # taken by other processes: read back if needed
            self._pooled.clear()
        pooled = 0
        for i, (d, tid) in enumerate(zip(draws, ids, strict=True)):
            if i != mine and d.error is None:
                self._pooled[tid] = (dict(d.frozen.params), d.config)
                pooled += 1
        if mine is None:  # every draw failed by its own error: the caller draws again
            return (ids[0], int(trials), ""), draws[0], pooled
        return (ids[mine], int(trials) + mine, lease), draws[mine], pooled

    def _free_slots(self, conn: sa.Connection, sid: int, budget: int, held: int,
                    top: int | None, count: int) -> list[int]:
        """The first ``count`` free slots of the budget, given the slots ``held`` and the
        highest one (``top``): the slots after it when 0..held-1 are all taken, otherwise
        (a slot was freed: its trial died) the gaps first, read from the storage."""
        if top is None or top + 1 == held:
            return list(range(held, min(budget, held + count)))
        taken = {int(r[0]) for r in conn.execute(self._slots_sql, {"sid": sid})}
        return [s for s in range(budget) if s not in taken][:count]

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
            slot = self._free_slots(conn, sid, budget, int(held), top, 1)[0]
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

    def _last_intermediate(self, conn: sa.Connection, trial_id: int) -> float | None:
        """The value reported at the trial's last step (``None``: none, or NaN)."""
        from optuna.storages._rdb.models import TrialIntermediateValueModel

        iv = TrialIntermediateValueModel.__table__
        row = conn.execute(sa.select(iv.c.intermediate_value, iv.c.intermediate_value_type)
                           .where(iv.c.trial_id == trial_id).order_by(iv.c.step.desc())
                           .limit(1)).first()
        if row is None:
            return None
        last = float(TrialIntermediateValueModel.stored_repr_to_intermediate_value(*row))
        return last if _feasible(last) else None

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
            if target == TrialState.PRUNED:  # as Optuna's tell: the last reported value
                value = self._last_intermediate(conn, trial_id)
            if target != TrialState.FAIL and value is not None:
                stored_value, kind = TrialValueModel.value_to_stored_repr(value)
                conn.execute(v.insert(), {"trial_id": trial_id, "objective": 0,
                                          "value": stored_value, "value_type": kind})
            elif target == TrialState.FAIL:
                self._upsert(conn, u, "trial_id", trial_id,
                             {ERROR_ATTR: (error or "failed on its agent")[:2000]}, True)
            out.status = "recorded"
            out.state = state
            return out


    # -- grouped finish-and-claim (PostgreSQL) -----------------------------------------------

    def finish_group(self, study_id: int | None, items: Sequence[GroupedFinish]
                     ) -> list[GroupedOutcome]:
        """Finish several held trials and hand out the next ones, in ONE statement.

        PostgreSQL only: one round trip and one commit (flushed, as every finish) for the
        whole group, however many requests it holds. Each request gets its own outcome: its
        result is recorded only if its trial still runs under its lease and holder (the fence
        of :meth:`finish`, checked per row under the row's lock), and only a recorded request
        with ``take`` takes a trial of the pool of ``study_id`` (``FOR UPDATE SKIP LOCKED``,
        reservations only: ``run_cap`` stays exact); a request without a trial only takes
        one. A request not recorded wrote nothing:
        the caller finishes it alone (:meth:`finish` says why it is refused, or that it is a
        duplicate). Two requests must not name the same trial.

        Args:
            study_id: The study whose pool the ``take`` requests draw from (``None``: none).
            items: The requests (``complete`` with a finite value, ``pruned`` or ``fail``).
        """
        if self.sqlite:
            raise HyperGraphError("Grouped finishes need PostgreSQL.")
        for item in items:
            if item.trial_id is not None and not groupable_result(item.state, item.value):
                raise ValueError(f"A group finishes 'complete' (with a finite value), "
                                 f"'pruned' or 'fail' trials, not {item.state!r} with "
                                 f"value {item.value!r}.")
        named = [i.trial_id for i in items if i.trial_id is not None]
        if len(set(named)) != len(named):
            raise ValueError("A group names a trial twice.")
        return _retry_disconnect(lambda: self._finish_group(study_id, items))

    def _finish_group(self, study_id: int | None, items: Sequence[GroupedFinish]
                      ) -> list[GroupedOutcome]:
        now = _now()
        leases = [uuid.uuid4().hex if i.take else "" for i in items]
        ui: list[int] = []
        uk: list[str] = []
        uv: list[str] = []
        for n, item in enumerate(items, start=1):
            if item.take:
                for key, value in item.uattrs.items():
                    ui.append(n)
                    uk.append(key)
                    uv.append(json.dumps(value))
        holder_keys = {i.holder[0] for i in items}
        if len(holder_keys) != 1:
            raise ValueError("A group checks one holder attribute.")
        params = {
            "tid": [i.trial_id for i in items], "lease": [i.lease for i in items],
            "val": [None if i.value is None or i.state != "complete" else float(i.value)
                    for i in items],
            "st": [_GROUP_STATES.get(i.state, "COMPLETE") for i in items],
            "err": [json.dumps((i.error or "failed on its agent")[:2000])
                    if i.state == "fail" else None for i in items],
            "ekey": ERROR_ATTR,
            "holder": [json.dumps(i.holder[1]) for i in items],
            "take": [bool(i.take and study_id is not None) for i in items],
            "worker": [i.worker[:255] for i in items], "nl": leases,
            "hkey": holder_keys.pop(), "now": now,
            "sid": -1 if study_id is None else study_id, "pool": POOL_TOKEN,
            "ui": ui, "uk": uk, "uv": uv, "cfg": CONFIG_ATTR}
        with self._autocommit.connect() as conn:  # the statement is its own transaction
            rows = conn.execute(_GROUP_PG, params).all()
        out = []
        # the pool as the statement found it (its own snapshot), less what the group took
        left = (None if study_id is None or not rows else
                max(0, int(rows[0][7]) - sum(row[3] is not None for row in rows)))
        for lease, row in zip(leases, rows, strict=True):
            _i, number, sid, taken_id, taken_number, stored, drawn, _pooled = row
            done = (GroupedOutcome(False, pool_left=left) if number is None
                    else GroupedOutcome(True, int(number), int(sid), pool_left=left))
            if taken_id is not None:
                kept = self._pooled.pop(int(taken_id), None)
                if kept is None:  # drawn by another process (or before a restart): as read
                    params_of = _external_params(drawn or [])
                    config = json.loads(json.loads(stored)) if stored else {}
                else:
                    params_of, config = kept
                done.taken = HandOut(int(taken_id), int(taken_number), lease, params_of,
                                     config)
            out.append(done)
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

#: Take the pool's first trial not handed out yet on PostgreSQL, in one statement: the
#: reservation and the trial are locked with ``SKIP LOCKED`` (a claim never waits on another;
#: a trial popped meanwhile by a worker's own ``ask`` is locked or no longer ``WAITING``), the
#: reservation becomes the lease, the trial starts, gets its holder's attributes and beats.
#: ``set_config`` is ``SET LOCAL synchronous_commit`` (``lazy_claims``) without a round trip
#: of its own: it applies to this transaction's commit.
_TAKE_PG = sa.text("""
WITH c AS (
    SELECT s.slot, s.trial_id FROM hypergraph_sweep_slots s
    JOIN trials tr ON tr.trial_id = s.trial_id
    WHERE s.study_id = :sid AND s.token = :pool AND tr.state = 'WAITING'
    ORDER BY s.trial_id LIMIT 1
    FOR UPDATE OF s, tr SKIP LOCKED),
sl AS (
    UPDATE hypergraph_sweep_slots s SET token = :lease, worker = :worker, claimed_at = :now
    FROM c WHERE s.trial_id = c.trial_id),
t AS (
    UPDATE trials tr SET state = 'RUNNING', datetime_start = :now
    FROM c WHERE tr.trial_id = c.trial_id
    RETURNING tr.trial_id, tr.number),
u AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT t.trial_id, x.k, x.v FROM t, unnest(CAST(:uk AS text[]), CAST(:uv AS text[]))
         AS x(k, v)),
h AS (
    INSERT INTO trial_heartbeats (trial_id, heartbeat)
    SELECT t.trial_id, CURRENT_TIMESTAMP FROM t)
SELECT t.trial_id, t.number,
       (SELECT a.value_json FROM trial_user_attributes a
        WHERE a.trial_id = t.trial_id AND a.key = :cfg),
       set_config('synchronous_commit', :sync, true)
FROM t
""")

#: The trial state each result of a group writes.
_GROUP_STATES = {"complete": "COMPLETE", "pruned": "PRUNED", "fail": "FAIL"}

#: Grouped finish-and-claim on PostgreSQL (:meth:`HandOutStore.finish_group`), one statement:
#: ``req`` holds the requests (one row each, numbered ``i``); ``fin`` finishes the trials that
#: still run under their lease and holder (the fence, re-checked under each row's lock; a row
#: failed as stale meanwhile is not updated), ``val`` stores the values (a pruned trial's:
#: its last report, as Optuna's ``tell``; none when that was NaN), ``e`` the errors of
#: failed ones (their slot stays used, as :meth:`HandOutStore.finish`); ``want`` ranks the
#: recorded requests that take a next trial (and the claims alone: no trial to finish),
#: ``got`` locks as many of the pool's trials (``SKIP LOCKED``: never waits on another
#: claim) and ``c`` pairs them by rank; the
#: reservations become the new leases (``sl``), the trials start (``st``), get their holders'
#: attributes (``u``) and first heartbeats (``h``). One row per request comes back, in order.
_GROUP_PG = sa.text("""
WITH req AS (
    SELECT * FROM unnest(CAST(:tid AS int[]), CAST(:lease AS text[]), CAST(:val AS float8[]),
                         CAST(:holder AS text[]), CAST(:take AS bool[]),
                         CAST(:worker AS text[]), CAST(:nl AS text[]), CAST(:st AS text[]),
                         CAST(:err AS text[]))
         WITH ORDINALITY AS r(tid, lease, val, holder, take, worker, nl, st, err, i)),
fin AS (
    UPDATE trials t SET state = CAST(r.st AS trialstate), datetime_complete = :now
    FROM req r
    WHERE t.trial_id = r.tid AND t.state = 'RUNNING'
      AND EXISTS (SELECT 1 FROM hypergraph_sweep_slots s
                  WHERE s.trial_id = r.tid AND s.token = r.lease)
      AND EXISTS (SELECT 1 FROM trial_user_attributes a
                  WHERE a.trial_id = r.tid AND a.key = :hkey AND a.value_json = r.holder)
    RETURNING r.i, t.trial_id, t.number, t.study_id),
val AS (
    INSERT INTO trial_values (trial_id, objective, value, value_type)
    SELECT fin.trial_id, 0, r.val, CAST('FINITE' AS trialvaluetype)
    FROM fin JOIN req r ON r.i = fin.i WHERE r.st = 'COMPLETE'
    UNION ALL
    SELECT fin.trial_id, 0, iv.intermediate_value,
           CAST(CAST(iv.intermediate_value_type AS text) AS trialvaluetype)
    FROM fin JOIN req r ON r.i = fin.i
    JOIN LATERAL (SELECT v.intermediate_value, v.intermediate_value_type
                  FROM trial_intermediate_values v WHERE v.trial_id = fin.trial_id
                  ORDER BY v.step DESC LIMIT 1) iv ON true
    WHERE r.st = 'PRUNED' AND CAST(iv.intermediate_value_type AS text) <> 'NAN'),
e AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT fin.trial_id, :ekey, r.err FROM fin JOIN req r ON r.i = fin.i WHERE r.st = 'FAIL'
    ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json),
want AS (
    SELECT r.i, r.worker, r.nl, row_number() OVER (ORDER BY r.i) AS k
    FROM req r LEFT JOIN fin ON fin.i = r.i
    WHERE r.take AND (fin.i IS NOT NULL OR r.tid IS NULL)),
got AS (
    SELECT s.slot, s.trial_id FROM hypergraph_sweep_slots s
    JOIN trials tr ON tr.trial_id = s.trial_id
    WHERE s.study_id = :sid AND s.token = :pool AND tr.state = 'WAITING'
    ORDER BY s.trial_id LIMIT (SELECT count(*) FROM want)
    FOR UPDATE OF s, tr SKIP LOCKED),
c AS (
    SELECT g.slot, g.trial_id, w.i, w.worker, w.nl
    FROM (SELECT got.slot, got.trial_id, row_number() OVER (ORDER BY got.trial_id) AS k
          FROM got) g
    JOIN want w ON w.k = g.k),
sl AS (
    UPDATE hypergraph_sweep_slots s SET token = c.nl, worker = c.worker, claimed_at = :now
    FROM c WHERE s.trial_id = c.trial_id),
st AS (
    UPDATE trials tr SET state = 'RUNNING', datetime_start = :now
    FROM c WHERE tr.trial_id = c.trial_id
    RETURNING c.i, tr.trial_id, tr.number),
u AS (
    INSERT INTO trial_user_attributes (trial_id, key, value_json)
    SELECT st.trial_id, x.k, x.v
    FROM st JOIN unnest(CAST(:ui AS int[]), CAST(:uk AS text[]), CAST(:uv AS text[]))
         AS x(i, k, v) ON x.i = st.i),
h AS (
    INSERT INTO trial_heartbeats (trial_id, heartbeat)
    SELECT st.trial_id, CURRENT_TIMESTAMP FROM st)
SELECT r.i, fin.number, fin.study_id, st.trial_id, st.number,
       (SELECT a.value_json FROM trial_user_attributes a
        WHERE a.trial_id = st.trial_id AND a.key = :cfg),
       (SELECT json_agg(json_build_array(tp.param_name, tp.param_value,
                                         tp.distribution_json))
        FROM trial_params tp WHERE tp.trial_id = st.trial_id),
       (SELECT count(*) FROM hypergraph_sweep_slots p JOIN trials pt
        ON pt.trial_id = p.trial_id
        WHERE p.study_id = :sid AND p.token = :pool AND pt.state = 'WAITING')
FROM req r LEFT JOIN fin ON fin.i = r.i LEFT JOIN st ON st.i = r.i
ORDER BY r.i
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


def _external_params(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A trial's parameters as Optuna gives them, from its ``trial_params`` rows (name,
    internal value, distribution JSON)."""
    from optuna.distributions import json_to_distribution

    return {name: json_to_distribution(dist).to_external_repr(value)
            for name, value, dist in rows}


def _feasible(value: float) -> bool:
    return not math.isnan(value)


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
