"""Models: per-sample losses, steps, state round trips, embeddings, empty batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hypergraph.config import RunConfig
from hypergraph.exceptions import ConfigError, IncompatibleModulesError, InvalidParameterError
from hypergraph.models import (
    CNNModel,
    LogRegModel,
    MLPModel,
    ScheduledTorchModel,
    TorchWrapperModel,
    image_shape,
)
from hypergraph.run import train


def user_net(input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), 16), nn.ReLU(),
                         nn.Linear(16, num_outputs))


MAKERS: dict[str, Callable[[], ScheduledTorchModel]] = {
    "mlp": lambda: MLPModel(width=16, depth=1, dropout=0.0),
    "cnn": lambda: CNNModel(channels=4, depth=2, hidden=16, dropout=0.0),
    "logreg": lambda: LogRegModel(),
    "torch": lambda: TorchWrapperModel(user_net),
}
EMBED_WIDTH = {"mlp": 16, "cnn": 16, "logreg": 64, "torch": 16}


def data(n: int = 24, task: str = "classification") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 64, generator=g)
    y = torch.randint(0, 3, (n,), generator=g) if task == "classification" else torch.randn(
        n, generator=g)
    return x, y


def ready(name: str, task: str = "classification", seed: int = 0,
          **params: Any) -> ScheduledTorchModel:
    model = MAKERS[name]()
    if params:
        model.set_params(**params)
    model.setup((64,), 3 if task == "classification" else 1, task, device="cpu", seed=seed)
    return model


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_model_contract(name: str) -> None:
    model = ready(name)
    x, y = data()
    losses = model.losses(x, y)
    assert losses.shape == (24,) and torch.isfinite(losses).all()
    before = [p.detach().clone() for p in model.net_.parameters()]
    step_losses = model.train_step(x, y)
    assert step_losses.shape == (24,) and not step_losses.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net_.parameters(),
                                                     strict=True))
    weighted = model.train_step(x, y, torch.ones(24))
    assert weighted.shape == (24,)
    assert model.predict(x).shape == (24, 3)
    assert model.embed(x).shape == (24, EMBED_WIDTH[name])
    empty = model.predict(x[:0])
    assert empty.shape[0] == 0
    assert model.evaluate(x[:0], y[:0])["loss"] != model.evaluate(x[:0], y[:0])["loss"]  # nan
    metrics = model.evaluate(x, y, batch_size=7)
    assert 0.0 <= metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_round_trip(name: str, tmp_path: Any) -> None:
    model = ready(name, scheduler="cosine", scheduler_steps=5)
    x, y = data()
    for _ in range(3):
        model.train_step(x, y)
    model.save(tmp_path / "m.pt")
    other = ready(name, seed=99, scheduler="cosine", scheduler_steps=5)
    assert not torch.equal(other.predict(x), model.predict(x))
    other.load(tmp_path / "m.pt")
    assert torch.equal(other.predict(x), model.predict(x))
    assert other.current_lr() == model.current_lr()
    # the next step is identical too (optimiser and schedule state restored)
    model.train_step(x, y)
    other.train_step(x, y)
    assert torch.equal(other.predict(x), model.predict(x))


@pytest.mark.parametrize("name", ["mlp", "cnn", "torch"])
def test_regression(name: str) -> None:
    model = ready(name, task="regression")
    x, y = data(task="regression")
    assert model.train_step(x, y).shape == (24,)
    assert set(model.evaluate(x, y)) >= {"loss", "mse", "mae", "r2"}


def test_same_seed_same_init() -> None:
    x, _ = data()
    for name in MAKERS:
        assert torch.equal(ready(name, seed=3).predict(x), ready(name, seed=3).predict(x))


@pytest.mark.parametrize("scheduler", ["cosine", "step"])
def test_schedulers_change_lr(scheduler: str) -> None:
    model = ready("mlp", scheduler=scheduler, scheduler_steps=2, lr=0.01)
    x, y = data()
    lrs = []
    for _ in range(3):
        model.train_step(x, y)
        lrs.append(model.current_lr())
    assert min(lrs) < 0.01 - 1e-9
    assert ready("mlp").current_lr() == 1e-3


def test_logreg_refuses_regression() -> None:
    with pytest.raises(IncompatibleModulesError, match="classifier"):
        ready("logreg", task="regression")


def test_cnn_shapes() -> None:
    assert image_shape((64,)) == (1, 8, 8)
    assert image_shape((28, 28)) == (1, 28, 28)
    assert image_shape((3, 16, 12)) == (3, 16, 12)
    with pytest.raises(IncompatibleModulesError, match="square"):
        image_shape((40,))
    model = CNNModel(channels=4, hidden=8)
    model.setup((3, 16, 12), 5, "classification", device="cpu")
    assert model.predict(torch.rand(2, 3, 16, 12)).shape == (2, 5)


def test_torch_wrapper_options() -> None:
    with pytest.raises(ConfigError, match="from Python"):
        TorchWrapperModel.from_params({})
    wrapped = TorchWrapperModel(user_net((64,), 3), head="3")
    clone = wrapped.clone()
    assert isinstance(clone, TorchWrapperModel) and clone.module_factory is wrapped.module_factory
    wrapped.setup((64,), 3, "classification", device="cpu")
    x, _ = data()
    assert wrapped.embed(x).shape == (24, 16)
    with pytest.raises(InvalidParameterError, match="head"):
        TorchWrapperModel(user_net, head="nope").setup((64,), 3, "classification")
    with pytest.raises(IncompatibleModulesError, match="loss 'mse'"):
        TorchWrapperModel(user_net, loss="mse").setup((64,), 3, "classification")
    huber = TorchWrapperModel(user_net, loss="huber")
    huber.setup((64,), 1, "regression")
    assert huber.train_step(*data(task="regression")).shape == (24,)
    with pytest.raises(InvalidParameterError, match="module_factory"):
        TorchWrapperModel(42).setup((64,), 3, "classification")  # type: ignore[arg-type]


def config(model: str) -> RunConfig:
    return RunConfig.model_validate({
        "seed": 0, "device": "cpu", "dataset": "digits", "model": model,
        "dataloader": {"name": "knn", "params": {"k": 5}}, "traversal": "comprehensive",
        "trainer": {"name": "standard", "params": {"epochs": 1, "batch_size": 64}}})


@pytest.mark.parametrize("name", ["cnn", "logreg"])
def test_models_train_one_epoch_on_digits(name: str) -> None:
    result = train(config(name))
    assert result["test"]["accuracy"] > 0.3


def test_torch_wrapper_trains_through_run() -> None:
    result = train(config("mlp"), model=TorchWrapperModel(user_net, lr=3e-3))
    assert result["test"]["accuracy"] > 0.3
