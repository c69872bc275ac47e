"""Plots of runs and graphs (matplotlib, headless).

* :func:`plot_learning_curves` - loss and a validation metric per epoch, several runs overlaid.
* :func:`plot_graph` - a graph in 2-D (PCA of the features, or a spring layout for small
  graphs), nodes coloured by label and marked by split, optionally a second panel coloured by
  how often training visited each node.
* :func:`load_history` - the epoch records of a run folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hypergraph.exceptions import DataError, InvalidParameterError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from hypergraph.graph import HyperGraph

__all__ = ["check_image_path", "graph_layout", "image_formats", "load_history",
           "plot_bench_curves", "plot_graph",
           "plot_learning_curves"]

_SPLIT_MARKERS = (("train", "o"), ("val", "s"), ("test", "^"))
LAYOUTS = ("auto", "pca", "spring")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_formats() -> list[str]:
    """File extensions matplotlib can write here (``png``, ``pdf``, ``svg``...), sorted.

    ``pgf`` is listed only when its TeX program (``rcParams["pgf.texsystem"]``) is installed.
    """
    import shutil

    import matplotlib
    from matplotlib.backend_bases import FigureCanvasBase

    formats = set(FigureCanvasBase.get_supported_filetypes())
    if shutil.which(str(matplotlib.rcParams["pgf.texsystem"])) is None:
        formats.discard("pgf")
    return sorted(formats)


def _save(fig: Any, path: Path) -> None:
    """``fig.savefig`` whose failures (no permission, a full disk...) raise DataError."""
    try:
        fig.savefig(path, dpi=110)
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"Could not write the image '{path}': {err}.") from err


def check_image_path(path: str | Path, option: str = "--out") -> Path:
    """Refuse an image path matplotlib cannot write, before any work is done.

    Raises:
        InvalidParameterError: no extension, or one matplotlib cannot write (the message lists
            the formats it can).
        DataError: ``path`` is a folder, or its parent folder does not exist.
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    formats = image_formats()
    if ext not in formats:
        given = f"its extension '.{ext}' is not an image format matplotlib can write" if ext \
            else "it has no file extension"
        raise InvalidParameterError(f"{option} '{path}': {given}; end it with one of "
                                    f"{', '.join('.' + f for f in formats)}.")
    if path.is_dir():
        raise DataError(f"{option} '{path}' is a folder, expected a file; give a file name "
                        f"such as '{path / ('plot.' + ext)}'.")
    if not path.parent.is_dir():
        what = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise DataError(f"{option} '{path}': the folder '{path.parent}' {what}; create it "
                        "first or write elsewhere.")
    return path


