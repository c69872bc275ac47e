"""The sweep's storage: Optuna's RDB storage plus an exact budget, leases and a fence.

Optuna keeps the trials (SQLite on one machine, PostgreSQL for many: same code). This module
adds what Optuna does not guarantee when workers race or die:

* **Exact budget.** A sweep of ``run_cap`` trials has ``run_cap`` *slots*, rows of the table
  ``hypergraph_sweep_slots`` keyed by ``(study_id, slot)``. A worker claims a slot with one
  ``INSERT``: the primary key lets exactly one worker win each slot, in a real transaction of
  the database (no check-then-set). Only a trial holding a slot may train, so no more than
  ``run_cap`` trials can ever finish. A finished trial (complete, pruned, or failed by its own
  error) keeps its slot for good; a trial whose worker died gives its slot back once its retry
  is queued.
* **Leases.** A trial's lease is Optuna's heartbeat (``heartbeat_interval``/``grace_period``).
  :meth:`SweepStore.maintain` (run by every worker at start and between trials) fails stale
  trials with :func:`optuna.storages.fail_stale_trials`, whose callback queues a retry with the
  same parameters (Optuna's retry callback) and then frees the slot. It also repairs what a
  worker killed at an unlucky moment leaves: a claimed slot never given a trial, a running
  trial that never beat, a failed trial whose slot was not freed.
* **Pool.** A control server may draw trials ahead (``WAITING``, each with a slot reserved
  under :data:`POOL_TOKEN`) so that claims do not queue behind the sweep's lock. A worker of
  this class that finds no free slot takes a reservation back (its trial becomes a plain
  queued trial, which ``ask`` pops first), and a trial its ``ask`` popped from the pool moves
  into the reserved slot: the budget stays exact either way.
* **Fence.** A trial failed as stale is finished in the storage; a late ``report`` or
  ``tell`` from its old worker is refused (:class:`StaleTrialError`, logged), never applied.

A control server can call the same methods on behalf of remote agents: this class holds the
whole protocol, the worker loop (:mod:`hypergraph.sweeps._worker`) only drives it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from hypergraph.exceptions import ConfigError, HyperGraphError
from hypergraph.logging import get_logger

if TYPE_CHECKING:
    import optuna

    from hypergraph.sweeps._spec import SweepSpec

__all__ = ["Claim", "StaleTrialError", "SweepStore", "worker_id"]

logger = get_logger(__name__)

_META = sa.MetaData()
SLOTS = sa.Table(
    "hypergraph_sweep_slots", _META,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer, nullable=True, unique=True),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("worker", sa.String(255), nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
)
#: Study attribute holding the sweep file (JSON), so any machine can join or show a sweep.
SPEC_ATTR = "hypergraph_sweep"
#: Trial attribute set before a trial is told failed by its own error: its slot is final.
ERROR_ATTR = "hypergraph_error"
#: Trial attribute naming the worker (``host:pid``) running the trial.
WORKER_ATTR = "hypergraph_worker"
#: Trial attribute holding the trial's run config (JSON), for ``sweep show`` and best.yaml.
CONFIG_ATTR = "hypergraph_config"
#: Token of a slot reserved for a trial drawn ahead and not handed out yet (a ``WAITING``
#: trial of the hand-out pool, :mod:`hypergraph.sweeps._handout`). Never a lease: leases are
#: 32 hex digits.
POOL_TOKEN = "pool"
#: A sweep's slots by token: the hand-out pool's trials in order (``token = 'pool'``) are found
#: without reading every slot of the sweep, which grows with its trials.
SLOTS_BY_TOKEN = sa.Index("ix_hypergraph_sweep_slots_token", SLOTS.c.study_id, SLOTS.c.token,
                          SLOTS.c.trial_id)
#: Token prefix of the slot of a failed trial whose retry one process is queueing (the mark
#: that makes it the only one; the slot is freed once the retry is queued).
_RETRYING = "retrying:"


class StaleTrialError(HyperGraphError):
    """The trial was failed as stale (its lease expired) and retried elsewhere: a late report
    or result from its old worker is refused."""


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Optuna's notes that heartbeats and retries are experimental (we rely on them
    knowingly) and that heartbeats are meant for ``Study.optimize`` (we beat ourselves)."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        yield


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Claim:
    """A slot of the budget held by this worker (``trial_id`` once a trial is attached)."""

    study_id: int
    slot: int
    token: str
    trial_id: int | None = None


class SweepStore:
    """One sweep storage (any SQLAlchemy URL) with exact budgets, leases and a fence.

    Args:
        url: SQLAlchemy URL (``sqlite:///sweep.db``, ``postgresql+psycopg://...``).
        heartbeat_interval: Seconds between a running trial's heartbeats.
        grace_period: Seconds without a heartbeat after which a trial is failed and retried.
    """

    def __init__(self, url: str, heartbeat_interval: int = 5, grace_period: int = 20) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if heartbeat_interval < 1 or grace_period <= heartbeat_interval:
            raise ConfigError(f"Heartbeat interval ({heartbeat_interval}s) must be >= 1 and "
                              f"shorter than the grace period ({grace_period}s).")
        self.url = _normalise_url(url)
        if self.url.startswith("sqlite:///") and ":memory:" not in self.url:
            from pathlib import Path

            try:  # the sweep folder of a new sweep
                Path(self.url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(f"Cannot create the folder of '{self.url}': {err}") from None
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        engine_kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            engine_kwargs = {"connect_args": {"timeout": 60}}
        else:
            engine_kwargs = {"pool_pre_ping": True}
        retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
            optuna.storages.RetryFailedTrialCallback
        with quiet():
            self._retry = retry_cls(max_retry=None)
        kwargs: dict[str, Any] = {"heartbeat_interval": heartbeat_interval,
                                  "grace_period": grace_period}
        stale_arg = ("heartbeat_stale_trial_callback"
                     if hasattr(optuna.storages.RDBStorage, "get_heartbeat_stale_trial_callback")
                     else "failed_trial_callback")
        kwargs[stale_arg] = self._on_stale
        try:
            self.storage = _open_rdb(self.url, engine_kwargs, kwargs)
            if self.url.startswith("sqlite"):
                serialise_sqlite(self.storage.engine)
            self.engine = sa.create_engine(self.url, **engine_kwargs)
            _create_tables(self.engine)
        except (OperationalError, sa.exc.ArgumentError, ImportError) as err:
            raise ConfigError(f"Cannot open the sweep storage '{_redact(self.url)}': "
                              f"{str(err).splitlines()[0]}") from None

    # -- studies ---------------------------------------------------------------------------

    def create(self, name: str, spec: SweepSpec) -> optuna.Study:
        """Create the sweep ``name``, or return it when the same sweep exists (resume).

        Raises:
            ConfigError: a study of that name exists with another sweep file.
        """
        import optuna

        study = optuna.create_study(storage=self.storage, study_name=name,
                                    direction=spec.direction,  # type: ignore[arg-type]
                                    load_if_exists=True)
        stored = study.user_attrs.get(SPEC_ATTR)
        if stored is None:
            study.set_user_attr(SPEC_ATTR, spec.to_json())
        elif json.loads(stored) != json.loads(spec.to_json()):
            raise ConfigError(f"A sweep named '{name}' already exists in this storage with a "
                              "different sweep file; give another --name (or the same file "
                              "to continue it).")
        return study

    def spec(self, name: str) -> SweepSpec:
        """The sweep file stored with the sweep ``name``."""
        from hypergraph.sweeps._spec import sweep_from_mapping

        study = self.load(name)
        raw = study.user_attrs.get(SPEC_ATTR)
        if raw is None:
            raise ConfigError(f"Study '{name}' was not created by `hypergraph sweep`.")
        spec = sweep_from_mapping(json.loads(raw), f"'{name}'")
        spec.name = name
        return spec

    def load(self, name: str, spec: SweepSpec | None = None,
             seed: int | None = None) -> optuna.Study:
        """Open the sweep ``name`` (with the sampler and pruner of ``spec`` when given)."""
        import optuna

        kwargs: dict[str, Any] = {}
        if spec is not None:
            kwargs = {"sampler": spec.sampler(seed), "pruner": spec.pruner()}
        try:
            return optuna.load_study(study_name=name, storage=self.storage, **kwargs)
        except KeyError:
            names = [s.study_name for s in optuna.get_all_study_summaries(self.storage)]
            raise ConfigError(f"No sweep named '{name}' in '{_redact(self.url)}'. Sweeps there: "
                              f"{', '.join(names) or '(none)'}.") from None

    def names(self) -> list[str]:
        """Names of the sweeps in this storage."""
        import optuna

        return [s.study_name for s in optuna.get_all_study_summaries(self.storage)]

    # -- budget ----------------------------------------------------------------------------

    def slots(self, study: optuna.Study) -> list[dict[str, Any]]:
        """The claimed slots of ``study`` (slot, trial_id, worker, claimed_at)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(SLOTS).where(SLOTS.c.study_id == study._study_id)
                                .order_by(SLOTS.c.slot))
            return [dict(r._mapping) for r in rows]

    def finished(self, study: optuna.Study) -> int:
        """Trials that used up their slot for good (complete, pruned, or failed by an error),
        in one query (a slot whose trial is one of them)."""
        with self.engine.connect() as conn:
            count = conn.execute(sa.text(
                "SELECT COUNT(*) FROM hypergraph_sweep_slots s JOIN trials t "
                "ON t.trial_id = s.trial_id WHERE s.study_id = :sid AND "
                "(t.state IN ('COMPLETE', 'PRUNED') OR (t.state = 'FAIL' AND EXISTS ("
                "SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id "
                "AND a.key = :err)))"), {"sid": study._study_id, "err": ERROR_ATTR}).scalar()
        return int(count or 0)

    def claim(self, study: optuna.Study, budget: int, worker: str | None = None) -> Claim | None:
        """Claim a free slot of the ``budget`` (one INSERT per try), or ``None`` if all are held.

        Two workers inserting the same ``(study_id, slot)`` cannot both commit: the loser gets
        an integrity error and tries the next free slot. ``worker`` names the holder (default
        this process; a control server passes its remote agent's name).
        """
        sid = study._study_id
        for _ in range(budget + 1):
            taken = {s["slot"] for s in self.slots(study)}
            free = [s for s in range(budget) if s not in taken]
            if not free:
                return self._unpool(study, worker)
            token = uuid.uuid4().hex
            try:
                with self.engine.begin() as conn:
                    conn.execute(SLOTS.insert().values(
                        study_id=sid, slot=free[0], trial_id=None, token=token,
                        worker=(worker or worker_id())[:255], claimed_at=_now()))
            except IntegrityError:
                continue  # another worker won this slot: look again
            return Claim(sid, free[0], token)
        return None

    def _unpool(self, study: optuna.Study, worker: str | None) -> Claim | None:
        """Every slot is held: take back the reservation of a pooled trial not handed out yet
        (the trial stays queued, without a slot; ``ask`` pops queued trials first)."""
        from optuna.storages._rdb.models import TrialModel
        from optuna.trial import TrialState

        trials = TrialModel.__table__
        sid = study._study_id
        for _ in range(8):
            with self.engine.begin() as conn:
                row = conn.execute(
                    sa.select(SLOTS.c.slot).select_from(
                        SLOTS.join(trials, trials.c.trial_id == SLOTS.c.trial_id))
                    .where((SLOTS.c.study_id == sid) & (SLOTS.c.token == POOL_TOKEN)
                           & (trials.c.state == TrialState.WAITING))
                    .order_by(SLOTS.c.trial_id).limit(1)).first()
                if row is None:
                    return None
                token = uuid.uuid4().hex
                done = conn.execute(SLOTS.update().where(
                    (SLOTS.c.study_id == sid) & (SLOTS.c.slot == row[0])
                    & (SLOTS.c.token == POOL_TOKEN)).values(
                    trial_id=None, token=token, worker=(worker or worker_id())[:255],
                    claimed_at=_now())).rowcount
            if done == 1:
                return Claim(sid, int(row[0]), token)
        return None

    def attach(self, claim: Claim, trial: optuna.Trial, worker: str | None = None) -> bool:
        """Give the claimed slot to ``trial`` (starting its heartbeat first).

        A trial of the hand-out pool (its slot reserved under :data:`POOL_TOKEN`) takes its
        reserved slot instead, and the claimed one is given back.

        Returns ``False`` when the claim was lost meanwhile (this worker stalled past two grace
        periods and the slot was freed): the trial must not train.
        """
        self.storage.record_heartbeat(trial._trial_id)
        with self.engine.begin() as conn:
            reserved = conn.execute(sa.select(SLOTS.c.slot).where(
                (SLOTS.c.trial_id == trial._trial_id) & (SLOTS.c.token == POOL_TOKEN))
            ).scalar()
            if reserved is not None:  # popped from the pool: its reservation becomes ours
                moved = conn.execute(SLOTS.update().where(
                    (SLOTS.c.study_id == claim.study_id) & (SLOTS.c.slot == reserved)
                    & (SLOTS.c.token == POOL_TOKEN)).values(
                    token=claim.token, worker=(worker or worker_id())[:255],
                    claimed_at=_now())).rowcount
                if moved == 1:
                    conn.execute(SLOTS.delete().where(
                        (SLOTS.c.study_id == claim.study_id) & (SLOTS.c.slot == claim.slot)
                        & (SLOTS.c.token == claim.token)))
                    claim.slot = int(reserved)
                    claim.trial_id = trial._trial_id
                    done = 1
                else:
                    done = 0
            else:
                done = conn.execute(SLOTS.update().where(
                    (SLOTS.c.study_id == claim.study_id) & (SLOTS.c.slot == claim.slot)
                    & (SLOTS.c.token == claim.token) & SLOTS.c.trial_id.is_(None))
                    .values(trial_id=trial._trial_id)).rowcount
        if done != 1:
            return False
        claim.trial_id = trial._trial_id
        trial.set_user_attr(WORKER_ATTR, worker or worker_id())
        return True

    def unclaim(self, claim: Claim) -> None:
        """Give back a slot that got no trial."""
        with self.engine.begin() as conn:
            conn.execute(SLOTS.delete().where(
                (SLOTS.c.study_id == claim.study_id) & (SLOTS.c.slot == claim.slot)
                & (SLOTS.c.token == claim.token)))

    @contextmanager
    def heartbeat(self, trial: optuna.Trial) -> Iterator[None]:
        """Beat for ``trial`` every ``heartbeat_interval`` seconds while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                try:
                    self.storage.record_heartbeat(trial._trial_id)
                except sa.exc.SQLAlchemyError as err:  # keep beating: a blip is not a death
                    logger.warning("Heartbeat of trial %d failed: %s", trial.number, err)

        thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- the fence -------------------------------------------------------------------------

    def report(self, trial: optuna.Trial, value: float, step: int) -> bool:
        """Report an intermediate value; ``False`` (logged) when the trial is no longer ours."""
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            trial.report(value, step)
        except (UpdateFinishedTrialError, RuntimeError) as err:
            logger.warning("Refused a late report of trial %d (step %d): %s", trial.number,
                           step, err)
            return False
        return True

    def tell(self, study: optuna.Study, trial: optuna.Trial, state: Any,
             value: float | None = None) -> bool:
        """Finish ``trial``; ``False`` (logged) when it was already failed as stale."""
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            study.tell(trial, value if value is not None else None, state=state,
                       skip_if_finished=False)
        except (UpdateFinishedTrialError, ValueError, RuntimeError) as err:
            logger.warning("Refused the late result of trial %d: %s", trial.number, err)
            return False
        return True

    def fail(self, study: optuna.Study, trial: optuna.Trial, error: str) -> bool:
        """Tell ``trial`` failed by its own error (its slot stays used)."""
        from optuna.trial import TrialState

        try:
            trial.set_user_attr(ERROR_ATTR, error[:2000])
        except (ValueError, RuntimeError) as err:
            logger.warning("Trial %d is no longer ours: %s", trial.number, err)
            return False
        return self.tell(study, trial, TrialState.FAIL)

    def release(self, study: optuna.Study, trial: optuna.Trial) -> None:
        """Give a trial back unfinished (the worker is stopping): failed, retried, slot freed."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            changed = self.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            changed = False
        if changed:
            self._on_stale(study, self.storage.get_trial(trial._trial_id))

    # -- leases ----------------------------------------------------------------------------

    def _on_stale(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """A trial was failed for a dead worker: queue its retry, then free its slot.

        Exactly one process queues the retry: the one whose UPDATE marks the trial's slot as
        being retried. Another (maintenance that took over from this process, stalled past the
        grace period between failing the trial and this call) has marked it first, or has
        already queued the retry and freed the slot: either way there is nothing to do here.
        """
        mark = self._mark_retrying(trial._trial_id)
        if mark is None:
            return
        self._requeue(study, trial, mark)

    def _mark_retrying(self, trial_id: int, stale_mark_before: dt.datetime | None = None
                       ) -> str | None:
        """Take the right to queue the retry of the failed ``trial_id``: its slot's token
        becomes a new ``retrying:`` mark (one UPDATE: one process wins). Returns the mark,
        ``""`` when the trial holds no slot (never attached: whoever failed it retries it), or
        ``None`` when another process holds the mark (or freed the slot after queueing the
        retry). With ``stale_mark_before``, a mark set before then is taken over (its process
        died between the mark and the retry)."""
        mark = f"{_RETRYING}{uuid.uuid4().hex}"
        taken = ~SLOTS.c.token.startswith(_RETRYING, autoescape=True)
        if stale_mark_before is not None:
            taken = taken | (SLOTS.c.claimed_at < stale_mark_before)
        with self.engine.begin() as conn:
            if conn.execute(SLOTS.update().where((SLOTS.c.trial_id == trial_id) & taken)
                            .values(token=mark, claimed_at=_now())).rowcount:
                return mark
            held = conn.execute(sa.select(SLOTS.c.slot).where(SLOTS.c.trial_id == trial_id)
                                ).first()
        return None if held is not None else ""

    def _requeue(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, mark: str
                 ) -> None:
        """Queue the retry of the failed ``trial`` (unless one is queued already), THEN free
        its slot (``mark``: the slot's token, see :meth:`_mark_retrying`): the freed slot is
        there for the retry, never for a new trial drawn meanwhile."""
        if ((trial.params or "fixed_params" in trial.system_attrs)  # a popped retry, too
                and not self._retried(study, trial)):
            with quiet():
                self._retry(study, trial)
            logger.warning("Trial %d lost its worker (%s); queued again with the same "
                           "parameters.", trial.number, trial.user_attrs.get(WORKER_ATTR, "?"))
        if mark:
            with self.engine.begin() as conn:
                conn.execute(SLOTS.delete().where((SLOTS.c.trial_id == trial._trial_id)
                                                  & (SLOTS.c.token == mark)))

    def maintain(self, study: optuna.Study) -> None:
        """Fail stale trials (queueing their retries) and repair half-done claims.

        Reads only the trials it may act on (running ones started a grace period ago, failed
        ones still holding a slot), never the whole study: a maintenance pass costs the same
        at trial 10 and at trial 10,000.
        """
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.storages import fail_stale_trials
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        with quiet():
            fail_stale_trials(study)
        grace = dt.timedelta(seconds=self.grace_period)
        now = _now()
        before = dt.datetime.now() - grace  # Optuna stores its trials' times in local time
        sid = study._study_id
        trials = models.TrialModel.__table__
        slots = self.slots(study)
        held = {s["trial_id"]: s for s in slots if s["trial_id"] is not None}
        with self.engine.connect() as conn:
            # failed a grace period ago, not by their own error, and still holding a slot
            failed = [int(r[0]) for r in conn.execute(
                _orphaned_failures(sa.select(trials.c.trial_id))
                .where(trials.c.study_id == sid, trials.c.datetime_complete < before))]
            # running and started a grace period ago
            running = [int(r[0]) for r in conn.execute(
                sa.select(trials.c.trial_id).where(
                    trials.c.study_id == sid, trials.c.state == TrialState.RUNNING,
                    trials.c.datetime_start < before))]
        for tid in failed:
            # failed as stale a grace period ago by a process that died (or stalled) before
            # it queued the retry and freed the slot (the callback takes milliseconds)
            mark = self._mark_retrying(tid, stale_mark_before=now - grace)
            if mark:
                self._requeue(study, self.storage.get_trial(tid), mark)
        pooled = {tid for tid, s in held.items() if s["token"] == POOL_TOKEN}
        for tid in running:  # never attached, older than the grace period
            # (a pooled trial popped by a worker that died before it took the reservation)
            if tid in held and tid not in pooled:
                continue
            try:
                if self.storage.set_trial_state_values(tid, TrialState.FAIL):
                    self._on_stale(study, self.storage.get_trial(tid))
            except UpdateFinishedTrialError:  # another worker failed it first
                logger.debug("Trial %d was already finished by another worker.", tid)
        # claims whose worker died before attaching a trial, freed only now and only after two
        # grace periods: the trial that worker may have asked for (above: failed after one)
        # must have its retry queued before its slot is free, or a new trial takes the slot
        # and the retry is left waiting once the budget is used up
        with self.engine.begin() as conn:
            conn.execute(SLOTS.delete().where(
                (SLOTS.c.study_id == study._study_id) & SLOTS.c.trial_id.is_(None)
                & (SLOTS.c.claimed_at < now - 2 * grace)))

    def needing_maintenance(self) -> set[str]:
        """Names of the studies :meth:`maintain` may act on, in one query over the storage: a
        running trial (it may have gone stale), a claim without a trial, or a trial failed
        other than by its own error that still holds its slot (its retry may be missing)."""
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        trials, studies = models.TrialModel.__table__, models.StudyModel.__table__
        pending = sa.union(
            sa.select(trials.c.study_id).where(trials.c.state == TrialState.RUNNING),
            sa.select(SLOTS.c.study_id).where(SLOTS.c.trial_id.is_(None)),
            _orphaned_failures(sa.select(trials.c.study_id)))
        with self.engine.connect() as conn:
            return {str(r[0]) for r in conn.execute(
                sa.select(studies.c.study_name).where(studies.c.study_id.in_(pending)))}

    def _retried(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether a retry of ``trial`` is already queued or run (Optuna's ``retry_history``
        system attribute of any trial of the study names its number)."""
        from optuna.storages._rdb import models

        trials = models.TrialModel.__table__
        system = models.TrialSystemAttributeModel.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(system.c.value_json).join(trials, trials.c.trial_id
                                                    == system.c.trial_id)
                .where(trials.c.study_id == study._study_id,
                       system.c.key == "retry_history"))
            return any(trial.number in json.loads(r[0]) for r in rows)


def _orphaned_failures(query: sa.Select[Any]) -> sa.Select[Any]:
    """``query`` (over Optuna's ``trials``) narrowed to failed trials that still hold a slot
    and were not failed by their own error: failed as stale, their retry possibly missing."""
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    trials, user = models.TrialModel.__table__, models.TrialUserAttributeModel.__table__
    return (query.join(SLOTS, SLOTS.c.trial_id == trials.c.trial_id)
            .where(trials.c.state == TrialState.FAIL,
                   ~sa.exists().where(user.c.trial_id == trials.c.trial_id,
                                      user.c.key == ERROR_ATTR)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver installed with HyperGraph)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _sqlite_manual_begin(dbapi_conn: Any, record: Any) -> None:
    dbapi_conn.isolation_level = None  # pysqlite's deferred BEGIN off: the listener begins


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def serialise_sqlite(engine: sa.Engine) -> None:
    """Make every transaction of ``engine`` (an SQLite file) take the write lock when it
    begins (``BEGIN IMMEDIATE``).

    Optuna's RDB storage checks a trial's state, then writes it, in one session; on SQLite,
    pysqlite opens the transaction only at the write, so two processes could both see a trial
    RUNNING and both fail it (two retries queued), or fail a trial whose result was told
    between the read and the write. With the lock taken at the start, the check and the write
    are one step, as ``SELECT ... FOR UPDATE`` makes them on PostgreSQL.
    """
    sa.event.listen(engine, "connect", _sqlite_manual_begin)
    sa.event.listen(engine, "begin", _sqlite_begin_immediate)
    engine.dispose()  # connections pooled before the listeners


def _first_creation_race(err: Exception) -> bool:
    """Whether ``err`` is what a process meets when another creates the same tables at the
    same moment (a duplicate ``alembic_version`` row, or a table made meanwhile)."""
    text = str(err).lower()
    return isinstance(err, IntegrityError) or any(
        key in text for key in ("already exists", "locked", "unique", "duplicate key",
                                "integrityerror"))


def _open_rdb(url: str, engine_kwargs: dict[str, Any], kwargs: dict[str, Any],
              tries: int = 5) -> Any:
    """Optuna's RDB storage, tried again when another process creates the same storage at
    the same moment (both insert Optuna's schema version: one gets an integrity error)."""
    import random
    import time

    import optuna

    for attempt in range(tries):
        try:
            with quiet():
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except (IntegrityError, OperationalError, optuna.exceptions.StorageInternalError) as err:
            if attempt == tries - 1 or not _first_creation_race(err):
                raise
            logger.debug("Storage created by another process meanwhile (%s); opening again.",
                         str(err).splitlines()[0])
            time.sleep(0.05 + random.random() * 0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _create_tables(engine: sa.Engine, tries: int = 5) -> None:
    """Create the slot table (tried again on the same race as :func:`_open_rdb`)."""
    import random
    import time

    for attempt in range(tries):
        try:
            _META.create_all(engine)
            # a storage made before an index was added gets it too
            with engine.begin() as conn:
                for index in SLOTS.indexes:
                    index.create(conn, checkfirst=True)
            return
        except sa.exc.DBAPIError as err:
            if attempt == tries - 1 or not _first_creation_race(err):
                raise
            time.sleep(0.05 + random.random() * 0.2 * (attempt + 1))
