"""The example plugin (examples/plugin) passes the kit; `hypergraph check` / `test` behave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypergraph import registry
from hypergraph.cli import app
from hypergraph.testing import check_module, run_check

PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin"
MODULE = "hypergraph_example_plugin.modules"  # the plugin fixture (conftest.py) loads it


def test_entry_point_declared() -> None:
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"][registry.ENTRY_POINT_GROUP]
    assert MODULE in eps.values()
    assert (PLUGIN / "src" / Path(*MODULE.split("."))).with_suffix(".py").is_file()


def test_plugin_modules_pass_every_check(plugin: None) -> None:
    for kind, name in (("traversal", "stride"), ("model", "linear_probe")):
        cls = registry.resolve(kind, name)
        results = [run_check(c) for c in check_module(cls)]
        failed = [r.message for r in results if r.status == "failed"]
        assert not failed, failed
        assert sum(r.status == "passed" for r in results) >= 8


def test_cli_check_plugin_json(plugin: None) -> None:
    result = CliRunner().invoke(app, ["check", "stride", "model:linear_probe", "--no-smoke",
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert [m["module"] for m in data["modules"]] == ["traversal:stride", "model:linear_probe"]


def test_cli_check_unknown_name_exits_2() -> None:
    from hypergraph.cli import main

    with pytest.raises(SystemExit) as info:
        main(["check", "no_such_module_xyz", "--no-smoke"])
    assert info.value.code == 2


def test_cli_check_with_smoke_prints_matrix(plugin: None) -> None:
    result = CliRunner().invoke(app, ["check", "stride"])
    assert result.exit_code == 0, result.output
    assert "dataset x traversal" in result.output
    assert "OK" in result.output


def test_cli_test_stages(plugin: None) -> None:
    result = CliRunner().invoke(app, ["test", "--traversal", "stride", "--model", "linear_probe",
                                      "--rows", "150", "--json"])
    assert result.exit_code == 0, result.output
    stages = json.loads(result.output)["stages"]
    assert [s["stage"] for s in stages] == ["load", "build graph", "traverse", "train",
                                            "validate", "test"]
    assert all(s["status"] == "pass" for s in stages)


def test_cli_test_failing_stage_exits_1() -> None:
    from hypergraph.traversals import Selection, UniformTraversal

    @registry.register("traversal", "broken_test_stage")
    class Leaky(UniformTraversal):
        def next_batch(self) -> Selection:
            return Selection(self.graph_.ids_in_split("test")[:2])

    try:
        result = CliRunner().invoke(app, ["test", "--traversal", "broken_test_stage",
                                          "--rows", "120"])
    finally:
        registry.unregister("traversal", "broken_test_stage")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "non-training" in result.output