def load_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epoch records of ``run_dir/history.jsonl``.

    Raises:
        DataError: the folder holds no readable ``history.jsonl``.
    """
    path = Path(run_dir) / "history.jsonl"
    if not Path(run_dir).is_dir():
        raise DataError(f"Run folder '{run_dir}' " + (
            "is a file, expected a run folder." if Path(run_dir).exists() else
            "does not exist."))
    if not path.is_file():
        raise DataError(f"'{run_dir}' holds no history.jsonl: it is not a run folder written by "
                        "`hypergraph train`, or the run has not finished an epoch yet.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"'{path}' cannot be read as UTF-8 text: {err}.") from None
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"'{path}' line {i} is not valid JSON: {err.msg}.") from None
        if not isinstance(record, dict):
            raise DataError(f"'{path}' line {i} is not an epoch record (a JSON object); the "
                            "file is damaged.")
        records.append(record)
    return records


def plot_learning_curves(histories: Sequence[tuple[str, list[dict[str, Any]]]],
                         path: str | Path, metric: str = "accuracy") -> Path:
    """Training loss, validation loss and validation ``metric`` per epoch, one colour per run.

    Args:
        histories: ``(label, history)`` pairs; a history is the list of ``history.jsonl`` lines.
        path: Where to write the PNG.
        metric: Validation metric of the right-hand panel (``loss``, ``accuracy``, ``r2``...).
    """
    check_image_path(path, "path")
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, history) in enumerate(histories):
        c = colours[i % len(colours)]
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["train_loss"] for h in history], color=c,
                     label=f"{label} train")
        axes[0].plot(epochs, [h["val"].get("loss") for h in history], "--", color=c,
                     label=f"{label} val")
        axes[1].plot(epochs, [h["val"].get(metric, math.nan) for h in history], color=c,
                     label=label)
        best = [h for h in history if h.get("best")]
        if best:
            b = best[-1]
            axes[1].plot([b["epoch"]], [b["val"].get(metric, math.nan)], "*", color=c,
                         markersize=10)
    axes[0].set(xlabel="epoch", ylabel="loss", title="Loss (solid: train, dashed: val)")
    axes[1].set(xlabel="epoch", ylabel=f"val {metric}", title=f"Validation {metric} (*: best)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    losses = [h["train_loss"] for _, hist in histories for h in hist]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 100:
        axes[0].set_yscale("log")  # losses spanning decades stay readable
    fig.tight_layout()
    path = Path(path)
    try:
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def graph_layout(graph: HyperGraph, features: np.ndarray | None = None, layout: str = "auto",
                 seed: int = 0) -> np.ndarray:
    """2-D positions ``[nodes, 2]`` of ``graph``'s nodes.

    Args:
        graph: The graph.
        features: Per-node features (rows in node order) for ``pca``; ``None`` allows only
            ``spring``.
        layout: ``pca`` (first two principal components of the features), ``spring``
            (force-directed over the edges; slow above a few thousand nodes) or ``auto``
            (spring up to 500 nodes or without features, else PCA).
        seed: Seed of the spring layout.
    """
    seed = int(seed) & 0xFFFFFFFF
    if layout not in LAYOUTS:
        raise InvalidParameterError(f"The layout must be one of {', '.join(LAYOUTS)}, got "
                                    f"'{layout}'.")
    n = graph.num_nodes
    if layout == "auto":
        layout = "spring" if n <= 500 or features is None else "pca"
    if layout == "pca":
        if features is None:
            raise DataError("A PCA layout needs the node features in memory; this dataset is "
                            "file-backed. Use --layout spring.")
        x = np.asarray(features, np.float64).reshape(n, -1)
        if x.shape[1] == 1:
            return np.column_stack([x[:, 0], np.zeros(n)])
        from sklearn.decomposition import PCA

        pos: np.ndarray = PCA(n_components=2, random_state=seed).fit_transform(x)
        return pos
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(n))
    src, dst, w = graph.edge_list()
    keep = src < dst
    g.add_weighted_edges_from(zip(src[keep].tolist(), dst[keep].tolist(),
                                  w[keep].tolist(), strict=True))
    placed = nx.spring_layout(g, seed=seed, iterations=60)
    return np.array([placed[i] for i in range(n)], dtype=np.float64)


def node_features(graph: HyperGraph, features: np.ndarray) -> np.ndarray:
    """Per-node features from per-row ``features``: a point's row, or a cluster's member mean."""
    rows = graph.store_row
    out = np.zeros((graph.num_nodes, *features.shape[1:]), np.float64)
    point = rows >= 0
    out[point] = features[rows[point]]
    if graph.members is not None and not point.all():
        ptr, members = graph.members
        for i in np.flatnonzero(~point):
            m = members[ptr[i]:ptr[i + 1]]
            if m.size:
                out[i] = features[m].mean(axis=0)
    return out


def plot_graph(graph: HyperGraph, path: str | Path, features: np.ndarray | None = None,
               visits: np.ndarray | None = None, layout: str = "auto", title: str = "",
               max_edges: int = 20_000, seed: int = 0, regression: bool | None = None) -> Path:
    """Draw ``graph``: nodes coloured by label and marked by split (o train, s val, ^ test).

    Args:
        graph: The graph to draw.
        path: Where to write the PNG.
        features: Per-node features (node order) for the PCA layout.
        visits: Optional per-node training visit counts (a run's ``visits.npy``): adds a panel
            with training nodes coloured by visits.
        layout: See :func:`graph_layout`.
        title: Figure title.
        max_edges: At most this many (undirected) edges are drawn, a fixed random sample.
        seed: Seed of the layout and of the edge sample.
        regression: Colour labels on a continuous scale (default: guessed from the labels).
    """
    check_image_path(path, "path")
    if max_edges < 0:
        raise InvalidParameterError(f"max_edges must be >= 0; got {max_edges}.")
    if visits is not None:
        visits = np.asarray(visits)
        if visits.shape != (graph.num_nodes,):
            raise DataError(f"The visit counts have shape {visits.shape} but the graph has "
                            f"{graph.num_nodes} nodes: they come from a different graph.")
    seed = int(seed) & 0xFFFFFFFF  # any run seed (negative ones too), as RngStreams takes it
    pos = graph_layout(graph, features, layout, seed)
    plt = _pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    panels = 1 if visits is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(7.5 * panels, 6.5), squeeze=False)
    src, dst, _ = graph.edge_list()
    keep = np.flatnonzero(src < dst)
    if keep.size > max_edges:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_edges, replace=False))
    segments = np.stack([pos[src[keep]], pos[dst[keep]]], axis=1)
    n = graph.num_nodes
    size = float(np.clip(20_000 / max(n, 1), 4, 60))
    label = np.asarray(graph.label)
    if regression is None:
        regression = label.dtype.kind == "f"
    split = np.asarray(graph.split)

    def draw_edges(ax: Axes) -> None:
        alpha = float(np.clip(12 / max(keep.size, 1) ** 0.5, 0.03, 0.5))  # dense: lighter
        ax.add_collection(LineCollection(list(segments), colors="0.55", linewidths=0.5, alpha=alpha,
                                         zorder=1))

    ax = axes[0, 0]
    draw_edges(ax)
    if regression:
        cmap, norm = plt.get_cmap("viridis"), plt.Normalize(float(label.min()),
                                                           float(label.max()))
        colours = cmap(norm(label.astype(np.float64)))
    else:
        classes = np.unique(label)
        cmap = plt.get_cmap("tab10" if classes.size <= 10 else "tab20")
        index = np.searchsorted(classes, label)
        colours = cmap(index % cmap.N)
    for code, (_name, marker) in enumerate(_SPLIT_MARKERS):
        sel = split == code
        ax.scatter(pos[sel, 0], pos[sel, 1], c=colours[sel], marker=marker,
                   s=size if code == 0 else size * 1.6,
                   edgecolors="none" if code == 0 else "black", linewidths=0.4, zorder=2)
    handles = [Line2D([], [], ls="", marker=m, color="0.3", markeredgecolor="black",
                      label=f"{name} ({int((split == c).sum())})")
               for c, (name, m) in enumerate(_SPLIT_MARKERS)]
    if regression:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="target")
    elif classes.size <= 20:
        handles += [Line2D([], [], ls="", marker="o", color=cmap(i % cmap.N), label=str(c))
                    for i, c in enumerate(classes.tolist())]
    ax.legend(handles=handles, fontsize=7, loc="best", ncol=2, framealpha=0.8,
              title="split / label", title_fontsize=8)
    ax.set_title(f"Nodes by label and split ({n} nodes, {graph.num_edges // 2} edges"
                 + (f", {keep.size} drawn" if keep.size < graph.num_edges // 2 else "") + ")")

    if visits is not None:
        ax2 = axes[0, 1]
        draw_edges(ax2)
        train = split == 0
        other = ~train
        ax2.scatter(pos[other, 0], pos[other, 1], c="0.8", s=size, marker="x",
                    linewidths=0.6, zorder=2)
        order = np.flatnonzero(train)[np.argsort(visits[train], kind="stable")]
        v = visits[order].astype(np.float64)
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        spread = (v - lo) / (hi - lo) if hi > lo else np.full(v.size, 0.5)
        sc = ax2.scatter(pos[order, 0], pos[order, 1], c=v, cmap="magma_r",
                         norm=plt.Normalize(lo if hi > lo else 0.0, max(hi, 1.0)),
                         s=size * (0.5 + 2.0 * spread), edgecolors="none", zorder=3)
        fig.colorbar(sc, ax=ax2, label="training visits")
        unvisited = int((visits[train] == 0).sum())
        ax2.set_title(f"Training visits: {lo:g}-{hi:g} per node, {unvisited} of "
                      f"{int(train.sum())} never visited (x: val/test)")
    for a in axes[0]:
        a.set_xticks([])
        a.set_yticks([])
        a.autoscale_view()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    try:
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


#: The three x axes of a bench plot: field of a method's summary and its label.
_BENCH_AXES = (("steps", "gradient steps"), ("compute", "compute (forward-pass equivalents)"),
               ("wall_s", "wall time (s)"))


def plot_bench_curves(summary: dict[str, Any], out_dir: str | Path,
                      reference: str = "uniform", focus: str = "ivalue") -> list[Path]:
    """One PNG per dataset (``curves_<dataset>.png``) of a bench summary, three panels:
    test accuracy against gradient steps, total compute and wall time; returns the paths.

    Args:
        summary: ``hypergraph.bench.summarise(results, reference)``.
        out_dir: Folder for the images.
        reference: Drawn thick with a ± one standard deviation band, its final accuracy as a
            grey line.
        focus: Drawn thick with a band too; its variants (``focus_*``) dashed.
    """
    plt = _pyplot()
    out = Path(out_dir)
    paths = []
    for dataset, block in summary.items():
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        methods = block["methods"]
        cmap = plt.get_cmap("tab20")  # strong colours (even entries) first, then light ones
        colours = [cmap(j) for j in (*range(0, 20, 2), *range(1, 20, 2))]
        for i, (method, s) in enumerate(methods.items()):
            main = method in (reference, focus)
            style = {"color": colours[i % len(colours)], "lw": 2.2 if main else 1.2,
                     "ls": "--" if method.startswith(f"{focus}_") else "-"}
            for ax, (key, _) in zip(axes, _BENCH_AXES, strict=True):
                x = s[key]
                ax.plot(x, s["acc_mean"], label=f"{method} (n={len(s['seeds'])})", **style)
                if main:
                    ax.fill_between(x, s["acc_mean"] - s["acc_std"],
                                    s["acc_mean"] + s["acc_std"], color=style["color"],
                                    alpha=0.15)
        for ax, (_, label) in zip(axes, _BENCH_AXES, strict=True):
            ax.axhline(block["target"], color="grey", ls="--", lw=0.8)
            ax.set(xlabel=label, ylabel="test accuracy (best val so far)")
            ax.grid(alpha=0.3)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        lo = min(float(s["acc_mean"][len(s["acc_mean"]) // 5]) for s in block["methods"].values())
        for ax in axes:
            ax.set_ylim(bottom=max(0.0, lo - 0.05))
        axes[0].legend(fontsize=7, ncol=2 if len(methods) > 6 else 1, loc="lower right")
        fig.suptitle(f"{dataset}: grey line = {reference}'s final accuracy; bands = ± 1 std "
                     f"over seeds ({reference}, {focus})")
        fig.tight_layout()
        path = out / f"curves_{dataset}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths
