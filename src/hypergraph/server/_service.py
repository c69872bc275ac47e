"""The control server's protocol on top of :class:`~hypergraph.sweeps.SweepStore`.

Every state lives in the sweep storage (Optuna's tables and the slot table of the sweeps); this
module keeps only caches of loaded studies. A remote agent holds a trial through a *lease*: the
token of the budget slot the server claimed for it (``hypergraph_sweep_slots.token``). While the
slot still names the trial under that token and the trial runs, the agent may beat, report and
finish; a trial failed as stale loses its slot, so its old agent is refused (the fence), and a
trial held under another API token is refused as someone else's.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hypergraph.exceptions import ConfigError, HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.sweeps._store import (
    CONFIG_ATTR,
    ERROR_ATTR,
    SLOTS,
    SPEC_ATTR,
    WORKER_ATTR,
    SweepStore,
    quiet,
)

if TYPE_CHECKING:
    import optuna

    from hypergraph.sweeps._handout import GroupedFinish, HandOut
    from hypergraph.sweeps._spec import SweepSpec

__all__ = ["CANCEL_ATTR", "TOKEN_ATTR", "FinishRequest", "RefusedError", "SweepService",
           "register_panel"]

logger = get_logger(__name__)

#: Study attribute set when an admin cancels a sweep: no new trials, running ones stop.
CANCEL_ATTR = "hypergraph_cancelled"
#: Trial attribute: id of the API token whose agent holds the trial.
TOKEN_ATTR = "hypergraph_token"

#: Extra dashboard panels per sweep method (``method -> f(study, spec) -> JSON``), for methods
#: that bring their own view. ACE's predictions do not use it: they have their own cached route
#: (:mod:`hypergraph.server._ace`, ``GET /api/sweeps/{name}/ace``).
_PANELS: dict[str, Callable[[Any, Any], dict[str, Any]]] = {}


def register_panel(method: str, panel: Callable[[Any, Any], dict[str, Any]]) -> None:
    """Add a dashboard panel for sweeps of ``method`` (its JSON goes to ``panels``)."""
    _PANELS[method] = panel


_BEATS = sa.Table("trial_heartbeats", sa.MetaData(),  # Optuna's, read only
                  sa.Column("trial_id", sa.Integer), sa.Column("heartbeat", sa.DateTime))
#: The study of a running trial whose slot holds the lease and whose holder is the token.
_HELD_SQL = sa.text(
    "SELECT t.study_id FROM trials t "
    "JOIN hypergraph_sweep_slots s ON s.trial_id = t.trial_id AND s.token = :lease "
    "JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = :key "
    "AND a.value_json = :token WHERE t.trial_id = :t AND t.state = 'RUNNING'")
#: Optuna's heartbeat (the row its claim wrote), by the database's clock as Optuna's own.
_BEAT_SQL = sa.text("UPDATE trial_heartbeats SET heartbeat = CURRENT_TIMESTAMP "
                    "WHERE trial_id = :t")


class RefusedError(HyperGraphError):
    """A request the protocol refuses: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Sweep:
    name: str
    spec: SweepSpec
    study: optuna.Study
    budget: int
    lock: threading.Lock
    done: bool = False
    cancelled: bool = False
    cancel_read: float = -math.inf


@dataclass
class FinishRequest:
    """The arguments of one :meth:`SweepService.finish` call (:meth:`~SweepService.finish_many`)."""

    trial_id: int
    lease: str
    token_id: int
    state: str
    value: float | None = None
    error: str | None = None
    ask: tuple[str, str | None] | None = None


