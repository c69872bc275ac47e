"""Deliberately broken modules: the kit must catch each with a message naming the rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from hypergraph import registry
from hypergraph.data import ArrayStore, DataStore, FileStore, LazyFileStore, MemoryStore
from hypergraph.dataloaders import KNNDataloader
from hypergraph.datasets import DatasetBundle
from hypergraph.graph import HyperGraph
from hypergraph.managers import GraphManager
from hypergraph.models import MLPModel
from hypergraph.spaces import Int
from hypergraph.testing import ContractError, check_module, run_check
from hypergraph.traversals import Selection, UniformTraversal


class LeakyTraversal(UniformTraversal):
    """Uniform sampling that slips one test node into every batch."""

    def next_batch(self) -> Selection:
        ids = super().next_batch().ids.copy()
        test = self.graph_.ids_in_split("test")
        if test.size:
            ids[0] = test[0]
        return Selection(ids)


class MeanLossModel(MLPModel):
    """Claims per_sample_loss but returns the batch mean for every sample."""

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        per = super().losses(x, y)
        return per.mean().expand(per.shape[0]).clone()

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        per = super().train_step(x, y, weights)
        return per.mean().expand(per.shape[0]).clone()


class LabelLeakDataloader(KNNDataloader):
    """kNN plus edges between rows sharing a label, using every label (test ones too)."""

    def build(self, bundle: DatasetBundle, rng: np.random.Generator) -> HyperGraph:
        g = super().build(bundle, rng)
        y = bundle.y
        src = np.arange(len(bundle) - 1)
        dst = src + 1
        order = np.argsort(y, kind="stable")
        same = y[order[src]] == y[order[dst]]
        g.add_edges(order[src][same], order[dst][same])
        return g


class DanglingManager(GraphManager):
    """After each epoch points one edge at a node that does not exist."""

    tags: ClassVar[frozenset[str]] = frozenset({"manager:broken"})

    def __init__(self) -> None:
        pass

    def on_epoch_end(self, graph: HyperGraph, model: Any, epoch: int) -> bool:
        if graph.indices.size:
            graph.indices = graph.indices.copy()
            graph.indices[0] = graph.num_nodes + 3
        return True


class SpaceLiarTraversal(UniformTraversal):
    """Declares a space default (8) that differs from its constructor default (4)."""

    space = {"width": Int(default=8, low=1, high=64)}

    def __init__(self, width: int = 4) -> None:
        self.width = width


class ShuffledStore(MemoryStore):
    """Reads every item into memory, but in the wrong order."""

    def make(self, store: DataStore) -> DataStore:
        array = super().make(store).as_array()
        assert array is not None
        return ArrayStore(array[::-1].copy())


class GreedyFileStore(LazyFileStore):
    """Claims a bounded cache but keeps every item it ever read."""

    def make(self, store: DataStore) -> DataStore:
        made = super().make(store)
        assert isinstance(made, FileStore)
        made.cache_size = 10**6
        return made


BROKEN = [
    ("store", "broken_shuffled", ShuffledStore, "gathers_same_arrays"),
    ("store", "broken_greedy", GreedyFileStore, "cache_size_respected"),
    ("traversal", "broken_leaky", LeakyTraversal, "yields_only_train_ids"),
    ("model", "broken_mean_loss", MeanLossModel, "per_sample_loss_honest"),
    ("dataloader", "broken_label_leak", LabelLeakDataloader, "no_validation_or_test_labels_used"),
    ("manager", "broken_dangling", DanglingManager, "graph_valid_after_every_update"),
    ("traversal", "broken_space", SpaceLiarTraversal, "space_defaults_match_constructor"),
]


@pytest.fixture
def registered() -> Iterator[None]:
    for kind, name, cls, _ in BROKEN:
        registry.register(kind, name)(cls)
    try:
        yield
    finally:
        for kind, name, _, _ in BROKEN:
            registry.unregister(kind, name)


@pytest.mark.parametrize(("kind", "name", "cls", "rule"), BROKEN,
                         ids=[f"{k}:{n}" for k, n, _, _ in BROKEN])
def test_broken_module_is_caught(registered: None, kind: str, name: str, cls: type,
                                 rule: str) -> None:
    checks = {c.name: c for c in check_module(cls)}
    assert rule in checks, f"check {rule} not selected for {kind}:{name}"
    with pytest.raises(ContractError) as info:
        checks[rule]()
    message = str(info.value)
    assert message.startswith(f"{kind} '{name}' breaks rule '{rule}': "), message
    assert info.value.rule == rule


def test_broken_modules_fail_only_where_broken(registered: None) -> None:
    """The leaky traversal passes its other contracts: the checks are specific."""
    results = {c.name: run_check(c) for c in check_module(LeakyTraversal)}
    failed = {n for n, r in results.items() if r.status == "failed"}
    assert "yields_only_train_ids" in failed
    assert "deterministic_by_seed" not in failed
    assert "respects_batch_size" not in failed


def test_registry_is_clean_after_unregister(registered: None) -> None:
    assert "broken_leaky" in registry.names("traversal")


def test_unregistered_afterwards() -> None:
    assert "broken_leaky" not in registry.names("traversal")
    assert "broken_dangling" not in registry.names("manager")


def test_cli_check_exits_1_naming_the_rule(registered: None) -> None:
    from typer.testing import CliRunner

    from hypergraph.cli import app

    result = CliRunner().invoke(app, ["check", "traversal:broken_leaky", "--no-smoke", "--json"])
    assert result.exit_code == 1, result.output
    import json

    data = json.loads(result.output)
    failed = [c for m in data["modules"] for c in m["checks"] if c["status"] == "failed"]
    by_rule = {c["rule"]: c["message"] for c in failed}
    assert "breaks rule 'yields_only_train_ids'" in by_rule["yields_only_train_ids"]
    assert "deterministic_by_seed" not in by_rule
