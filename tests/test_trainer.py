"""The standard trainer: callbacks, checkpoints, visits, pruning, NaN handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from hypergraph import registry
from hypergraph.config import RunConfig, apply_overrides
from hypergraph.exceptions import TrainingError
from hypergraph.graph import TRAIN
from hypergraph.models import MLPModel
from hypergraph.run import build, prepare, resolved_config, train
from hypergraph.spaces import Int
from hypergraph.trainers import (
    Callback,
    PruningCallback,
    StandardTrainer,
    TrainContext,
    TrainState,
)


def small(*extra: str) -> RunConfig:
    return apply_overrides(RunConfig(device="cpu"), [
        "model.width=32", "trainer.epochs=3", "trainer.batch_size=64", *extra])


class NanAfterModel(MLPModel):
    """An MLP whose weights turn NaN after ``nan_after`` steps (a diverging run)."""

    space: ClassVar = {"nan_after": Int(default=25, low=0, high=10**6, help="good steps")}

    def __init__(self, nan_after: int = 25) -> None:
        super().__init__(width=32, dropout=0.0)
        self.nan_after = nan_after

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        self.steps_ = getattr(self, "steps_", 0) + 1
        if self.steps_ > self.nan_after:
            with torch.no_grad():
                next(self.net_.parameters()).fill_(float("nan"))
        return super().train_step(x, y, weights)


@pytest.fixture
def nan_model() -> Any:
    registry.register("model", "nan_after_test")(NanAfterModel)
    yield "nan_after_test"
    registry.unregister("model", "nan_after_test")


class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_fit_start(self, ctx: TrainContext, state: TrainState) -> None:
        self.calls.append("fit_start")

    def on_epoch_start(self, ctx: TrainContext, state: TrainState) -> None:
        self.calls.append(f"epoch_start{state.epoch}")

    def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
        if not self.calls[-1].startswith("steps"):
            self.calls.append("steps")

    def on_epoch_end(self, ctx: TrainContext, state: TrainState, record: dict[str, Any]) -> None:
        self.calls.append(f"epoch_end{record['epoch']}")

    def on_fit_end(self, ctx: TrainContext, state: TrainState, result: dict[str, Any]) -> None:
        self.calls.append("fit_end")

    def on_exception(self, ctx: TrainContext, state: TrainState, error: BaseException) -> None:
        self.calls.append(f"exception:{type(error).__name__}")


def test_hooks_run_in_order_and_files_are_written(tmp_path: Path) -> None:
    rec = Recorder()
    result = train(small("trainer.epochs=2"), tmp_path, callbacks=[rec])
    assert rec.calls == ["fit_start", "epoch_start0", "steps", "epoch_end1", "epoch_start1",
                         "steps", "epoch_end2", "fit_end"]
    for name in ("best.pt", "last.pt", "visits.npy", "history.jsonl", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    assert result["epochs"] == 2 and result["stop_reason"] == "completed"


def test_visits_count_every_trained_sample(tmp_path: Path) -> None:
    result = train(small("traversal.name=uniform"), tmp_path)
    visits = np.load(tmp_path / "visits.npy")
    cfg = small("traversal.name=uniform")
    ctx = prepare(cfg, build(cfg))
    assert visits.shape == (ctx.graph.num_nodes,)
    assert visits.sum() == result["samples_seen"]
    assert visits[ctx.graph.split != TRAIN].sum() == 0  # never a validation or test node
    assert (visits > 1).any()  # uniform draws with replacement


def test_pruning_callback_stops_the_run(tmp_path: Path) -> None:
    class PruneAtTwo(PruningCallback):
        def should_prune(self, state: TrainState, record: dict[str, Any]) -> bool:
            return bool(record["epoch"] >= 2)

    result = train(small("trainer.epochs=5"), tmp_path, callbacks=[PruneAtTwo()])
    assert result["epochs"] == 2
    assert result["stop_reason"] == "pruned: after epoch 2"
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 2


def test_early_stopping_is_a_callback(tmp_path: Path) -> None:
    cfg = small("trainer.epochs=50", "trainer.patience=1", "model.lr=1e-5")
    result = train(cfg, None)
    assert result["stop_reason"].startswith("early stopping")
    assert result["epochs"] - result["best_epoch"] == 1


def test_best_checkpoint_holds_the_best_model(tmp_path: Path) -> None:
    cfg = small()
    result = train(cfg, tmp_path)
    modules = build(resolved_config(cfg, build(cfg)))
    ctx = prepare(cfg, modules)
    ctx.model.load(tmp_path / "best.pt")
    x, y = (torch.from_numpy(ctx.bundle.features()[ctx.bundle.split == 1]),
            torch.from_numpy(ctx.bundle.y[ctx.bundle.split == 1]))
    assert ctx.model.evaluate(x, y)["accuracy"] == pytest.approx(result["val"]["accuracy"])


def test_checkpoint_every_writes_mid_epoch(tmp_path: Path) -> None:
    class StopError(Exception):
        pass

    class StopAt(Callback):
        def on_step_end(self, ctx: TrainContext, state: TrainState, ids: np.ndarray) -> None:
            if state.step == 8:
                raise StopError

    with pytest.raises(StopError):
        train(small("trainer.checkpoint_every=3"), tmp_path, callbacks=[StopAt()])
    payload = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert payload["state"]["step"] == 6 and payload["state"]["epoch"] == 0
    assert payload["state"]["visits"].sum() == 6 * 64


def test_nan_loss_stops_with_exit_2_and_keeps_good_checkpoints(
        tmp_path: Path, nan_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    from hypergraph.cli import main

    # 1169 training nodes / 64 = 19 steps per epoch: epoch 1 is good, NaN from step 26.
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", nan_model, "--set", "model.nan_after=25", "--epochs", "4",
              "--set", "trainer.checkpoint_every=5", "--device", "cpu", "--out", str(tmp_path),
              "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "training loss became nan in epoch 2" in err and "last good checkpoint" in err
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "failed" and "nan" in status["error"]
    assert not (tmp_path / "metrics.json").exists()
    payload = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert payload["state"]["step"] == 25  # the mid-epoch checkpoint before the NaN
    for tensor in payload["model"]["net"].values():
        assert torch.isfinite(tensor).all()
    best = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    assert all(torch.isfinite(t).all() for t in best["net"].values())


def test_nan_in_process_raises_training_error(nan_model: str) -> None:
    cfg = small(f"model.name={nan_model}", "model.nan_after=3")
    rec = Recorder()
    with pytest.raises(TrainingError, match="epoch 1"):
        train(cfg, None, callbacks=[rec])
    assert rec.calls[-1] == "exception:TrainingError"


def test_trainer_space_matches_constructor() -> None:
    trainer = StandardTrainer()
    assert set(trainer.get_params()) == set(StandardTrainer.space)
    for name, param in StandardTrainer.space.items():
        assert param.default == getattr(trainer, name)
