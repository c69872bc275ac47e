"""The worker loop: claim a slot, ask Optuna for a trial, train it as a run folder, tell.

Each trial trains with :func:`hypergraph.run.train` into ``<sweep dir>/trials/<number>`` (a fresh
folder per attempt: a retry is a new trial number), with :class:`OptunaPruning` reporting the
validation metric of every epoch.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypergraph.exceptions import HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.sweeps._store import CONFIG_ATTR, StaleTrialError, SweepStore, quiet
from hypergraph.trainers import PruningCallback, TrainState

if TYPE_CHECKING:
    import optuna

    from hypergraph.sweeps._spec import SweepSpec

__all__ = ["OptunaPruning", "run_worker"]

logger = get_logger(__name__)


class OptunaPruning(PruningCallback):
    """Reports ``record["val"][metric]`` to the trial each epoch and asks its pruner.

    A report refused by the storage (the trial was failed as stale and retried elsewhere)
    stops the run with :class:`~hypergraph.sweeps.StaleTrialError`.
    """

    def __init__(self, store: SweepStore, trial: optuna.Trial, metric: str) -> None:
        self.store = store
        self.trial = trial
        self.metric = metric
        self.epochs_run = 0

    def should_prune(self, state: TrainState, record: dict[str, Any]) -> bool:
        self.epochs_run = int(record["epoch"])
        value = (record.get("val") or {}).get(self.metric)
        if value is None:
            return False
        if not self.store.report(self.trial, float(value), int(record["epoch"])):
            raise StaleTrialError(f"Trial {self.trial.number} was failed as stale and retried "
                                  "elsewhere; this worker stops training it.")
        return bool(self.trial.should_prune())


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_worker(store: SweepStore, name: str, spec: SweepSpec, out_dir: Path, *,
               seed: int | None = None, loggers: list[str] | None = None,
               poll: float = 1.0, max_trials: int | None = None) -> int:
    """Run trials of the sweep ``name`` until its budget is used up; return trials run here.

    Args:
        store: The sweep storage.
        name: Sweep (Optuna study) name.
        spec: The sweep.
        out_dir: Sweep folder (trial run folders go to ``out_dir/trials/<number>``).
        seed: Sampler seed of this worker (``None``: random). A sweep that already holds
            trials (resumed or joined) offsets it by their number, so it draws anew.
        loggers: Extra run loggers for every trial (e.g. ``["wandb"]``).
        poll: Seconds between looks at the storage while every slot is held by running trials.
        max_trials: Stop after this many trials here (``None``: until the sweep is done).
    """
    import optuna

    from hypergraph.loggers import wandb_group

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    if seed is not None:  # a resumed or joined sweep must not draw the same sequence again
        seed += 7919 * len(store.load(name).get_trials(deepcopy=False))
    study = store.load(name, spec, seed)
    budget = spec.budget()
    ran = 0
    try:
        while max_trials is None or ran < max_trials:
            store.maintain(study)
            if store.finished(study) >= budget:
                break
            claim = store.claim(study, budget)
            if claim is None:  # every slot is held by a running trial: one may still die
                time.sleep(poll)
                continue
            with quiet():
                trial = study.ask()
            if not store.attach(claim, trial):
                logger.warning("Lost the claim for trial %d (this worker stalled); giving "
                               "it back.", trial.number)
                store.release(study, trial)
                continue
            with wandb_group(name):  # every trial's W&B run, grouped by its sweep
                _run_trial(store, study, trial, spec, out_dir, loggers)
            ran += 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return ran


def _run_trial(store: SweepStore, study: optuna.Study, trial: optuna.Trial, spec: SweepSpec,
               out_dir: Path, loggers: list[str] | None) -> None:
    from optuna.trial import TrialState

    from hypergraph.run import train

    try:
        config = spec.suggest(trial)
        if loggers:
            config = config.model_copy(update={
                "loggers": list(dict.fromkeys([*config.loggers, *loggers]))})
        trial.set_user_attr(CONFIG_ATTR, json.dumps(config.model_dump(mode="json")))
    except HyperGraphError as err:
        store.fail(study, trial, str(err))
        raise
    run_dir = out_dir / "trials" / str(trial.number)
    pruning = OptunaPruning(store, trial, spec.metric)
    logger.info("Trial %d: %s", trial.number, trial.params)
    try:
        with store.heartbeat(trial):
            result = train(config, run_dir, callbacks=[pruning])
    except StaleTrialError as err:
        logger.warning("%s", err)
        return
    except KeyboardInterrupt:
        logger.warning("Stopping: trial %d given back to the sweep.", trial.number)
        store.release(study, trial)
        raise
    except HyperGraphError as err:
        logger.warning("Trial %d failed: %s", trial.number, err)
        store.fail(study, trial, str(err))
        return
    if str(result.get("stop_reason", "")).startswith("pruned"):
        store.tell(study, trial, TrialState.PRUNED)
        return
    value = result["val"].get(spec.metric)
    if value is None:
        store.fail(study, trial, f"the run reported no validation metric '{spec.metric}' "
                   f"(it has {', '.join(result['val'])})")
        return
    store.tell(study, trial, TrialState.COMPLETE, float(value))
