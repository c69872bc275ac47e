"""ACE's predictions for the dashboard: ``GET /api/sweeps/{name}/ace``, cached per sweep.

For a sweep of ``method: ace`` the answer is :meth:`~hypergraph.ace.ACESampler.report` of the
sweep's study: the untried module combinations best predicted first, with their predicted score
and its std, and the slot-by-choice effects. Fitting ACE costs up to seconds (it grows with the
number of scored trials), while the dashboard asks every few seconds: a report is kept per sweep
and recomputed only when the sweep's count of complete trials changes (the only trials ACE
learns from). Concurrent requests for one sweep wait for one fit. A sweep of another method gets
an answer with ``ace: false`` and nothing to draw.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from hypergraph.logging import get_logger
from hypergraph.server._service import SweepService

__all__ = ["AceReports"]

logger = get_logger(__name__)

#: The most untried combinations a report keeps (a request's ``top`` is at most this).
MAX_TOP = 200


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    complete: int = -1
    report: dict[str, Any] | None = None
    fit_ms: float = 0.0


class AceReports:
    """ACE reports of the sweeps of one service, recomputed when complete trials change.

    Args:
        service: The server's sweep service (its loaded sweeps and their samplers).
    """

    def __init__(self, service: SweepService) -> None:
        self.service = service
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def complete(self, study_id: int) -> int:
        """Complete trials of the study (one query on Optuna's ``trials`` table)."""
        with self.service.store.engine.connect() as conn:
            count = conn.execute(sa.text(
                "SELECT COUNT(*) FROM trials WHERE study_id = :sid AND state = 'COMPLETE'"),
                {"sid": study_id}).scalar()
        return int(count or 0)

    def report(self, name: str, top: int = 20) -> dict[str, Any]:
        """ACE's report of the sweep ``name`` (at most ``top`` untried combinations).

        Returns:
            ``{"name", "method", "ace", "complete", "cached", "fit_ms", "untried", ...}``: the
            fields of :meth:`~hypergraph.ace.ACESampler.report` when ``ace`` is true; for a
            sweep of another method ``ace`` is false, ``untried`` empty, ``effects`` null and
            ``message`` says why.

        Raises:
            RefusedError: 404, no sweep ``name``.
        """
        from hypergraph.ace import ACESampler

        sweep = self.service.sweep(name)  # 404 when unknown
        study = sweep.study
        complete = self.complete(study._study_id)
        head = {"name": name, "method": sweep.spec.method, "complete": complete}
        sampler = study.sampler
        if not isinstance(sampler, ACESampler):
            return {**head, "ace": False, "cached": False, "fit_ms": 0.0, "untried": [],
                    "n_untried": 0, "effects": None,
                    "message": f"Sweep '{name}' uses method '{sweep.spec.method}': ACE's "
                    "predictions exist for sweeps of method: ace only."}
        with self._lock:
            entry = self._entries.setdefault(name, _Entry())
        with entry.lock:
            cached = entry.report is not None and entry.complete == complete
            if not cached:
                start = time.perf_counter()
                entry.report = sampler.report(study, top=MAX_TOP)
                entry.fit_ms = (time.perf_counter() - start) * 1000.0
                entry.complete = complete
                logger.info("ACE report of sweep '%s' on %d complete trials: %.0f ms", name,
                            complete, entry.fit_ms)
            report, fit_ms = entry.report, entry.fit_ms
        assert report is not None
        return {**head, "ace": True, "cached": cached, "fit_ms": round(fit_ms, 1), **report,
                "untried": report["untried"][:top]}
