"""``hypergraph plot`` (learning curves of runs) and ``hypergraph graph`` (draw a graph)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hypergraph.cli._app import app, cli_config, console
from hypergraph.cli._checks import check_range
from hypergraph.exceptions import ConfigError, DataError, InvalidParameterError
from hypergraph.logging import get_logger

if TYPE_CHECKING:
    import numpy as np

logger = get_logger(__name__)


@app.command()
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (each with history.jsonl).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path(
        "learning_curves.png"),
    metric: Annotated[str | None, typer.Option(
        help="Validation metric of the right panel (default: accuracy for classification, "
        "r2 for regression).")] = None,
    label: Annotated[list[str] | None, typer.Option(
        help="Legend label per run, in order (default: the folder names).")] = None,
) -> None:
    """Overlay the learning curves of several runs in one PNG."""
    from hypergraph.plots import check_image_path, load_history, plot_learning_curves

    check_image_path(out)
    if label and len(label) != len(runs):
        raise ConfigError(f"--label was given {len(label)} times for {len(runs)} runs; give "
                          "one label per run or none.")
    histories = [load_history(run) for run in runs]
    for run, history in zip(runs, histories, strict=True):
        if not history:
            raise DataError(f"'{run}/history.jsonl' is empty: the run has not finished an "
                            "epoch yet.")
        for i, record in enumerate(history, start=1):
            if not (isinstance(record.get("val"), dict) and isinstance(record.get("epoch"), int)
                    and isinstance(record.get("train_loss"), int | float)):
                raise DataError(f"'{run}/history.jsonl' record {i} lacks epoch, train_loss or "
                                "val; the file is damaged.")
    val_keys = set(histories[0][-1]["val"])
    if metric is None:
        metric = next((m for m in ("accuracy", "r2", "loss") if m in val_keys), "loss")
    elif not any(metric in h[-1]["val"] for h in histories):
        raise ConfigError(f"--metric '{metric}' is not among the validation metrics of these "
                          f"runs: {', '.join(sorted(val_keys))}.")
    names = list(label) if label else _labels(runs)
    plot_learning_curves(list(zip(names, histories, strict=True)), out, metric=metric)
    console.print(f"Wrote {out} ({len(runs)} runs, val {metric}).")


def _labels(runs: list[Path]) -> list[str]:
    names = [run.resolve().name for run in runs]
    if len(set(names)) < len(names):  # same folder names in different places
        return [str(run) for run in runs]
    return names


@app.command()
def graph(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("graph.png"),
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Run config YAML to take the dataset and dataloader from.")
                      ] = None,
    run: Annotated[Path | None, typer.Option(
        help="Run folder: draw its graph (its config.yaml) with its training visits "
        "(visits.npy), and the edges its manager left (last.pt).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset module.")] = None,
    dataloader: Annotated[str | None, typer.Option(help="Dataloader (graph builder) module.")
                          ] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="dataset.PARAM=VALUE or dataloader.PARAM=VALUE (repeatable).")
                    ] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed (the split and graph depend on it).")
                    ] = None,
    layout: Annotated[str, typer.Option(help="auto, pca or spring.")] = "auto",
    max_edges: Annotated[int, typer.Option(help="Draw at most this many edges.")] = 20_000,
) -> None:
    """Draw a dataset's graph: 2-D projection, colour = label, marker = split.

    With --run, a second panel colours training nodes by how often the run visited them.
    """
    from hypergraph import registry
    from hypergraph.plots import LAYOUTS, check_image_path, node_features, plot_graph
    from hypergraph.rng import RngStreams
    from hypergraph.tags import check_combination

    check_image_path(out)
    check_range("--max-edges", max_edges, 0)
    if layout not in LAYOUTS:
        raise InvalidParameterError(f"--layout must be one of {', '.join(LAYOUTS)}; got "
                                    f"'{layout}'.")
    if config is not None and run is not None:
        raise ConfigError("Give either --config or --run, not both.")
    if run is not None:
        if not run.is_dir():
            raise DataError(f"--run '{run}' " + ("is a file, expected a run folder." if
                                                  run.exists() else "does not exist."))
        if not (run / "config.yaml").is_file():
            raise DataError(f"'{run}' holds no config.yaml: it is not a run folder.")
    for item in set_ or []:
        if not item.split("=", 1)[0].strip().startswith(("dataset.", "dataloader.")):
            raise ConfigError(f"hypergraph graph only takes dataset.* and dataloader.* "
                              f"settings, got --set {item}.")
    cfg = cli_config(run / "config.yaml" if run is not None else config,
                     {"dataset": dataset, "dataloader": dataloader},
                     [*(set_ or []), *([f"seed={seed}"] if seed is not None else [])])
    registry.load_plugins(cfg.plugins)
    classes = {k: registry.resolve(k, cfg.choice(k).name) for k in ("dataset", "dataloader")}
    check_combination(classes)
    ds = classes["dataset"].from_params(cfg.dataset.params)
    dl = classes["dataloader"].from_params(cfg.dataloader.params)
    streams = RngStreams(cfg.seed)  # the same streams as a run: the same split and graph
    bundle = ds.load(streams.generator("dataset"))  # type: ignore[attr-defined]
    bundle.check()
    g = dl.build(bundle, streams.generator("dataloader"))  # type: ignore[attr-defined]
    visits = None
    if run is not None:
        visits = _run_visits(run)
        _apply_final_edges(g, run)
    arr = bundle.store.as_array()
    feats = None if arr is None else node_features(g, arr.reshape(arr.shape[0], -1))
    title = f"{cfg.dataset.name} / {cfg.dataloader.name} (seed {cfg.seed})"
    if run is not None:
        title += f" - run {run.resolve().name}"
    plot_graph(g, out, features=feats, visits=visits, layout=layout, title=title,
               max_edges=max_edges, seed=cfg.seed,
               regression=bundle.task == "regression")
    console.print(f"Wrote {out} ({g.num_nodes} nodes, {g.num_edges // 2} edges).")


def _run_visits(run: Path) -> np.ndarray | None:
    import numpy as np

    path = run / "visits.npy"
    if not path.is_file():
        logger.warning("'%s' holds no visits.npy (unfinished run?); drawing without visits.",
                       run)
        return None
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"'{path}' is not a readable NumPy .npy file of visit counts ({err}); "
                        "it is damaged. Delete it to draw the graph without visits.") from err
    if not isinstance(loaded, np.ndarray) or loaded.ndim != 1 or loaded.dtype.kind not in "iuf" \
            or not np.all(np.isfinite(loaded)) or (loaded.size and loaded.min() < 0):
        raise DataError(f"'{path}' does not hold visit counts (one non-negative number per "
                        "node); it is damaged. Delete it to draw the graph without visits.")
    visits: np.ndarray = loaded
    return visits


def _apply_final_edges(g: Any, run: Path) -> None:
    """Use the edges of the run's last checkpoint when its manager changed the graph."""
    path = run / "last.pt"
    if not path.is_file():
        return
    import numpy as np
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types on damaged files
        raise DataError(f"'{path}' is not a readable checkpoint ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}); it is damaged. "
                        "Draw the graph with --config instead of --run.") from err
    saved = payload.get("graph") if isinstance(payload, dict) else None
    if isinstance(saved, dict) and {"indptr", "indices", "weights"} <= saved.keys() and \
            np.asarray(saved["indptr"]).size == g.num_nodes + 1:
        g.indptr, g.indices, g.weights = saved["indptr"], saved["indices"], saved["weights"]
