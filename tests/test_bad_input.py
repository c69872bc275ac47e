"""Bad input that used to end in a traceback or a silent wrong answer: each is now exit code 2
with one message naming the fault, and data errors leave no results behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

import hypergraph
from hypergraph import registry
from hypergraph.cli import main
from hypergraph.config import RunConfig
from hypergraph.data import ArrayStore
from hypergraph.datasets import DatasetBundle, ImageFolderDataset
from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph
from hypergraph.models import MLPModel
from hypergraph.spaces import Int

ROOT = Path(__file__).resolve().parents[1]
EXE = ROOT / ".venv" / "bin" / "hypergraph"
#: Files a run writes once it has data; none may appear after a data error.


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``hypergraph ARGV`` in-process; numpy RuntimeWarnings count as failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(SystemExit) as info:
            main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    """Assert exit code 2 and one ``Error:`` line holding every fragment; returns it."""
    code, out, err = cli(argv, capsys)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    assert err.startswith("Error: ") and err.count("\n") == 1, f"not one message: {err!r}"
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def no_results(run: Path) -> None:
    """Nothing was written: bad data leave no run folder behind."""
    assert not run.exists(), sorted(p.name for p in run.iterdir())


def csv(path: Path, X: np.ndarray, y: list[Any]) -> str:
    cols = [f"f{i}" for i in range(X.shape[1])]
    lines = [",".join([*cols, "label"])]
    lines += [",".join([*(repr(float(v)) for v in row), str(label)]) for row, label in
              zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def train_args(run: Path, *dataset: str) -> list[str]:
    return ["train", *dataset, "--epochs", "1", "--device", "cpu", "--no-progress",
            "--out", str(run)]


# --------------------------------------------------------------------------- plugins
@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in list(sys.modules):
        if name.startswith("hg_bi_"):
            sys.modules.pop(name)
    registry.unregister("model", "hg_bi_half")


def test_plugin_that_raises_or_has_a_syntax_error(plugin_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # registers a class, then raises: the class must not stay behind half-imported
    (plugin_dir / "hg_bi_raises.py").write_text(textwrap.dedent('''
        from hypergraph.models import MLPModel
        from hypergraph.registry import register

        @register("model", "hg_bi_half")
        class Half(MLPModel):
            """Registered before the failure."""

        raise RuntimeError("the plugin is broken")
    '''))
    (plugin_dir / "hg_bi_syntax.py").write_text("x = 1\ndef f(:\n    pass\n")
    (plugin_dir / "hg_bi_dep.py").write_text("import hg_bi_no_such_dependency\n")
    run = tmp_path / "run"
    fails(["--plugins", "hg_bi_raises", "train", "--out", str(run)], capsys,
          "'hg_bi_raises'", "RuntimeError: the plugin is broken", "hg_bi_raises.py:9")
    assert "hg_bi_half" not in registry.names("model")
    fails(["--plugins", "hg_bi_syntax", "train", "--out", str(run)], capsys,
          "'hg_bi_syntax'", "SyntaxError", "hg_bi_syntax.py:2")
    fails(["--plugins", "hg_bi_dep", "train", "--out", str(run)], capsys,
          "'hg_bi_dep'", "No module named 'hg_bi_no_such_dependency'")
    # named in a config file, and on other commands
    cfg = tmp_path / "run.yaml"
    cfg.write_text("plugins: [hg_bi_syntax]\n")
    fails(["train", "-c", str(cfg), "--out", str(run)], capsys, "'hg_bi_syntax'", "SyntaxError")
    fails(["test", "--plugins", "hg_bi_raises"], capsys, "RuntimeError")
    assert not run.exists()
    # --debug keeps the traceback of the plugin's own error
    code, _, err = cli(["--debug", "--plugins", "hg_bi_raises", "modules"], capsys)
    assert code == 2 and "Traceback" in err and 'raise RuntimeError("the plugin is broken")' in err


def test_broken_entry_point_breaks_only_what_needs_it(
        plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (plugin_dir / "hg_bi_entry.py").write_text("raise ValueError('bad plugin state')\n")
    ep = EntryPoint(name="fancy", value="hg_bi_entry", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    monkeypatch.setitem(registry._state, "entry_points", False)
    monkeypatch.setattr(registry, "_BROKEN_ENTRY_POINTS", {})
    code, out, _ = cli(["modules", "--kind", "model", "--json"], capsys)
    assert code == 0 and '"mlp"' in out  # unrelated commands still work
    assert "ValueError" in registry.broken_entry_points()["fancy = hg_bi_entry"]
    fails(train_args(tmp_path / "run", "--model", "fancy_mlp"), capsys,
          "Unknown model 'fancy_mlp'", "'fancy = hg_bi_entry' failed with ValueError: bad plugin "
          "state")


# --------------------------------------------------------------------------- single class
def test_single_class_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    run = tmp_path / "run"
    path = csv(tmp_path / "one.csv", X, ["cat"] * 40)
    fails(train_args(run, "--dataset", "csv", "--set", f"dataset.path={path}"), capsys,
          "one.csv", "same class ('cat')", "at least two classes")
    no_results(run)
    npz = tmp_path / "one.npz"
    np.savez(npz, X=X, y=np.full(40, 3))
    fails(train_args(run, "--dataset", "npz", "--set", f"dataset.path={npz}"), capsys,
          "one.npz", "same class (3)")
    folder = tmp_path / "images" / "only"
    folder.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(DataError, match=r"one class subfolder \('only'\)"):
        ImageFolderDataset(path=str(folder.parent)).load(rng)
    no_results(run)
    with pytest.raises(DataError, match="same class"):
        hypergraph.train(RunConfig(device="cpu"), None, dataset=hypergraph.from_arrays(
            X, np.zeros(40, np.int64)))
    # a bundle whose training rows all hold one class (the others only in val/test)
    y = np.array([0] * 6 + [1] * 2)
    split = np.array([0] * 6 + [1, 2], np.int8)
    bundle = DatasetBundle(ArrayStore(np.zeros((8, 2), np.float32)), y, split,
                           "classification", 2, "tiny")
    with pytest.raises(DataError, match="every training row holds the same class"):
        bundle.check()
    # regression with a constant target is not a class problem
    DatasetBundle(ArrayStore(np.zeros((3, 2), np.float32)), np.ones(3, np.float32),
                  np.array([0, 1, 2], np.int8), "regression", 0, "r").check()


# --------------------------------------------------------------------------- overflow
def test_features_beyond_float_range_are_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    X[7, 1] = 1e308
    run = tmp_path / "run"
    path = csv(tmp_path / "big.csv", X, [i % 2 for i in range(40)])
    # standardised: the mean/std overflow (or the scaled value does not fit float32)
    fails(train_args(run, "--dataset", "csv", "--set", f"dataset.path={path}"), capsys,
          "big.csv", "column 'f1'", "row 7")
    # not standardised: 1e308 would become inf when stored as float32
    fails(train_args(run, "--dataset", "csv", "--set", f"dataset.path={path}", "--set",
                     "dataset.standardize=false"), capsys,
          "column 'f1', row 7", "float32 range")
    no_results(run)
    # a whole column of huge values (std overflows even though the mean may not)
    X = rng.normal(size=(40, 3))
    X[:, 2] = 1e300 * np.sign(rng.normal(size=40))
    np.savez(tmp_path / "col.npz", X=X, y=np.arange(40) % 2)
    fails(train_args(run, "--dataset", "npz", "--set", f"dataset.path={tmp_path / 'col.npz'}"),
          capsys, "column 2", "overflows")
    # regression targets too
    y = rng.normal(size=40)
    y[3] = -1e308
    with pytest.raises(DataError, match="target value -1e\\+308 in row 3"):
        hypergraph.train(RunConfig(device="cpu"), None, dataset=hypergraph.from_arrays(
            X[:, :2], y, task="regression"))
    no_results(run)


def test_overflow_prints_one_line_and_no_numpy_warning(tmp_path: Path) -> None:
    X = np.random.default_rng(2).normal(size=(30, 2))
    X[:, 0] = 1e308
    path = csv(tmp_path / "big.csv", X, [i % 3 for i in range(30)])
    if not EXE.exists():
        pytest.skip("the console script is not installed (pip install -e .)")
    proc = subprocess.run(
        [str(EXE), *train_args(
            tmp_path / "run", "--dataset", "csv", "--set", f"dataset.path={path}")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "column 'f0'" in proc.stderr and "RuntimeWarning" not in proc.stderr
    no_results(tmp_path / "run")


# --------------------------------------------------------------------------- files
def test_folder_given_for_a_file_and_a_random_npz(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    folder = tmp_path / "data.csv"
    folder.mkdir()
    for name in ("csv", "npz", "parquet"):
        fails(train_args(run, "--dataset", name, "--set", f"dataset.path={folder}"), capsys,
              "is a folder, expected a file")
    fails(train_args(run, "-c", str(folder)), capsys, "is a folder")
    with pytest.raises(DataError, match="is a folder, expected a file"):
        HyperGraph.load(folder)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(2048))
    err = fails(train_args(run, "--dataset", "npz", "--set", f"dataset.path={junk}"), capsys,
                "not a valid .npz (zip) file")
    assert "pickle" not in err
    np.save(tmp_path / "plain.npy", np.zeros((4, 2)))  # an .npy is not an .npz either
    fails(train_args(run, "--dataset", "npz", "--set",
                     f"dataset.path={tmp_path / 'plain.npy'}"), capsys, "not a valid .npz")
    afile = tmp_path / "afile.png"
    afile.write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, expected a folder"):
        ImageFolderDataset(path=str(afile)).load(np.random.default_rng(0))
    fails(["plot", str(afile), "--out", str(tmp_path / "p.png")], capsys,
          "is a file, expected a run folder")
    no_results(run)


# --------------------------------------------------------------------------- NaN loss
class NanFromStartModel(MLPModel):
    """An MLP whose weights turn NaN after ``nan_after`` steps."""

    space: ClassVar = {"nan_after": Int(default=0, low=0, high=10**6, help="good steps")}

    def __init__(self, nan_after: int = 0) -> None:
        super().__init__(width=16, dropout=0.0)
        self.nan_after = nan_after

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        self.steps_ = getattr(self, "steps_", 0) + 1
        if self.steps_ > self.nan_after:
            with torch.no_grad():
                next(self.net_.parameters()).fill_(float("nan"))
        return super().train_step(x, y, weights)


def test_nan_loss_names_only_written_checkpoints(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    registry.register("model", "hg_bi_nan")(NanFromStartModel)
    try:
        run = tmp_path / "run"
        err = fails(["train", "--dataset", "iris", "--model", "hg_bi_nan", "--epochs", "2",
                     "--device", "cpu", "--no-progress", "--out", str(run)], capsys,
                    "became nan in epoch 1", "No checkpoint had been written")
        assert "last.pt" not in err and "best.pt" not in err
        assert not (run / "last.pt").exists() and not (run / "best.pt").exists()
    finally:
        registry.unregister("model", "hg_bi_nan")


# --------------------------------------------------------------------------- plot / graph
def test_plot_and_graph_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.xyz"
    fails(["graph", "--dataset", "iris", "--out", str(out)], capsys,
          "'.xyz' is not an image format", ".png", ".svg", ".pdf")
    fails(["plot", str(tmp_path), "--out", str(tmp_path / "curves")], capsys,
          "no file extension")
    fails(["graph", "--dataset", "iris", "--out", str(tmp_path / "no" / "g.png")], capsys,
          "does not exist")
    (tmp_path / "d.png").mkdir()
    fails(["graph", "--dataset", "iris", "--out", str(tmp_path / "d.png")], capsys,
          "is a folder, expected a file")
    fails(["graph", "--dataset", "iris", "--max-edges", "-5", "--out",
           str(tmp_path / "g.png")], capsys, "--max-edges must be >= 0", "got -5")
    fails(["graph", "--dataset", "iris", "--layout", "circle", "--out",
           str(tmp_path / "g.png")], capsys, "--layout must be one of auto, pca, spring")
    assert not [p for p in tmp_path.glob("g.*")]
    # a run folder with a damaged visits.npy, then a damaged last.pt
    run = tmp_path / "run"
    run.mkdir()
    config = RunConfig.model_validate({"dataset": {"name": "iris"},
                                       "dataloader": {"name": "knn"}})
    (run / "config.yaml").write_text(config.to_yaml())
    (run / "visits.npy").write_bytes(np.random.default_rng(0).bytes(300))
    fails(["graph", "--run", str(run), "--out", str(tmp_path / "g.png")], capsys,
          "visits.npy", "damaged")
    np.save(run / "visits.npy", np.full(150, -1.0))
    fails(["graph", "--run", str(run), "--out", str(tmp_path / "g.png")], capsys,
          "does not hold visit counts")
    (run / "visits.npy").unlink()
    (run / "last.pt").write_bytes(b"not a checkpoint")
    fails(["graph", "--run", str(run), "--out", str(tmp_path / "g.png")], capsys,
          "last.pt' is not a readable checkpoint")
    # a history line that is JSON but not an epoch record
    (run / "history.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n')
    fails(["plot", str(run), "--out", str(tmp_path / "c.png")], capsys,
          "record 1 lacks epoch, train_loss or val")


# --------------------------------------------------------------------------- test / bench
def test_smoke_and_bench_option_ranges(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    fails(["test", "--steps", "-1"], capsys, "--steps must be >= 1", "got -1")
    fails(["test", "--steps", "0"], capsys, "--steps must be >= 1")
    fails(["test", "--rows", "0"], capsys, "--rows must be >= 3", "one row per split", "got 0")
    # a negative seed is a valid run seed (used modulo 2**32, as by train), not a crash
    code, stdout, err = cli(["test", "--dataset", "iris", "--seed", "-1", "--rows", "30",
                             "--steps", "1", "--json"], capsys)
    assert code == 0 and '"ok": true' in stdout, (stdout, err)
    out = tmp_path / "bench"
    fails(["bench", "--seeds", "0", "-o", str(out)], capsys, "--seeds '0'",
          "a seed count must be at least 1", "100-119")
    for option, value, rule in (("--threads", "0", ">= 1"),
                                ("--step-scale", "0", "> 0"), ("--step-scale", "nan", "> 0"),
                                ("--first-seed", "-1", ">= 0"), ("--evals", "0", ">= 1"),
                                ("--batch-size", "-3", ">= 1")):
        fails(["bench", option, value, "-o", str(out)], capsys, f"{option} must be {rule}")
    assert not out.exists()
    cheap = ["bench", "--datasets", "clean", "--methods", "uniform", "--seeds", "1",
             "--step-scale", "0.01", "--no-progress", "-o"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    fails([*cheap, str(afile)], capsys, "is a file, expected a folder")
    fails([*cheap, str(afile / "sub")], capsys, "Cannot create the bench folder")
    out.mkdir()
    (out / "results.json").write_text("{damaged")
    fails([*cheap, str(out)], capsys, "results.json' is not a readable results file")
    assert (out / "results.json").read_text() == "{damaged"  # left as it was
