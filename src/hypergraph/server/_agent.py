"""The agent: claims trials from a control server, trains them, reports, takes the next.

An agent holds only a token. For each trial it trains with :func:`hypergraph.run.train` into a
fresh run folder ``OUT/<sweep>/trials/<number>``, beats in a thread while it trains, reports
every epoch's validation metric (the server answers whether the sweep's pruner stops the
trial) and sends the result. A refused heartbeat or report (409: the trial was failed as stale
and retried elsewhere) ends the trial here without a result. SIGTERM or SIGINT while training
gives the trial back (the server retries it); between trials the agent just stops. Requests
that fail on the network (the server restarting) are retried for ``patience`` seconds.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from hypergraph.exceptions import ConfigError, HyperGraphError
from hypergraph.logging import get_logger
from hypergraph.sweeps._store import StaleTrialError, worker_id
from hypergraph.trainers import PruningCallback, TrainState

__all__ = ["AgentClient", "RemotePruning", "ServerError", "run_agent"]

logger = get_logger(__name__)


class ServerError(HyperGraphError):
    """The server refused a request (bad token, wrong role, unknown sweep...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _CancelledError(HyperGraphError):
    """The sweep was cancelled by an admin: stop this trial."""


class AgentClient:
    """HTTP client of the control server's agent routes.

    Args:
        server: Base URL (``http://host:8765``).
        token: An agent token.
        patience: Seconds a request is retried while the server cannot be reached or answers
            5xx (``0``: one try).
        timeout: Seconds per request.
    """

    def __init__(self, server: str, token: str, patience: float = 300.0,
                 timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.patience = patience
        self.http = httpx.Client(base_url=self.server, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                patience: float | None = None) -> Any:
        """Send a request; retry network errors and 5xx answers for ``patience`` seconds.

        Raises:
            StaleTrialError: 409, the trial is no longer this agent's.
            ServerError: any other refusal (4xx), or the server stayed unreachable.
        """
        end = time.monotonic() + (self.patience if patience is None else patience)
        wait = 0.2
        while True:
            try:
                resp = self.http.request(method, path, json=body)
            except httpx.TransportError as err:
                problem = f"cannot reach {self.server}: {err}"
            else:
                if resp.status_code < 400:
                    return resp.json()
                detail = _detail(resp)
                if resp.status_code == 409:
                    raise StaleTrialError(detail)
                if resp.status_code < 500:
                    raise ServerError(resp.status_code, f"{resp.status_code}: {detail}")
                problem = f"server error {resp.status_code}: {detail}"
            if time.monotonic() + wait > end:
                raise ServerError(503, f"Giving up on {method} {path}: {problem}")
            logger.warning("%s; retrying in %.1fs", problem, wait)
            time.sleep(wait)
            wait = min(wait * 2, 2.0)

    def claim(self, agent: str, sweep: str | None = None) -> dict[str, Any]:
        """Ask for a trial."""
        got: dict[str, Any] = self.request("POST", "/api/trials/claim",
                                           {"agent": agent, "sweep": sweep})
        return got

    def heartbeat(self, trial_id: int, lease: str) -> dict[str, Any]:
        """Renew the lease (one try: the next beat is the retry)."""
        got: dict[str, Any] = self.request("POST", f"/api/trials/{trial_id}/heartbeat",
                                           {"lease": lease}, patience=0)
        return got

    def report(self, trial_id: int, lease: str, step: int, value: float) -> dict[str, Any]:
        """Report an intermediate value; the answer's ``prune`` says whether to stop."""
        got: dict[str, Any] = self.request("POST", f"/api/trials/{trial_id}/report",
                                           {"lease": lease, "step": step, "value": value})
        return got

    def finish(self, trial_id: int, lease: str, state: str, value: float | None = None,
               error: str | None = None, ask: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Send the result; with ``ask`` (``{"agent": ..., "sweep": ...}``, as :meth:`claim`
        sends) also take the next trial: the answer's ``next`` is the claim's answer."""
        body: dict[str, Any] = {"lease": lease, "state": state, "value": value,
                                "error": None if error is None else error[:2000]}
        if ask is not None:
            body["next"] = ask
        got: dict[str, Any] = self.request("POST", f"/api/trials/{trial_id}/finish", body)
        return got

    def release(self, trial_id: int, lease: str) -> dict[str, Any]:
        """Give the trial back unfinished."""
        got: dict[str, Any] = self.request("POST", f"/api/trials/{trial_id}/release",
                                           {"lease": lease}, patience=10)
        return got


def _detail(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("detail", resp.text))
    except ValueError:
        return resp.text[:200]


class _Lease:
    """Beats for a held trial in a thread; notes a refused beat (stale) or a cancelled sweep."""

    def __init__(self, client: AgentClient, trial_id: int, lease: str, interval: float) -> None:
        self.client, self.trial_id, self.lease = client, trial_id, lease
        self.interval = interval
        self.stale = threading.Event()
        self.stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}",
                                        daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if self.client.heartbeat(self.trial_id, self.lease).get("stop"):
                    self.stop.set()
            except StaleTrialError as err:
                logger.warning("Heartbeat refused: %s", err)
                self.stale.set()
                return
            except ServerError as err:  # a blip: the next beat tries again
                logger.warning("Heartbeat of trial %d failed: %s", self.trial_id, err)


class RemotePruning(PruningCallback):
    """Reports each epoch's validation metric to the server; prunes when it says so."""

    def __init__(self, client: AgentClient, lease: _Lease, metric: str) -> None:
        self.client = client
        self.lease = lease
        self.metric = metric

    def should_prune(self, state: TrainState, record: dict[str, Any]) -> bool:
        if self.lease.stale.is_set():
            raise StaleTrialError(f"Trial id {self.lease.trial_id} was failed as stale and "
                                  "retried elsewhere; this agent stops training it.")
        if self.lease.stop.is_set():
            raise _CancelledError("The sweep was cancelled.")
        value = (record.get("val") or {}).get(self.metric)
        if value is None:
            return False
        answer = self.client.report(self.lease.trial_id, self.lease.lease,
                                    int(record["epoch"]), float(value))
        if answer.get("stop"):
            raise _CancelledError("The sweep was cancelled.")
        return bool(answer.get("prune"))


class _Signals:
    """SIGTERM/SIGINT: interrupt a training (the trial is given back); otherwise stop after."""

    def __init__(self) -> None:
        self.stopping = False
        self.training = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.stopping = True
        if self.training:
            raise KeyboardInterrupt


def check_device(device: str | None) -> None:
    """Refuse a CUDA device this machine does not have (logs its free memory otherwise)."""
    if device is None or not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine.")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} "
                          "CUDA device(s).")
    free, total = torch.cuda.mem_get_info(index)
    logger.info("%s: %.1f of %.1f GiB free", device, free / 2**30, total / 2**30)


def run_agent(client: AgentClient, out_dir: Path, *, sweep: str | None = None,
              device: str | None = None, agent: str | None = None, poll: float = 1.0,
              max_trials: int | None = None, loggers: list[str] | None = None) -> int:
    """Train trials handed out by the server until no sweep has work; return trials run here.

    Args:
        client: Client of the server (with an agent token).
        out_dir: Run folders go to ``out_dir/<sweep>/trials/<number>``.
        sweep: Only this sweep (default: any sweep with work).
        device: Train on this device (e.g. ``cuda:0``) whatever the sweep file says.
        agent: This agent's name in the sweep (default ``host:pid``).
        poll: Seconds between asks while every trial is held by another agent.
        max_trials: Stop after this many trials.
        loggers: Extra run loggers for every trial (``wandb``: grouped by sweep).
    """
    check_device(device)
    agent = agent or worker_id()
    ran = 0
    got: dict[str, Any] | None = None  # a trial handed out with the last result
    with _Signals() as signals:
        while (max_trials is None or ran < max_trials) and not signals.stopping:
            if got is None:
                got = client.claim(agent, sweep)
            if got["status"] == "done":
                logger.info("No sweep has work left; the agent stops.")
                break
            if got["status"] != "trial":
                time.sleep(poll)
                got = None
                continue
            last = max_trials is not None and ran + 1 >= max_trials
            got = _run_trial(client, got, out_dir, device, loggers, signals,
                             None if last else {"agent": agent, "sweep": sweep})
            ran += 1
        if got is not None and got.get("status") == "trial":  # stopping: give it back
            try:
                client.release(int(got["trial_id"]), str(got["lease"]))
            except (StaleTrialError, ServerError) as why:
                logger.warning("Could not give trial %s back (%s); the server fails it "
                               "after the grace period.", got.get("number"), why)
    return ran


def _run_trial(client: AgentClient, got: dict[str, Any], out_dir: Path, device: str | None,
               loggers: list[str] | None, signals: _Signals,
               ask: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Train one trial and send its result; return the next trial's claim when ``ask``
    rode along with the result (``None``: the caller claims)."""
    from hypergraph.config import config_from_mapping
    from hypergraph.loggers import wandb_group
    from hypergraph.run import train

    tid, lease, number = int(got["trial_id"]), str(got["lease"]), int(got["number"])
    name, metric = str(got["sweep"]), str(got["metric"])
    try:
        config = config_from_mapping(got["config"], f"(trial {number} of {name})")
        update: dict[str, Any] = {}
        if device is not None:
            update["device"] = device
        if loggers:
            update["loggers"] = list(dict.fromkeys([*config.loggers, *loggers]))
        config = config.model_copy(update=update)
    except HyperGraphError as err:
        return _finish(client, tid, lease, number, "fail", error=str(err), ask=ask)
    run_dir = out_dir / name / "trials" / str(number)
    logger.info("Trial %d of %s: %s", number, name, got.get("params"))
    with _Lease(client, tid, lease, float(got["heartbeat_interval"])) as held:
        pruning = RemotePruning(client, held, metric)
        signals.training = True
        try:
            if signals.stopping:
                raise KeyboardInterrupt
            with wandb_group(name):  # this trial's W&B run joins its own sweep's group
                result = train(config, run_dir, callbacks=[pruning])
        except StaleTrialError as err:
            logger.warning("%s", err)
            return None
        except (_CancelledError, KeyboardInterrupt) as err:
            signals.training = False
            logger.warning("Stopping (%s): trial %d given back to the sweep.",
                           err or "signal", number)
            try:
                client.release(tid, lease)
            except (StaleTrialError, ServerError) as why:
                logger.warning("Could not give trial %d back (%s); the server fails it "
                               "after the grace period.", number, why)
            if isinstance(err, KeyboardInterrupt):
                signals.stopping = True
            return None
        except HyperGraphError as err:
            signals.training = False
            logger.warning("Trial %d failed: %s", number, err)
            return _finish(client, tid, lease, number, "fail", error=str(err), ask=ask)
        finally:
            signals.training = False
    if signals.stopping:
        ask = None  # a signal came after the training: send the result, take no more
    if str(result.get("stop_reason", "")).startswith("pruned"):
        return _finish(client, tid, lease, number, "pruned", ask=ask)
    value = result["val"].get(metric)
    if value is None:
        return _finish(client, tid, lease, number, "fail", error=f"the run reported no "
                       f"validation metric '{metric}' (it has {', '.join(result['val'])})",
                       ask=ask)
    return _finish(client, tid, lease, number, "complete", float(value), ask=ask)


def _finish(client: AgentClient, tid: int, lease: str, number: int, state: str,
            value: float | None = None, error: str | None = None,
            ask: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Send the result; the next trial's claim if ``ask`` rode along (and was answered)."""
    try:
        answer = client.finish(tid, lease, state, value, error, ask=ask)
    except StaleTrialError as err:
        logger.warning("Result of trial %d refused: %s", number, err)
        return None
    following = answer.get("next")
    return following if isinstance(following, dict) and following.get("status") in (
        "trial", "wait", "done") else None
