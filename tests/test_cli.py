"""Every CLI error path: exit code 2, one clear paragraph, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import cli
from hypergraph import registry

ROOT = Path(__file__).resolve().parents[1]
EXE = ROOT / ".venv" / "bin" / "hypergraph"






def fails_cleanly(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    code, out, err = cli(argv, capsys)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    text = err.strip()
    # exactly one line on stderr: no stray output (e.g. from a progress bar) around it
    assert err.startswith("Error: ") and err.endswith("\n") and err.count("\n") == 1, \
        f"not one paragraph: {err!r}"
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


# --------------------------------------------------------------------------- bad input
def test_unknown_module_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    fails_cleanly(["train", "--model", "mlpp", "--out", str(run)], capsys,
                  "Unknown model 'mlpp'", "Did you mean 'mlp'?", "Valid choices:", "mlp")
    fails_cleanly(["train", "--traversal", "random_wakl", "--out", str(run)], capsys,
                  "Did you mean 'random_walk'?", "comprehensive")
    # user text that looks like rich markup is shown as typed, not interpreted
    fails_cleanly(["train", "--model", "x[/]", "--out", str(run)], capsys,
                  "Unknown model 'x[/]'")
    fails_cleanly(["train", "--model", "[bold]mlp", "--out", str(run)], capsys,
                  "Unknown model '[bold]mlp'")
    assert not run.exists()


def test_store_choice_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The store kind takes the same paths as every kind: names, tags, parameter values."""
    run = tmp_path / "run"
    fails_cleanly(["train", "--store", "memry", "--out", str(run)], capsys,
                  "Unknown store 'memry'", "Did you mean 'memory'?", "auto, file, memory")
    fails_cleanly(["train", "--store", "file", "--out", str(run)], capsys,
                  "store 'file' requires tag 'source:files'", "dataset:image_folder")
    fails_cleanly(["train", "--dataset", "image_folder", "--model", "cnn", "--store", "file",
                   "--set", "store.cache_size=-1", "--out", str(run)], capsys,
                  "The 'cache_size' parameter of LazyFileStore (store 'file') must be an int "
                  "in [0, 10000000]. Got -1 instead.")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("store: {name: memory, params: {cache_size: 3}}\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(run)], capsys, "'cache_size'",
                  "store 'memory'")
    assert not run.exists()


def test_malformed_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("seed: [1\nmodel: mlp\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(tmp_path / "run")], capsys,
                  "bad.yaml", "is not valid YAML", "line")
    cfg.write_text("- just\n- a list\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(tmp_path / "run")], capsys,
                  "must be a YAML mapping")
    assert not (tmp_path / "run").exists()


def test_config_with_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("sed: 3\nmodel: mlp\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(tmp_path / "run")], capsys,
                  "sed", "unknown key", "seed")
    cfg.write_text("model: {name: mlp, params: {lrr: 0.01}}\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(tmp_path / "run")], capsys,
                  "'lrr'", "Did you mean 'lr'?")
    cfg.write_text("model: {name: mlp, parms: {lr: 0.01}}\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(tmp_path / "run")], capsys,
                  "model.parms")
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails_cleanly(["train", "-c", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "run")],
                  capsys, "nope.yaml", "does not exist")
    fails_cleanly(["train", "-c", str(tmp_path), "--out", str(tmp_path / "run")],
                  capsys, "is a folder")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfeseed: 1\n")
    fails_cleanly(["train", "-c", str(binary), "--out", str(tmp_path / "run")],
                  capsys, "binary.yaml", "UTF-8")
    assert not (tmp_path / "run").exists()


