"""A seed fixes a whole run: same seed, same metrics.json (timings aside); other seed, other run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hypergraph.cli import main
from hypergraph.config import RunConfig, apply_overrides
from hypergraph.run import train
from results import without_timings


def read_run(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    metrics = without_timings(json.loads((run / "metrics.json").read_text()))
    history = [without_timings(json.loads(line))
               for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    return metrics, history


def tiny(seed: int, *extra: str) -> RunConfig:
    return apply_overrides(RunConfig(), [f"seed={seed}", "trainer.epochs=3",
                                         "trainer.batch_size=256", *extra])


def test_same_seed_same_metrics_via_api(tmp_path: Path) -> None:
    first = train(tiny(0), tmp_path / "a")
    second = train(tiny(0), tmp_path / "b")
    assert without_timings(first) == without_timings(second)
    assert read_run(tmp_path / "a") == read_run(tmp_path / "b")
    assert (tmp_path / "a" / "config.yaml").read_text() == (
        tmp_path / "b" / "config.yaml").read_text()
    other = train(tiny(1))  # no run folder: the returned metrics are enough
    assert without_timings(other) != without_timings(first)
    assert other["test"] != first["test"]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    _, err = capsys.readouterr()
    assert info.value.code == 0, err


def test_same_seed_same_metrics_via_cli(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--traversal", "random_walk", "--epochs", "3", "--no-progress",
              "--set", "trainer.batch_size=256"]
    _cli(["train", *common, "--seed", "5", "--out", str(tmp_path / "a")], capsys)
    _cli(["train", *common, "--seed", "5", "--out", str(tmp_path / "b")], capsys)
    # the written config.yaml re-runs the same run
    _cli(["train", "-c", str(tmp_path / "a" / "config.yaml"), "--no-progress",
          "--out", str(tmp_path / "c")], capsys)
    a, b, c = (read_run(tmp_path / name) for name in "abc")
    assert a == b == c
    assert len(a[1]) == 3


def test_default_traversal_falls_back_only_when_left_at_its_default(
        caplog: pytest.LogCaptureFixture) -> None:
    from hypergraph import registry
    from hypergraph.config import DEFAULTS, FALLBACK_TRAVERSAL, RUN_KINDS
    from hypergraph.dataloaders import KNNDataloader
    from hypergraph.run import _default_traversal_fallback

    class HyperedgesOnly(KNNDataloader):  # a plugin graph without pairwise edges
        tags = frozenset({"graph:hyperedges", "node:point"})

    cfg = RunConfig()
    classes = {k: registry.resolve(k, cfg.choice(k).name) for k in RUN_KINDS}
    assert _default_traversal_fallback(cfg, classes) == classes  # fits: unchanged
    classes["dataloader"] = HyperedgesOnly
    with caplog.at_level("WARNING", logger="hypergraph"):
        out = _default_traversal_fallback(cfg, classes)
    assert out["traversal"].name == FALLBACK_TRAVERSAL != DEFAULTS["traversal"]
    assert "graph:pairwise" in caplog.text and FALLBACK_TRAVERSAL in caplog.text
    named = apply_overrides(cfg, ["traversal.sweep=0.3"])
    assert _default_traversal_fallback(named, classes) == classes  # never replaced
