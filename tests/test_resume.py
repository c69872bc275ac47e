"""Exact resume: a run killed mid-epoch and resumed ends with the uninterrupted run's metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from hypergraph.config import ModuleChoice, load_config
from hypergraph.exceptions import ConfigError
from hypergraph.run import resume, train
from hypergraph.trainers import Callback, TrainContext, TrainState
from results import without_timings

HYPERGRAPH = str(Path(sys.executable).with_name("hypergraph"))
TRAVERSALS = {
    "comprehensive": {"name": "comprehensive"},
    "random_walk": {"name": "random_walk", "params": {"walkers": 8, "teleport": 0.1}},
}




def write_config(path: Path, traversal: str, epochs: int = 5) -> Path:
    cfg = {
        "seed": 3,
        "device": "cpu",
        "dataset": {"name": "digits"},
        "dataloader": {"name": "knn", "params": {"k": 5}},
        "model": {"name": "mlp", "params": {"width": 32, "dropout": 0.2}},
        "traversal": TRAVERSALS[traversal],
        "trainer": {"name": "standard", "params": {"epochs": epochs, "batch_size": 32,
                                                   "patience": 0, "checkpoint_every": 10}},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def metrics(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = without_timings(json.loads((run / "metrics.json").read_text()))
    return data


def history(run: Path) -> list[dict[str, Any]]:
    return [without_timings(json.loads(x))
            for x in (run / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Uninterrupted runs, one per traversal."""
    root = tmp_path_factory.mktemp("reference")
    out = {}
    for name in TRAVERSALS:
        cfg = write_config(root / f"{name}.yaml", name)
        train(load_config(cfg), root / name)
        out[name] = root / name
    return out


class KilledError(Exception):
    """Stands in for a kill (an unexpected error: status.json says 'failed')."""


class KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        if state.step == self.step:
            raise KilledError


def assert_same_run(run: Path, ref: Path) -> None:
    assert metrics(run) == metrics(ref)
    assert history(run) == history(ref)  # each epoch once, same numbers
    np.testing.assert_array_equal(np.load(run / "visits.npy"), np.load(ref / "visits.npy"))
    assert json.loads((run / "status.json").read_text())["state"] == "completed"


@pytest.mark.parametrize("traversal", list(TRAVERSALS))
def test_resume_mid_epoch_in_process(traversal: str, tmp_path: Path,
                                     reference: dict[str, Path]) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", traversal))
    run = tmp_path / "run"
    # Killed at step 95 (epoch 3 of 37 steps): the last checkpoint is from step 90, mid-epoch.
    with pytest.raises(KilledError):
        train(cfg, run, callbacks=[KillAt(95)])
    payload = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert payload["state"]["step"] == 90 and payload["state"]["epoch_step"] == 90 - 2 * 37
    assert len(history(run)) == 2
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    resume(run)
    assert_same_run(run, reference[traversal])


def test_resume_at_epoch_end_and_twice(tmp_path: Path, reference: dict[str, Path]) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", "random_walk"))
    run = tmp_path / "run"
    with pytest.raises(KilledError):
        train(cfg, run, callbacks=[KillAt(38)])  # last checkpoint: the end of epoch 1
    payload = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert payload["state"]["epoch"] == 1 and payload["state"]["epoch_step"] == 0
    with pytest.raises(KilledError):
        resume(run, callbacks=[KillAt(150)])  # killed again, after more checkpoints
    resume(run)
    assert_same_run(run, reference["random_walk"])


def test_resume_a_run_started_before_the_store_kind(tmp_path: Path,
                                                    reference: dict[str, Path]) -> None:
    """A run folder written before runs chose a store (its config.yaml has no `store:`
    section) resumes: the config, read back with the default store, is the run's own."""
    from hypergraph.rundir import MANIFEST, config_fingerprint

    cfg = load_config(write_config(tmp_path / "c.yaml", "comprehensive"))
    run = tmp_path / "run"
    with pytest.raises(KilledError):
        train(cfg, run, callbacks=[KillAt(95)])
    data = yaml.safe_load((run / "config.yaml").read_text())
    assert data.pop("store") == {"name": "auto", "params": {}}
    legacy = yaml.safe_dump(data, sort_keys=False)  # what the older version wrote
    (run / "config.yaml").write_text(legacy)
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["config_sha256"] = config_fingerprint(legacy)
    (run / MANIFEST).write_text(json.dumps(manifest))
    # another store is another config: refused before anything changes
    other = load_config(run / "config.yaml").model_copy(
        update={"store": ModuleChoice(name="memory")})
    with pytest.raises(ConfigError, match="other than the run's own"):
        train(other, run, resume=True)
    resume(run)
    assert_same_run(run, reference["comprehensive"])
    assert (run / "config.yaml").read_text() == legacy  # the run's own file is kept


def test_resume_refuses_completed_and_non_runs(tmp_path: Path,
                                               reference: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="already completed"):
        resume(reference["comprehensive"])
    with pytest.raises(ConfigError, match=r"no config\.yaml"):
        resume(tmp_path)


def _wait_for_epoch(proc: subprocess.Popen[bytes], run: Path, timeout: float = 120) -> None:
    """Return once history.jsonl shows an epoch and a later last.pt has been written."""
    deadline = time.monotonic() + timeout
    hist, last = run / "history.jsonl", run / "last.pt"
    seen: int | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before it was killed")
        if seen is None and hist.is_file() and hist.read_text().count("\n") >= 1:
            seen = last.stat().st_mtime_ns if last.is_file() else 0
        elif seen is not None and last.is_file() and last.stat().st_mtime_ns != seen:
            return
        time.sleep(0.01)
    raise AssertionError("no epoch finished in time")


@pytest.mark.parametrize("traversal", list(TRAVERSALS))
def test_sigkill_and_resume_cli(traversal: str, tmp_path: Path,
                                reference: dict[str, Path]) -> None:
    cfg = write_config(tmp_path / "c.yaml", traversal)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([HYPERGRAPH, "train", "-c", str(cfg), "--out", str(run),
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_for_epoch(proc, run)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    killed_at = torch.load(run / "last.pt", map_location="cpu", weights_only=False)["state"]
    assert killed_at["step"] >= 37  # at least one epoch was kept
    done = subprocess.run([HYPERGRAPH, "train", "--resume", str(run), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert_same_run(run, reference[traversal])


def test_resume_cli_rejects_other_options(tmp_path: Path) -> None:
    from hypergraph.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(tmp_path), "--epochs", "3"])
    assert exc.value.code == 2
