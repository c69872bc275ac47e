"""Sweeps with real worker processes: SIGKILL mid-trial, takeover, resume, exact run_cap.

Each test starts ``hypergraph sweep --workers 3`` (three worker processes), SIGKILLs the worker
of a running trial, waits until a surviving worker has failed that trial (its heartbeat stopped)
and retried it, then kills every process of the sweep and runs the same command again, which
finishes the sweep. Then: exactly ``run_cap`` complete trials, every killed trial failed and
retried with the same parameters, and no other parameter set trained twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc

from hypergraph.sweeps import SweepStore
from storages import BACKENDS, storage_url
from storages import sweep_trials as _trials

RUN_CAP = 6
SWEEP = f"""
method: random
metric: {{name: val.accuracy, goal: maximize}}
run_cap: {RUN_CAP}
parameters:
  dataset: {{value: iris}}
  model: {{value: mlp}}
  traversal: {{value: random_walk}}
  model.width: {{distribution: int_uniform, min: 8, max: 64}}
  model.lr: {{distribution: log_uniform_values, min: 0.001, max: 0.1}}
  trainer.epochs: {{value: 3}}
"""


def _command(tmp: Path, url: str, name: str) -> list[str]:
    return [sys.executable, "-c", "from hypergraph.cli import main; main()", "sweep",
            "-c", str(tmp / "sweep.yaml"), "--storage", url, "--name", name,
            "--out", str(tmp / "out"), "--workers", "3", "--heartbeat", "1", "--grace", "3"]


def _main(argv: list[str]) -> int:
    from hypergraph.cli import main

    try:
        main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_workers_exact_budget_and_resume(tmp_path: Path, backend: str) -> None:
    from optuna.trial import TrialState

    (tmp_path / "sweep.yaml").write_text(SWEEP)
    name = f"kill-{uuid.uuid4().hex[:8]}"
    url = storage_url(backend, tmp_path, "sweep.db")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_command(tmp_path, url, name), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def running_with_pid() -> Any:
            if not (tmp_path / "sweep.db").exists() and backend == "sqlite":
                return None
            try:
                trials = _trials(url, name)
            except (KeyError, sqlalchemy.exc.OperationalError):
                return None  # the sweep has not created its study (or its tables) yet
            return next((t for t in trials if t.state == TrialState.RUNNING
                         and "hypergraph_worker" in t.user_attrs
                         and t.intermediate_values), None)

        try:
            victim = _wait(running_with_pid, 90, "a running trial")
        except AssertionError:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(proc.communicate()[0].decode()[-3000:]) from None
        pid = int(victim.user_attrs["hypergraph_worker"].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)

        def taken_over() -> bool:
            return any(victim.number in _retried_from(t) for t in _trials(url, name))

        _wait(taken_over, 60, "the killed trial to be failed and queued again")
    finally:  # kill the whole sweep: parent and the surviving workers
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _trials(url, name)[victim.number].state == TrialState.FAIL
    assert proc.stdout is not None
    proc.stdout.close()

    # the same command again (its parent in this process; the 3 workers are processes)
    assert _main(_command(tmp_path, url, name)[3:]) == 0

    trials = _trials(url, name)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == RUN_CAP, _describe(trials)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], \
        _describe(trials)
    assert victim.number in {t.number for t in failed}
    retries = {t.system_attrs.get("failed_trial"): t for t in trials
               if t.system_attrs.get("failed_trial") is not None}
    for t in failed:  # every killed trial (that had drawn parameters) was retried
        if not t.params:
            continue
        assert t.number in retries or any(
            t.number in r.system_attrs.get("retry_history", []) for r in retries.values())
    # a retry of a retry names the first trial in failed_trial and the others in retry_history
    victim_retry = next(t for t in trials if victim.number in _retried_from(t))
    assert victim_retry.params == victim.params
    # no parameter set trained twice, except the retries of killed trials
    keys = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(set(keys)) == len(keys)
    # each complete trial is a finished run folder
    for t in complete:
        run = tmp_path / "out" / "trials" / str(t.number)
        assert json.loads((run / "status.json").read_text())["state"] == "completed"
    # running the command again changes nothing
    assert _main(_command(tmp_path, url, name)[3:]) == 0
    assert len(_trials(url, name)) == len(trials)
    # and the storage agrees
    store = SweepStore(url)
    study = store.load(name)
    assert store.finished(study) == RUN_CAP


def _describe(trials: list[Any]) -> str:
    """The sweep's trials, one line each, for a failing assertion: enough to tell a retry
    queued twice from one never popped."""
    return "\n".join(
        f"#{t.number} {t.state.name} start={t.datetime_start} done={t.datetime_complete} "
        f"retries={sorted(_retried_from(t))} worker={t.user_attrs.get('hypergraph_worker')} "
        f"params={t.params}" for t in trials)


def _retried_from(trial: Any) -> set[int]:
    """The trials ``trial`` retries (Optuna's retry callback: ``failed_trial`` is the first,
    ``retry_history`` every one in the chain)."""
    first = trial.system_attrs.get("failed_trial")
    return ({first} if first is not None else set()) | set(
        trial.system_attrs.get("retry_history", []))