class SweepService:
    """Create, hand out and finish trials of the sweeps of one storage.

    Args:
        store: The sweep storage.
        fast: Hand out and finish trials in one transaction each
            (:class:`~hypergraph.sweeps._handout.HandOutStore`); ``False`` takes the earlier
            path through Optuna's ``study.ask`` and ``study.tell`` (kept for the benchmark).
        cache_seconds: How long the list of sweeps and a sweep's cancel flag are reused
            before they are read again (a new or cancelled sweep is seen within this time).
        prefetch: Trials of a random or grid sweep drawn ahead of the claims; ``0``: none.
    """

    def __init__(self, store: SweepStore, fast: bool = True, cache_seconds: float = 1.0,
                 prefetch: int = 64) -> None:
        from hypergraph.sweeps._handout import HandOutStore

        self.store = store
        self.handout = HandOutStore(store, prefetch=prefetch) if fast else None
        self.cache_seconds = cache_seconds
        self._sweeps: dict[str, _Sweep] = {}
        self._by_study: dict[int, str] = {}
        self._lock = threading.Lock()
        self._names: tuple[float, list[str]] = (-math.inf, [])
        #: dashboard entries of settled sweeps (done, nothing running or queued: they cannot
        #: change), so that a poll reads only the sweeps still moving
        self._settled: dict[str, dict[str, Any]] = {}
        #: the pools being filled in the background (study ids), and the thread that fills
        self._filling: set[int] = set()
        self._filler: concurrent.futures.ThreadPoolExecutor | None = None

    # -- sweeps ----------------------------------------------------------------------------

    def sweep(self, name: str) -> _Sweep:
        """The loaded sweep ``name`` (404 when there is none)."""
        with self._lock:
            found = self._sweeps.get(name)
        if found is not None:
            return found
        try:
            spec = self.store.spec(name)
            study = self.store.load(name, spec)
            budget = spec.budget()
        except ConfigError as err:
            raise RefusedError(404, str(err)) from None
        found = _Sweep(name, spec, study, budget, threading.Lock())
        with self._lock:
            found = self._sweeps.setdefault(name, found)
            self._by_study[study._study_id] = name
        return found

    def create(self, raw: dict[str, Any], name: str | None) -> dict[str, Any]:
        """Create (or return the same existing) sweep from a sweep file's mapping."""
        from hypergraph.sweeps._spec import sweep_from_mapping

        try:
            spec = sweep_from_mapping(raw, "(request)")
            spec.budget()
        except HyperGraphError as err:
            raise RefusedError(422, str(err)) from None
        name = name or spec.name or "sweep"
        try:
            self.store.create(name, spec)
        except ConfigError as err:
            raise RefusedError(409, str(err)) from None
        self._names = (-math.inf, [])
        return self.describe(name)

    def cancel(self, name: str) -> dict[str, Any]:
        """Stop handing out trials of ``name``; its running trials are told to stop."""
        sweep = self.sweep(name)
        sweep.study.set_user_attr(CANCEL_ATTR, True)
        sweep.cancelled = True
        self._settled.pop(name, None)  # a done sweep cancelled: its kept entry says so too
        return self.describe(name)

    def cancelled(self, sweep: _Sweep) -> bool:
        """Whether ``sweep`` was cancelled (read again after ``cache_seconds``)."""
        now = time.monotonic()
        if not sweep.cancelled and now - sweep.cancel_read >= self.cache_seconds:
            sweep.cancelled = bool(sweep.study.user_attrs.get(CANCEL_ATTR, False))
            sweep.cancel_read = now
        return sweep.cancelled

    def live_names(self) -> list[str]:
        """:meth:`names`, reused for ``cache_seconds`` (the claim route asks on every call)."""
        read, names = self._names
        now = time.monotonic()
        if now - read >= self.cache_seconds:
            names = self.names()
            self._names = (now, names)
        return names

    def names(self) -> list[str]:
        """Sweeps of the storage created by HyperGraph, oldest first (one query on Optuna's
        tables; claims use :meth:`live_names`)."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT s.study_name FROM studies s JOIN study_user_attributes a "
                "ON a.study_id = s.study_id WHERE a.key = :key ORDER BY s.study_id"),
                {"key": SPEC_ATTR})
            return [str(r[0]) for r in rows]

    def finished(self, sweep: _Sweep) -> int:
        """Trials of ``sweep`` that used their slot for good (:meth:`SweepStore.finished`)."""
        return self.store.finished(sweep.study)

    def done(self, sweep: _Sweep) -> bool:
        """Whether the budget of ``sweep`` is used up (final once true: it is cached)."""
        if sweep.done:
            return True
        sweep.done = self.finished(sweep) >= sweep.budget
        return sweep.done

    def describe(self, name: str, top: int = 10, trials: list[Any] | None = None
                 ) -> dict[str, Any]:
        """Progress and leaderboard of the sweep ``name``."""
        from hypergraph.sweeps._results import leaderboard

        sweep = self.sweep(name)
        study = sweep.study
        if trials is None:
            trials = study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        board = leaderboard(study, trials)[:top]
        return {"name": name, "method": sweep.spec.method, "metric": sweep.spec.metric,
                "goal": sweep.spec.goal, "budget": sweep.budget,
                "finished": self.finished(sweep),
                "cancelled": bool(study.user_attrs.get(CANCEL_ATTR, False)),
                "counts": counts, "leaderboard": board}

    # -- trials ----------------------------------------------------------------------------

    def claim(self, agent: str, token_id: int, sweep_name: str | None) -> dict[str, Any]:
        """Hand a trial to ``agent``: a slot claimed by one INSERT, then Optuna's ``ask``.

        Returns ``{"status": "trial", ...}``, ``{"status": "wait"}`` (every slot held by a
        running trial; one may still die) or ``{"status": "done"}`` (no sweep has work).
        """
        names = [sweep_name] if sweep_name else self.live_names()
        waiting = False
        for name in names:
            sweep = self.sweep(name)
            if self.handout is not None:  # the budget is checked in the claim itself
                if sweep.done or self.cancelled(sweep):
                    continue
                got = self._hand_out(sweep, agent, token_id)
            else:
                if self.done(sweep) or sweep.study.user_attrs.get(CANCEL_ATTR):
                    continue
                got = self._claim_in(sweep, agent, token_id)
            if got is not None:
                return got
            if not self.done(sweep):
                waiting = True
        return {"status": "wait"} if waiting else {"status": "done"}

    def _answer(self, sweep: _Sweep, trial_id: int, number: int, lease: str,
                config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"status": "trial", "sweep": sweep.name, "trial_id": trial_id,
                "number": number, "lease": lease, "config": config, "params": params,
                "metric": sweep.spec.metric, "goal": sweep.spec.goal,
                "heartbeat_interval": self.store.heartbeat_interval,
                "grace_period": self.store.grace_period}

    def _hand_out(self, sweep: _Sweep, agent: str, token_id: int) -> dict[str, Any] | None:
        assert self.handout is not None
        # drawn ahead only where a draw does not learn from results (random, grid): a
        # model-based sampler (bayes, ace) draws each trial when it is claimed
        prefetch = None if sweep.spec.method in ("random", "grid") else 0
        got = self.handout.claim(sweep.study, sweep.spec, sweep.budget, agent,
                                 {TOKEN_ATTR: token_id}, lock=sweep.lock, prefetch=prefetch)
        if got is None:
            return None
        return self._answer(sweep, got.trial_id, got.number, got.lease, got.config,
                            got.params)

    def _claim_in(self, sweep: _Sweep, agent: str, token_id: int) -> dict[str, Any] | None:
        store, study = self.store, sweep.study
        for _ in range(3):
            claim = store.claim(study, sweep.budget, worker=agent)
            if claim is None:
                return None
            with sweep.lock, quiet():  # the sampler is shared by the server's threads
                trial = study.ask()
            if not store.attach(claim, trial, worker=agent):
                store.release(study, trial)
                continue
            trial.set_user_attr(TOKEN_ATTR, token_id)
            try:
                with sweep.lock:
                    config = sweep.spec.suggest(trial)
                trial.set_user_attr(CONFIG_ATTR, config.model_dump_json())
            except HyperGraphError as err:
                store.fail(study, trial, str(err))
                logger.warning("Trial %d of %s failed at its draw: %s", trial.number,
                               sweep.name, err)
                continue
            return self._answer(sweep, trial._trial_id, trial.number, claim.token,
                                config.model_dump(mode="json"), dict(trial.params))
        return None

    def _held(self, trial_id: int, lease: str, token_id: int, running: bool = True
              ) -> tuple[_Sweep, optuna.trial.FrozenTrial]:
        """The sweep and trial ``trial_id`` if the caller holds it under ``lease``.

        Raises:
            RefusedError: 404 unknown trial, 403 someone else's, 409 the lease is gone (the trial
                was failed as stale and retried, or released) or the trial is not running.
        """
        from optuna.trial import TrialState

        storage = self.store.storage
        with self.store.engine.connect() as conn:  # Optuna's own table of trials
            study_id = conn.execute(sa.text("SELECT study_id FROM trials WHERE trial_id = :t"),
                                    {"t": trial_id}).scalar()
        if study_id is None:
            raise RefusedError(404, f"No trial with id {trial_id}.")
        with self._lock:
            name = self._by_study.get(study_id)
        if name is None:
            name = storage.get_study_name_from_id(study_id)
        sweep = self.sweep(name)
        frozen = storage.get_trial(trial_id)
        if frozen.user_attrs.get(TOKEN_ATTR) != token_id:
            raise RefusedError(403, f"Trial {frozen.number} of '{name}' is not held by this token.")
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(SLOTS.c.slot).where(
                (SLOTS.c.trial_id == trial_id) & (SLOTS.c.token == lease))).first()
        if row is None:
            raise RefusedError(409, f"Trial {frozen.number} of '{name}' is no longer yours: it was "
                          "failed as stale (or released) and retried.")
        if running and frozen.state != TrialState.RUNNING:
            raise RefusedError(409, f"Trial {frozen.number} of '{name}' is already "
                          f"{frozen.state.name.lower()}.")
        return sweep, frozen

    def heartbeat(self, trial_id: int, lease: str, token_id: int) -> dict[str, Any]:
        """Renew the lease; ``stop`` is true when the sweep was cancelled.

        The common case is one transaction: the heartbeat row is updated only while the
        trial runs, its slot holds this lease and the trial is this token's; otherwise the
        checks of :meth:`_held` say why it is refused.
        """
        if self.handout is not None:
            with self.store.engine.begin() as conn:
                study_id = conn.execute(_HELD_SQL, {"t": trial_id, "lease": lease,
                                                    "key": TOKEN_ATTR,
                                                    "token": json.dumps(token_id)}).scalar()
                beat = study_id is not None and conn.execute(_BEAT_SQL, {"t": trial_id}
                                                             ).rowcount == 1
            if beat and study_id is not None:
                with self._lock:
                    name = self._by_study.get(int(study_id))
                if name is not None:
                    return {"stop": self.cancelled(self.sweep(name))}
        sweep, _ = self._held(trial_id, lease, token_id)
        self.store.storage.record_heartbeat(trial_id)
        return {"stop": bool(sweep.study.user_attrs.get(CANCEL_ATTR, False))}

    def report(self, trial_id: int, lease: str, token_id: int, step: int, value: float
               ) -> dict[str, Any]:
        """Record an intermediate value; answer whether the sweep's pruner stops the trial."""
        import optuna

        sweep, _ = self._held(trial_id, lease, token_id)
        trial = optuna.Trial(sweep.study, trial_id)
        if not self.store.report(trial, value, step):
            raise RefusedError(409, "The trial is no longer running; report refused.")
        with sweep.lock:
            prune = bool(trial.should_prune())
        return {"prune": prune,
                "stop": bool(sweep.study.user_attrs.get(CANCEL_ATTR, False))}

    def finish(self, trial_id: int, lease: str, token_id: int, state: str,
               value: float | None, error: str | None,
               ask: tuple[str, str | None] | None = None) -> dict[str, Any]:
        """Record a trial's result (``complete`` with a value, ``pruned`` or ``fail``).

        Repeating the same call (its answer was lost) answers ``duplicate``: the result is
        recorded once. ``ask`` (``(agent, sweep)``): once the result is recorded, also
        hand the agent its next trial; the answer's ``next`` is what :meth:`claim` answers
        (``{"status": "refused", ...}`` if the claim is refused: the result stays recorded).
        """
        answer = self._finish(trial_id, lease, token_id, state, value, error)
        if ask is not None:
            answer["next"] = self._claim_next(ask, token_id)
        return answer

    def _claim_next(self, ask: tuple[str, str | None], token_id: int) -> dict[str, Any]:
        """:meth:`claim` as the ``next`` of a finish: a refusal is answered, not raised."""
        try:
            return self.claim(ask[0], token_id, ask[1])
        except RefusedError as err:
            return {"status": "refused", "code": err.status, "detail": str(err)}

    # -- grouped finishes (group commit) -----------------------------------------------------

    def groupable(self) -> bool:
        """Whether :meth:`finish_group` writes groups in one statement (PostgreSQL with the
        one-transaction hand-out); elsewhere every request is finished alone."""
        return self.handout is not None and not self.handout.sqlite

    def finish_group(self, requests: Sequence[FinishRequest]) -> list[dict[str, Any] | None]:
        """The first step of :meth:`finish_many`: the results of ``requests`` (complete,
        pruned or failed) and their next claims from a pool, in one statement per target
        sweep.

        Returns one entry per request: ``None`` when nothing was written for it (it was
        refused, is a duplicate, is a ``complete`` result without a finite value, or the
        storage does not group:
        :meth:`finish_rest` then finishes it alone, which answers why), otherwise the
        answer of :meth:`finish`, whose ``next`` is missing when the pool had no trial left
        for it (:meth:`finish_rest` claims it). Two requests must not name the same trial.
        """
        from hypergraph.sweeps._handout import groupable_result

        answers: list[dict[str, Any] | None] = [None] * len(requests)
        if not self.groupable():
            return answers
        assert self.handout is not None
        parts: dict[int | None, list[tuple[int, GroupedFinish, _Sweep | None]]] = {}
        for n, r in enumerate(requests):
            if not groupable_result(r.state, r.value):
                continue
            target = None if r.ask is None else self._pool_target(r.ask[1])
            item = self._grouped(r, r.trial_id, r.value, take=target is not None)
            sid = None if target is None else target.study._study_id
            parts.setdefault(sid, []).append((n, item, target))
        for sid, part in parts.items():
            outcomes = self.handout.finish_group(sid, [item for _, item, _ in part])
            left = outcomes[0].pool_left if outcomes else None
            if sid is not None and left is not None and left < self._low_water(len(part)):
                self._fill_soon(part[0][2])
            for (n, _item, target), out in zip(part, outcomes, strict=True):
                if not out.recorded:
                    continue
                answer: dict[str, Any] = {"recorded": True, "duplicate": False,
                                          "number": out.number}
                if out.taken is not None and target is not None:
                    answer["next"] = self._taken(target, out.taken)
                answers[n] = answer
        for sid, part in parts.items():  # the pool ran short: refill it once, then a group
            short = []
            for n, _, target in part:
                have = answers[n]
                if target is not None and have is not None and "next" not in have:
                    short.append((n, target, have))
            if sid is None or len(short) < 2:
                continue
            (first, _, first_answer), rest = short[0], short[1:]
            ask = requests[first].ask
            assert ask is not None
            first_answer["next"] = self._claim_next(ask, requests[first].token_id)
            if first_answer["next"].get("status") != "trial":
                continue
            claims = [self._grouped(requests[n], None, None, take=True) for n, _, _ in rest]
            for (_n, target, have), out in zip(rest, self.handout.finish_group(sid, claims),
                                               strict=True):
                if out.taken is not None:
                    have["next"] = self._taken(target, out.taken)
        return answers

    def _low_water(self, group: int) -> int:
        """Pool level under which a group's claims have it filled in the background: the
        pool's size, and at least two groups like this one (a fill takes about as long as
        a few groups; the groups meanwhile take from what is left)."""
        assert self.handout is not None
        return max(self.handout.prefetch, 2 * group)

    def _fill_soon(self, sweep: _Sweep | None) -> None:
        """Fill ``sweep``'s pool in a background thread (one fill per sweep at a time), so
        that the agents' next claims take drawn trials instead of waiting for a draw."""
        if sweep is None:
            return
        sid = sweep.study._study_id
        with self._lock:
            if sid in self._filling:
                return
            self._filling.add(sid)
            if self._filler is None:
                self._filler = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="hypergraph-pool")
            filler = self._filler
        try:
            filler.submit(self._fill, sweep)
        except RuntimeError:  # shut down meanwhile (the server stops): the claims fill it
            with self._lock:
                self._filling.discard(sid)

    def _fill(self, sweep: _Sweep) -> None:
        assert self.handout is not None
        try:
            if not (sweep.done or self.cancelled(sweep)):
                self.handout.fill(sweep.study, sweep.spec, sweep.budget, lock=sweep.lock,
                                  below=self.handout.prefetch)
        except Exception:  # the claims fill it themselves when it runs dry
            logger.warning("Filling the pool of sweep %s failed", sweep.name, exc_info=True)
        finally:
            with self._lock:
                self._filling.discard(sweep.study._study_id)

    def close(self) -> None:
        """Wait for a background fill of a pool to end (the server's shutdown)."""
        with self._lock:
            filler, self._filler = self._filler, None
        if filler is not None:
            filler.shutdown(wait=True)

    @staticmethod
    def _grouped(r: FinishRequest, trial_id: int | None, value: float | None, take: bool
                 ) -> GroupedFinish:
        """``r`` as an item of :meth:`HandOutStore.finish_group` (``trial_id`` ``None``: its
        next claim alone)."""
        from hypergraph.sweeps._handout import GroupedFinish

        worker = "" if r.ask is None else r.ask[0]
        return GroupedFinish(trial_id, r.lease if trial_id is not None else "", value,
                             (TOKEN_ATTR, r.token_id), take, worker,
                             {} if r.ask is None else {WORKER_ATTR: worker,
                                                       TOKEN_ATTR: r.token_id},
                             r.state, r.error)

    def _taken(self, sweep: _Sweep, got: HandOut) -> dict[str, Any]:
        """The claim answer for a trial a group took from ``sweep``'s pool."""
        return self._answer(sweep, got.trial_id, got.number, got.lease, got.config, got.params)

    def finish_rest(self, request: FinishRequest, answer: dict[str, Any] | None
                    ) -> dict[str, Any]:
        """The second step of :meth:`finish_many` for one request: finished alone when the
        group wrote nothing for it (``answer`` is ``None``; raises :class:`RefusedError` as
        :meth:`finish`), or its next trial claimed when the group's pool had none left."""
        r = request
        if answer is None:
            return self.finish(r.trial_id, r.lease, r.token_id, r.state, r.value, r.error,
                               r.ask)
        if r.ask is not None and "next" not in answer:
            answer["next"] = self._claim_next(r.ask, r.token_id)
        return answer

    @staticmethod
    def needs_rest(request: FinishRequest, answer: dict[str, Any] | None) -> bool:
        """Whether :meth:`finish_rest` has anything left to do for ``request``."""
        return answer is None or (request.ask is not None and "next" not in answer)

    def finish_many(self, requests: Sequence[FinishRequest]
                    ) -> list[dict[str, Any] | RefusedError]:
        """:meth:`finish` for several requests at once (group commit): on PostgreSQL the
        results and the next claims taken from a pool are written in one
        statement per sweep, the rest one by one. Each request gets its own answer, or the
        :class:`RefusedError` that :meth:`finish` would raise for it (a stale result is
        refused alone, the others are recorded)."""
        out: list[dict[str, Any] | RefusedError] = []
        for request, answer in zip(requests, self.finish_group(requests), strict=True):
            try:
                out.append(self.finish_rest(request, answer))
            except RefusedError as err:
                out.append(err)
        return out

    def _pool_target(self, sweep_name: str | None) -> _Sweep | None:
        """The sweep a claim would try first, if it hands out from a pool (random or grid,
        ``prefetch`` above 0); ``None`` otherwise (the claim is then made alone)."""
        assert self.handout is not None
        try:
            for name in [sweep_name] if sweep_name else self.live_names():
                sweep = self.sweep(name)
                if sweep.done or self.cancelled(sweep):
                    continue
                if sweep.spec.method in ("random", "grid") and self.handout.prefetch > 0:
                    return sweep
                return None
        except RefusedError:
            return None
        return None

    def _finish(self, trial_id: int, lease: str, token_id: int, state: str,
                value: float | None, error: str | None) -> dict[str, Any]:
        import optuna
        from optuna.trial import TrialState

        if state == "complete" and (value is None or not math.isfinite(value)):
            raise RefusedError(422, "A complete trial needs a finite value.")
        if self.handout is not None:
            return self._finish_fast(trial_id, lease, token_id, state, value, error)
        sweep, frozen = self._held(trial_id, lease, token_id, running=False)
        if frozen.state != TrialState.RUNNING:
            if frozen.state.name.lower() == state and (
                    state != "complete" or frozen.value == value):
                return {"recorded": True, "duplicate": True, "number": frozen.number}
            raise RefusedError(409, f"Trial {frozen.number} is already "
                               f"{frozen.state.name.lower()}.")
        trial = optuna.Trial(sweep.study, trial_id)
        if state == "complete":
            if value is None or not math.isfinite(value):
                raise RefusedError(422, "A complete trial needs a finite value.")
            ok = self.store.tell(sweep.study, trial, TrialState.COMPLETE, value)
        elif state == "pruned":
            ok = self.store.tell(sweep.study, trial, TrialState.PRUNED)
        else:
            ok = self.store.fail(sweep.study, trial, error or "failed on its agent")
        if not ok:
            raise RefusedError(409, f"Trial {frozen.number} is no longer yours; result refused.")
        return {"recorded": True, "duplicate": False, "number": frozen.number}

    def _finish_fast(self, trial_id: int, lease: str, token_id: int, state: str,
                     value: float | None, error: str | None) -> dict[str, Any]:
        assert self.handout is not None
        out = self.handout.finish(trial_id, lease, state, value, error,
                                  holder=(TOKEN_ATTR, token_id))
        if out.status == "unknown":
            raise RefusedError(404, f"No trial with id {trial_id}.")
        with self._lock:
            name = self._by_study.get(out.study_id, f"#{out.study_id}")
        if out.status == "forbidden":
            raise RefusedError(403, f"Trial {out.number} of '{name}' is not held by this token.")
        if out.status == "lost":
            raise RefusedError(409, f"Trial {out.number} of '{name}' is no longer yours: it "
                               "was failed as stale (or released) and retried.")
        if out.status == "finished":
            raise RefusedError(409, f"Trial {out.number} is already {out.state}.")
        return {"recorded": True, "duplicate": out.status == "duplicate",
                "number": out.number}

    def release(self, trial_id: int, lease: str, token_id: int) -> dict[str, Any]:
        """Give a trial back unfinished (its agent is stopping): failed, retried, slot freed."""
        import optuna

        sweep, frozen = self._held(trial_id, lease, token_id)
        self.store.release(sweep.study, optuna.Trial(sweep.study, trial_id))
        return {"released": True, "number": frozen.number}

    # -- maintenance and the dashboard -------------------------------------------------------

    def maintain(self) -> None:
        """Fail stale trials of every unfinished sweep (queueing their retries).

        Only the sweeps with something to maintain are visited (:meth:`needing_maintenance`):
        a storage's finished and abandoned sweeps cost one query per pass, not one each.
        """
        pending = self.needing_maintenance()
        for name in self.names():
            if name not in pending:
                continue
            sweep = self.sweep(name)
            if self.done(sweep):
                continue
            try:
                self.store.maintain(sweep.study)
            except sa.exc.SQLAlchemyError as err:  # a blip of the database: next round
                logger.warning("Maintenance of sweep '%s' failed: %s", name, err)

    def needing_maintenance(self) -> set[str]:
        """Sweeps with something to maintain (:meth:`SweepStore.needing_maintenance`)."""
        return self.store.needing_maintenance()

    def heartbeats(self) -> dict[int, float]:
        """Seconds since each trial's last heartbeat (Optuna's ``trial_heartbeats`` table,
        measured by the database's clock, as Optuna's staleness is)."""
        query = sa.select(_BEATS.c.trial_id, _BEATS.c.heartbeat,
                          sa.func.current_timestamp(type_=sa.DateTime()))
        with self.store.engine.connect() as conn:
            return {int(tid): (now.replace(tzinfo=None) - beat.replace(tzinfo=None)
                               ).total_seconds() for tid, beat, now in conn.execute(query)}

    def dashboard(self) -> dict[str, Any]:
        """Everything the dashboard shows, in one JSON document."""
        from optuna.trial import TrialState

        beats = self.heartbeats()
        sweeps = []
        for name in self.names():
            settled = self._settled.get(name)
            if settled is not None:
                sweeps.append(settled)
                continue
            sweep = self.sweep(name)
            done = self.done(sweep)  # read before the trials: a sweep done before them
            trials = sweep.study.get_trials(deepcopy=False)
            info = self.describe(name, trials=trials)
            running, queue = [], []
            for t in trials:
                if t.state == TrialState.RUNNING:
                    beat = beats.get(t._trial_id)
                    running.append({
                        "number": t.number, "agent": t.user_attrs.get(WORKER_ATTR, ""),
                        "params": dict(t.params),
                        "last_beat_s": None if beat is None else round(max(beat, 0.0), 1),
                        "curve": sorted([int(k), v] for k, v in
                                        t.intermediate_values.items())})
                elif t.state == TrialState.WAITING:
                    queue.append({"number": t.number,  # a retry, or drawn ahead (pool)
                                  "retry_of": t.system_attrs.get("failed_trial"),
                                  "params": t.system_attrs.get("fixed_params")
                                  or dict(t.params)})
            info.update(running=running, queue=queue, errors=sum(
                1 for t in trials if ERROR_ATTR in t.user_attrs))
            panel = _PANELS.get(sweep.spec.method)
            info["panels"] = panel(sweep.study, sweep.spec) if panel else {}
            sweeps.append(info)
            if done and not running and not queue:
                self._settled[name] = info
        return {"sweeps": sweeps, "heartbeat_interval": self.store.heartbeat_interval,
                "grace_period": self.store.grace_period}