def test_run_folder_that_cannot_be_made(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    fails_cleanly(["train", "--no-progress", "--out", str(afile)], capsys,
                  "Cannot create the run folder", "afile")
    fails_cleanly(["train", "--no-progress", "--out", str(afile / "sub")], capsys,
                  "Cannot create the run folder")
    assert afile.read_text() == "x"


def test_invalid_hyperparameter_value(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    msg = fails_cleanly(["train", "--set", "model.lr=-3", "--out", str(run)], capsys,
                        "MLPModel", "'lr'", "[1e-05, 1]", "Got -3 instead")
    assert msg == ("Error: The 'lr' parameter of MLPModel (model 'mlp') must be a float in "
                   "[1e-05, 1] (log). Got -3 instead.")
    fails_cleanly(["train", "--set", "dataloader.metric=manhattan", "--out", str(run)], capsys,
                  "KNNDataloader", "'metric'", "'cosine'", "'manhattan'")
    fails_cleanly(["train", "--epochs", "0", "--out", str(run)], capsys, "'epochs'", "Got 0")
    fails_cleanly(["train", "--device", "tpu", "--out", str(run)], capsys, "Unknown device")
    assert not run.exists()


def test_set_key_that_does_not_exist(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    fails_cleanly(["train", "--set", "model.lrr=0.1", "--out", str(run)], capsys,
                  "'lrr'", "Did you mean 'lr'?", "weight_decay")
    fails_cleanly(["train", "--set", "modle.lr=0.1", "--out", str(run)], capsys,
                  "'modle'", "Did you mean 'model'?")
    fails_cleanly(["train", "--set", "lr=0.1", "--out", str(run)], capsys, "KIND.PARAM")
    assert not run.exists()


def test_set_without_equals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails_cleanly(["train", "--set", "model.lr", "--out", str(tmp_path / "run")], capsys,
                  "KEY=VALUE", "'model.lr'")
    assert not (tmp_path / "run").exists()


def test_set_reads_yaml_1_2_floats(tmp_path: Path) -> None:
    from hypergraph.config import RunConfig, apply_overrides, load_config

    cfg = apply_overrides(RunConfig(), ["model.lr=1e-4", "model.weight_decay=1E-3"])
    assert cfg.model.params == {"lr": 1e-4, "weight_decay": 1e-3}
    path = tmp_path / "run.yaml"
    path.write_text("model: {name: mlp, params: {lr: 5e-4}}\n")
    assert load_config(path).model.params["lr"] == 5e-4


def test_usage_errors_have_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["train", "--epochs", "abc"], capsys)
    assert code == 2 and "Traceback" not in err + out and "epochs" in err


def test_debug_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["--debug", "train", "--model", "mlpp", "--out", str(tmp_path / "r")],
                       capsys)
    assert code == 2
    assert "Traceback (most recent call last)" in err and "UnknownNameError" in err
    assert "Error: Unknown model 'mlpp'" in err
    # and the flag does not stick to the next invocation
    fails_cleanly(["train", "--model", "mlpp", "--out", str(tmp_path / "r")], capsys)


# --------------------------------------------------------------------------- plugins
PLUGIN = '''
"""Test plugin: a traversal needing a tag only its companion dataloader provides, and a
dataset that fails while loading (after the run folder exists)."""
from typing import ClassVar

from hypergraph.dataloaders import Dataloader
from hypergraph.datasets import Dataset
from hypergraph.exceptions import DataError
from hypergraph.registry import register
from hypergraph.traversals import Traversal


@register("dataloader", "clitest_loader")
class SpecialLoader(Dataloader):
    """Provides the special tag."""

    tags: ClassVar[frozenset[str]] = frozenset({"clitest:special"})

    def __init__(self) -> None:
        pass


@register("traversal", "clitest_needy")
class NeedyTraversal(Traversal):
    """Requires the special tag."""

    requires: ClassVar[frozenset[str]] = frozenset({"clitest:special"})

    def __init__(self) -> None:
        pass


@register("dataset", "clitest_broken")
class BrokenDataset(Dataset):
    """Fails while loading."""

    tags: ClassVar[frozenset[str]] = frozenset({"task:classification", "features:vector"})

    def __init__(self) -> None:
        pass

    def load(self, rng):
        raise DataError("The clitest_broken dataset cannot be read.")
'''

PLUGIN_NAMES = [("dataloader", "clitest_loader"), ("traversal", "clitest_needy"),
                ("dataset", "clitest_broken")]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    module = "hg_clitest_plugin"
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / f"{module}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(folder))
    yield module
    for kind, name in PLUGIN_NAMES:
        registry.unregister(kind, name)
    sys.modules.pop(module, None)


def test_incompatible_combination(plugin: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    fails_cleanly(["--plugins", plugin, "train", "--traversal", "clitest_needy",
                   "--out", str(run)], capsys,
                  "Incompatible modules", "traversal 'clitest_needy' requires tag "
                  "'clitest:special'", "provided by: dataloader:clitest_loader")
    assert not run.exists()
    # a config file can name the plugin too
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"plugins: [{plugin}]\ntraversal: clitest_needy\n")
    fails_cleanly(["train", "-c", str(cfg), "--out", str(run)], capsys, "clitest:special")
    assert not run.exists()


def test_missing_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails_cleanly(["--plugins", "no_such_plugin_xyz", "train", "--out", str(tmp_path / "r")],
                  capsys, "'no_such_plugin_xyz'")


def test_failed_run_changes_nothing_in_its_folder(plugin: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"stale": true}')  # not a run's folder: refused
    fails_cleanly(["--plugins", plugin, "train", "--dataset", "clitest_broken",
                   "--out", str(run)], capsys, "not a HyperGraph run", "--overwrite")
    # asked to overwrite, the data still fail to load before anything in the folder changes
    fails_cleanly(["--plugins", plugin, "train", "--dataset", "clitest_broken",
                   "--out", str(run), "--overwrite"], capsys,
                  "clitest_broken dataset cannot be read")
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]
    assert (run / "metrics.json").read_text() == '{"stale": true}'


