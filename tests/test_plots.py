"""Learning-curve and graph plots, and the `hypergraph plot` / `hypergraph graph` commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hypergraph.cli import main
from hypergraph.config import RunConfig, apply_overrides
from hypergraph.exceptions import DataError, InvalidParameterError
from hypergraph.graph import HyperGraph
from hypergraph.plots import graph_layout, load_history, plot_graph
from hypergraph.run import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    out = []
    for i, trav in enumerate(("comprehensive", "random_walk")):
        cfg = apply_overrides(RunConfig(device="cpu"), [
            "model.width=32", "trainer.epochs=2", f"traversal.name={trav}"])
        train(cfg, root / f"run{i}")
        out.append(root / f"run{i}")
    return out


def png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # something was drawn


def test_plot_command_overlays_runs(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    with pytest.raises(SystemExit) as exc:
        main(["plot", *map(str, runs), "--out", str(out), "--metric", "accuracy"])
    assert exc.value.code == 0
    png(out)


def test_plot_command_errors(runs: list[Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2 and "holds no history.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(runs[0]), "--metric", "bleu", "--out", str(tmp_path / "x.png")])
    assert exc.value.code == 2 and "'bleu'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_graph_command_with_run_visits(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    with pytest.raises(SystemExit) as exc:
        main(["graph", "--run", str(runs[1]), "--out", str(out), "--max-edges", "3000"])
    assert exc.value.code == 0
    png(out)


def test_graph_command_spring_layout(tmp_path: Path) -> None:
    out = tmp_path / "iris.png"
    with pytest.raises(SystemExit) as exc:
        main(["graph", "--dataset", "iris", "--dataloader", "knn", "--set",
              "dataloader.k=5", "--out", str(out)])
    assert exc.value.code == 0
    png(out)


def test_graph_command_rejects_other_settings(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["graph", "--set", "model.lr=0.1", "--out", str(tmp_path / "g.png")])
    assert exc.value.code == 2 and "dataset.* and dataloader.*" in capsys.readouterr().err


def tiny_graph() -> HyperGraph:
    return HyperGraph.from_edges(6, [0, 1, 2, 3, 4], [1, 2, 3, 4, 5],
                                 split=np.array([0, 0, 0, 1, 2, 0]),
                                 label=np.array([0, 0, 1, 1, 2, 2]))


def test_layouts() -> None:
    g = tiny_graph()
    feats = np.arange(18, dtype=np.float64).reshape(6, 3) ** 1.5
    assert graph_layout(g, feats, "pca").shape == (6, 2)
    spring = graph_layout(g, None, "auto", seed=1)
    np.testing.assert_array_equal(spring, graph_layout(g, None, "spring", seed=1))
    with pytest.raises(DataError, match="spring"):
        graph_layout(g, None, "pca")
    with pytest.raises(InvalidParameterError, match="auto, pca, spring"):
        graph_layout(g, feats, "tsne")


def test_plot_graph_checks_visit_length(tmp_path: Path) -> None:
    g = tiny_graph()
    with pytest.raises(DataError, match="different graph"):
        plot_graph(g, tmp_path / "x.png", visits=np.zeros(5))
    plot_graph(g, tmp_path / "ok.png", visits=np.array([3, 1, 0, 0, 0, 2]),
               regression=False)
    assert (tmp_path / "ok.png").is_file()


def test_load_history_names_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(DataError, match="line 2"):
        load_history(tmp_path)
