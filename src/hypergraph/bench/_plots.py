"""Bench plots: accuracy against gradient steps, total compute and wall time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypergraph.bench._report import summarise

__all__ = ["plot_bench"]

_AXES = (("steps", "gradient steps"), ("compute", "compute (forward-pass equivalents)"),
         ("wall_s", "wall time (s)"))


def plot_bench(results: dict[str, Any], out_dir: str | Path,
               reference: str = "uniform", focus: str = "ivalue") -> list[Path]:
    """One PNG per dataset (``curves_<dataset>.png``) with three panels; returns the paths.

    Every method gets its own colour; ``reference`` and ``focus`` are drawn thick with a band of
    ± one standard deviation over seeds, variants of ``focus`` (``focus_*``) dashed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    paths = []
    for dataset, block in summarise(results, reference).items():
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        methods = block["methods"]
        cmap = plt.get_cmap("tab20")  # strong colours (even entries) first, then light ones
        colours = [cmap(j) for j in (*range(0, 20, 2), *range(1, 20, 2))]
        for i, (method, s) in enumerate(methods.items()):
            main = method in (reference, focus)
            style = {"color": colours[i % len(colours)], "lw": 2.2 if main else 1.2,
                     "ls": "--" if method.startswith(f"{focus}_") else "-"}
            for ax, (key, _) in zip(axes, _AXES, strict=True):
                x = s[key]
                ax.plot(x, s["acc_mean"], label=f"{method} (n={len(s['seeds'])})", **style)
                if main:
                    ax.fill_between(x, s["acc_mean"] - s["acc_std"],
                                    s["acc_mean"] + s["acc_std"], color=style["color"],
                                    alpha=0.15)
        for ax, (_, label) in zip(axes, _AXES, strict=True):
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
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