# --------------------------------------------------------------------------- other commands
def test_modules_json_lists_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["modules", "--json"], capsys)
    assert code == 0, err
    described = json.loads(out)
    assert {d["kind"] for d in described} == set(registry.KINDS)
    assert {(d["kind"], d["name"]) for d in described} == {
        (c.kind, c.name) for c in registry.all_modules()}
    mlp = next(d for d in described if d["name"] == "mlp")
    assert mlp["space"]["lr"]["default"] == 1e-3 and "task:classification" in mlp["tags"]
    code, out, _ = cli(["modules", "--kind", "traversal", "--json"], capsys)
    assert code == 0 and {d["kind"] for d in json.loads(out)} == {"traversal"}
    fails_cleanly(["modules", "--kind", "traversl"], capsys, "Did you mean 'traversal'?")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(["train", "--help"], capsys)
    assert code == 0 and "--set" in out and "--out" in out
    from hypergraph.kinds import KIND_NAMES

    assert all(f"--{kind}" in out for kind in KIND_NAMES)  # one option per kind of the table
    code, out, _ = cli(["--help"], capsys)
    assert code == 0 and "train" in out and "modules" in out


def test_console_script_error_is_one_line_on_a_narrow_terminal(tmp_path: Path) -> None:
    """The installed entry point: exit 2, one unwrapped line even at 40 columns."""
    if not EXE.exists():
        pytest.skip("console script not installed in .venv")
    env = dict(os.environ, COLUMNS="40", OMP_NUM_THREADS="1")
    proc = subprocess.run([str(EXE), "train", "--set", "model.lr=-3", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "Error: The 'lr' parameter of MLPModel (model 'mlp') must be a float in [1e-05, 1] "
        "(log). Got -3 instead."]
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- the default run
def test_default_train_reaches_95_percent_on_digits(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run[" / "]"  # ".../run[/]": the summary must not read it as rich markup
    code, out, err = cli(["train", "--no-progress", "--out", str(run)], capsys)
    assert code == 0, err
    metrics: dict[str, Any] = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.95, metrics
    assert set(metrics) >= {"val", "test", "samples_seen", "wall_s"}
    assert {"accuracy", "loss"} <= set(metrics["test"])
    for name in ("config.yaml", "history.jsonl", "learning_curve.png", "best.pt"):
        assert (run / name).exists(), name
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    assert "test" in out and f"Run folder: {run}" in out.replace("\n", "")
