"""Registry and resolver: registration, refusals, helpful errors, plugins."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from hypergraph import registry
from hypergraph.base import Module
from hypergraph.cli import main
from hypergraph.exceptions import HyperGraphError, InvalidParameterError, UnknownNameError
from hypergraph.spaces import Int
from hypergraph.traversals import Traversal


@pytest.fixture
def temp_registrations() -> Iterator[list[tuple[str, str]]]:
    """Names registered during a test, unregistered afterwards."""
    added: list[tuple[str, str]] = []
    yield added
    for kind, name in added:
        registry.unregister(kind, name)


def test_register_and_resolve(temp_registrations: list[tuple[str, str]]) -> None:
    @registry.register("traversal", "test_registry_dummy")
    class Dummy(Traversal):
        """A dummy traversal."""

        space: ClassVar = {"step": Int(default=1, low=1, high=5)}

        def __init__(self, step: int = 1) -> None:
            self.step = step

    temp_registrations.append(("traversal", "test_registry_dummy"))
    assert Dummy.kind == "traversal" and Dummy.name == "test_registry_dummy"
    assert registry.resolve("traversal", "test_registry_dummy") is Dummy
    assert "test_registry_dummy" in registry.names("traversal")
    assert Dummy in registry.all_modules("traversal")
    described = registry.describe(Dummy)
    assert described["space"]["step"]["default"] == 1
    assert described["summary"] == "A dummy traversal."
    # registering the same class again is harmless
    assert registry.register("traversal", "test_registry_dummy")(Dummy) is Dummy


def test_duplicate_registration_refused(temp_registrations: list[tuple[str, str]]) -> None:
    original = registry.resolve("model", "mlp")

    class Impostor(Module):
        def __init__(self) -> None:
            pass

    with pytest.raises(HyperGraphError, match="already registered") as info:
        registry.register("model", "mlp")(Impostor)
    assert "MLPModel" in str(info.value) and "Impostor" in str(info.value)
    assert registry.resolve("model", "mlp") is original


def test_unknown_name_lists_choices_and_closest_match() -> None:
    with pytest.raises(UnknownNameError) as info:
        registry.resolve("traversal", "random_wlak")
    msg = str(info.value)
    assert "Unknown traversal 'random_wlak'" in msg
    assert "Did you mean 'random_walk'?" in msg
    for name in registry.names("traversal"):
        assert name in msg
    assert isinstance(info.value, KeyError) and not msg.startswith("'")
    # nothing close: no suggestion, still the choices
    with pytest.raises(UnknownNameError) as info:
        registry.resolve("model", "zzzzzzzz")
    assert "Did you mean" not in str(info.value) and "mlp" in str(info.value)


def test_unknown_kind() -> None:
    for call in (lambda: registry.resolve("modle", "mlp"), lambda: registry.names("modle"),
                 lambda: registry.all_modules("modle"),
                 lambda: registry.register("modle", "x")):
        with pytest.raises(UnknownNameError) as info:
            call()
        msg = str(info.value)
        assert "module kind 'modle'" in msg and "Did you mean 'model'?" in msg
        assert all(kind in msg for kind in registry.KINDS)


def test_from_params_and_set_params_errors() -> None:
    cls = registry.resolve("model", "mlp")
    with pytest.raises(UnknownNameError) as info:
        cls.from_params({"widht": 16})
    assert "Did you mean 'width'?" in str(info.value) and "model 'mlp'" in str(info.value)
    model = cls.from_params({"width": 16})
    with pytest.raises(InvalidParameterError, match="'depth' parameter of MLPModel"):
        model.set_params(depth=99)
    with pytest.raises(UnknownNameError):
        model.set_params(bogus=1)


def test_load_plugins_missing_module() -> None:
    with pytest.raises(HyperGraphError) as info:
        registry.load_plugins(["no_such_hypergraph_plugin_xyz"])
    assert "no_such_hypergraph_plugin_xyz" in str(info.value)
    assert "PYTHONPATH" in str(info.value)


def test_load_plugins_with_broken_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hg_broken_plugin_xyz.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HyperGraphError) as info:
        registry.load_plugins(["hg_broken_plugin_xyz", ""])
    assert "hg_broken_plugin_xyz" in str(info.value)
    assert "no_such_dependency_xyz" in str(info.value)
    sys.modules.pop("hg_broken_plugin_xyz", None)


def test_broken_entry_point_is_logged_not_fatal(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    class FakeEntryPoint:
        value = "missing_pkg.modules"

        def load(self) -> None:
            raise ImportError("No module named 'missing_pkg'")

    monkeypatch.setattr(registry, "entry_points", lambda group: [FakeEntryPoint()])
    monkeypatch.setitem(registry._state, "entry_points", False)
    monkeypatch.setattr(registry, "_BROKEN_ENTRY_POINTS", {})
    caplog.set_level("WARNING", logger="hypergraph")
    assert "mlp" in registry.names("model")
    assert "missing_pkg.modules" in caplog.text


PLUGIN = '''
"""A plugin registering one traversal (used through --plugins)."""
from typing import ClassVar

import numpy as np

from hypergraph.registry import register
from hypergraph.spaces import Int
from hypergraph.traversals import Selection, Traversal


@register("traversal", "{name}")
class FirstFew(Traversal):
    """Cycles through the first training nodes only."""

    tags: ClassVar[frozenset[str]] = frozenset({{"traversal:test"}})
    space = {{"count": Int(default=100, low=1, high=10_000)}}

    def __init__(self, count: int = 100) -> None:
        self.count = count

    def next_batch(self) -> Selection:
        pool = self.train_ids_[: self.count]
        return Selection(pool[self.rng_.integers(0, pool.size, size=self.batch_size_)])
'''


@pytest.fixture
def cli_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A plugin module on sys.path registering traversal 'firstfew_plugin'."""
    module = "hg_test_registry_plugin"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PLUGIN.format(name="firstfew_plugin")))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module
    registry.unregister("traversal", "firstfew_plugin")
    sys.modules.pop(module, None)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_plugin_from_cli_is_usable(cli_plugin: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    _train_with_plugin(cli_plugin, tmp_path, capsys)


def _train_with_plugin(cli_plugin: str, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(["--plugins", cli_plugin, "modules", "--kind", "traversal", "--json"],
                          capsys)
    assert code == 0, err
    names = {d["name"] for d in json.loads(out)}
    assert "firstfew_plugin" in names
    run = tmp_path / "run"
    code, out, err = _cli(["--plugins", cli_plugin, "train", "--traversal", "firstfew_plugin",
                           "--set", "traversal.count=50", "--epochs", "1", "--no-progress",
                           "--out", str(run)], capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["samples_seen"] > 0
    config = (run / "config.yaml").read_text()
    assert cli_plugin in config and "firstfew_plugin" in config and "count: 50" in config
    # the plugin list does not leak into a later invocation in the same process
    code, _, err = _cli(["modules", "--kind", "traversal"], capsys)
    assert code == 0, err


# ---------------------------------------------------------------------------- kinds and listing
def test_every_kind_is_a_run_kind() -> None:
    """Registered kinds are the kinds a run chooses by name (the one table), nothing else."""
    from hypergraph.config import RunConfig
    from hypergraph.kinds import DEFAULTS, KIND_NAMES

    assert registry.KINDS == KIND_NAMES
    for kind in registry.KINDS:
        assert registry.names(kind), f"no module of kind {kind}"
        assert RunConfig().choice(kind).name == DEFAULTS[kind] in registry.names(kind)
    for data_structure in ("data", "hypergraph", "node", "edge"):
        with pytest.raises(UnknownNameError, match="Unknown module kind"):
            registry.names(data_structure)


def test_module_index_is_current() -> None:
    """The index `hypergraph modules` reads equals the live built-ins (regenerate it with
    `.venv/bin/python tools/module_index.py` after changing a built-in module)."""
    on_disk = json.loads(registry.INDEX_PATH.read_text(encoding="utf-8"))
    live = json.loads(json.dumps(registry.build_index()))
    assert on_disk["modules"] == live["modules"], (
        "src/hypergraph/_module_index.json is out of date: run "
        "`.venv/bin/python tools/module_index.py`")
    assert on_disk["sources"] == live["sources"]


def test_descriptions_match_the_classes(temp_registrations: list[tuple[str, str]]) -> None:
    """Listing from the index gives what describing the classes gives, plus anything
    registered in the process (a plugin)."""
    @registry.register("manager", "test_registry_listed")
    class Listed(Module):
        """Listed from the live registry."""

        def __init__(self) -> None:
            pass

    temp_registrations.append(("manager", "test_registry_listed"))
    expected = [registry.describe(c) for c in registry.all_modules()]
    assert json.loads(json.dumps(registry.descriptions())) == json.loads(json.dumps(expected))
    assert [d["name"] for d in registry.descriptions("manager")] == registry.names("manager")
    with pytest.raises(UnknownNameError, match="Did you mean 'store'"):
        registry.descriptions("stor")


def test_listing_modules_imports_no_torch(tmp_path: Path) -> None:
    """`hypergraph modules` reads the built-ins from a current index: neither torch nor scipy
    is imported. An index older than a module's source is not trusted (the classes are
    imported instead). Checked on a copy of the package, whose file times the test sets."""
    import os
    import shutil
    import subprocess
    import time

    copy = tmp_path / "hypergraph"
    shutil.copytree(registry.INDEX_PATH.parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    index = copy / registry.INDEX_PATH.name
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    code = ("import sys, json; from hypergraph.cli import main\n"
            "from hypergraph import registry\n"
            "assert registry.INDEX_PATH.parent.parent.as_posix() == sys.argv[1], "
            "registry.INDEX_PATH\n"
            "try:\n    main(['modules', '--json'])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n"
            "heavy = sorted(m for m in ('torch', 'scipy', 'sklearn') if m in sys.modules)\n"
            "print(json.dumps(heavy), file=sys.stderr)\n")

    def listing(index_time: float) -> tuple[list[dict[str, str]], list[str]]:
        os.utime(index, (index_time, index_time))
        proc = subprocess.run([sys.executable, "-c", code, tmp_path.as_posix()], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        return json.loads(proc.stdout), json.loads(proc.stderr.strip().splitlines()[-1])

    fresh, heavy = listing(time.time() + 60)
    assert heavy == []
    assert {d["kind"] for d in fresh} == set(registry.KINDS)
    stale, heavy = listing(time.time() - 3600)
    assert "torch" in heavy and stale == fresh
