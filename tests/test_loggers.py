"""Loggers: console, JSONL, CSV and wandb (offline), chosen from the config or the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from hypergraph.config import RunConfig, apply_overrides
from hypergraph.exceptions import UnknownNameError
from hypergraph.loggers import ConsoleLogger, make_loggers, read_wandb_run
from hypergraph.run import resume, train
from hypergraph.trainers import Callback, TrainContext, TrainState

HYPERGRAPH = str(Path(sys.executable).with_name("hypergraph"))



def small(loggers: list[str], *extra: str) -> RunConfig:
    cfg = apply_overrides(RunConfig(device="cpu"), [
        "model.width=32", "trainer.epochs=3", "trainer.batch_size=64", *extra])
    return cfg.model_copy(update={"loggers": loggers})


def jsonl(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]


def test_csv_matches_jsonl(tmp_path: Path) -> None:
    train(small(["csv"]), tmp_path)
    with open(tmp_path / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    hist = jsonl(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row, rec in zip(rows, hist, strict=True):
        assert float(row["train_loss"]) == pytest.approx(rec["train_loss"])
        assert float(row["val_accuracy"]) == pytest.approx(rec["val"]["accuracy"])
        assert row["best"] in ("True", "False")


def test_csv_and_jsonl_have_each_epoch_once_after_resume(tmp_path: Path) -> None:
    class KilledError(Exception):
        pass

    class KillAt(Callback):
        def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
            if state.step == 45:  # epoch 3 (19 steps each); last checkpoint: end of epoch 2
                raise KilledError

    with pytest.raises(KilledError):
        train(small(["csv"]), tmp_path, callbacks=[KillAt()])
    assert len(jsonl(tmp_path)) == 2
    resume(tmp_path)
    assert [r["epoch"] for r in jsonl(tmp_path)] == [1, 2, 3]
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2", "3"]


def test_console_logger_prints_one_line_per_epoch() -> None:
    buf = io.StringIO()
    logger = ConsoleLogger(Console(file=buf, width=200, color_system=None))
    result = train(small([]), None, callbacks=[logger])
    lines = buf.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["1/3", "2/3", "3/3"]
    assert all("train_loss" in line and "val loss" in line for line in lines[:3])
    assert lines[3].startswith("test loss") and f"{result['test']['accuracy']:.4f}" in lines[3]


def test_jsonl_is_always_on_with_a_folder(tmp_path: Path) -> None:
    names = [type(cb).__name__ for cb in make_loggers(["console"], tmp_path)]
    assert names == ["HistoryWriter", "ConsoleLogger"]
    assert make_loggers(["csv"], None) == []


def test_unknown_logger_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Valid choices: console, csv, jsonl, wandb"):
        train(small(["tensorbored"]), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written for bad input


def test_wandb_offline_run_holds_metrics_config_and_model(tmp_path: Path) -> None:
    run = tmp_path / "run"
    wandb_home = tmp_path / "wandb-home"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_CONFIG_DIR": str(wandb_home), "WANDB_CACHE_DIR": str(wandb_home),
           "WANDB_DATA_DIR": str(wandb_home), "WANDB_ARTIFACT_DIR": str(wandb_home),
           "OMP_NUM_THREADS": "1", "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run(
        [HYPERGRAPH, "train", "--epochs", "2", "--set", "model.width=32", "--device", "cpu",
         "--logger", "wandb", "--out", str(run), "--no-progress"],
        capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))  # inside the run folder
    logged = read_wandb_run(run / "wandb")
    hist = jsonl(run)
    rows = [r for r in logged["history"] if "epoch" in r]
    assert [r["epoch"] for r in rows] == [1, 2]
    for row, rec in zip(rows, hist, strict=True):
        assert row["val/accuracy"] == pytest.approx(rec["val"]["accuracy"])
        assert row["train_loss"] == pytest.approx(rec["train_loss"])
    assert logged["config"]["trainer"]["params"]["epochs"] == 2
    assert logged["config"]["dataset"]["name"] == "digits"
    metrics = json.loads((run / "metrics.json").read_text())
    assert logged["summary"]["test/accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert [t for _, t in logged["artifacts"]] == ["model"]
    model_files = list((run / "wandb").glob("offline-run-*/files/model.pt"))
    assert model_files and torch.load(model_files[0], weights_only=True)["net"]
    assert "wandb" in (run / "config.yaml").read_text()  # the logger is part of the config
