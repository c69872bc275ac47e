"""``hypergraph ace replay`` and ``hypergraph ace report``: ACE against a table of results.

Heavy imports (numpy's users, scipy, optuna, matplotlib) happen inside the commands so that
``hypergraph --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from hypergraph.cli._app import app, console
from hypergraph.exceptions import ConfigError, DataError

ace_app = typer.Typer(
    help="ACE, the Adaptive Combination Engine: replay search methods against a table of "
    "recorded results, and report what ACE learned from it.",
    no_args_is_help=True,
)
app.add_typer(ace_app, name="ace")

_METHODS = ("ace", "random", "tpe", "gp")


def _slots(text: str) -> list[str]:
    slots = [s.strip() for s in text.split(",") if s.strip()]
    if not slots:
        raise ConfigError("--slots needs at least one column name (e.g. --slots model,traversal).")
    return slots


def _load(table: Path, slots: str, score: str, truth: str | None, minimize: bool) -> Any:
    from hypergraph.ace._replay import Table

    if not table.is_file():
        raise DataError(f"The table '{table}' does not exist.")
    return Table.from_csv(str(table), _slots(slots), score, truth, maximize=not minimize)


TableArg = Annotated[Path, typer.Argument(help="CSV with one column per slot and a score column.")]
SlotsOpt = Annotated[str, typer.Option("--slots", help="Slot columns, comma-separated.")]
ScoreOpt = Annotated[str, typer.Option("--score", help="Column of the score a search sees.")]
TruthOpt = Annotated[str | None, typer.Option(
    "--truth", help="Column the search is judged by (regret); default: none.")]
MinOpt = Annotated[bool, typer.Option("--minimize", help="Smaller scores are better.")]


@ace_app.command()
def replay(
    table: TableArg,
    slots: SlotsOpt,
    score: ScoreOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="result.json to write.")],
    truth: TruthOpt = None,
    budget: Annotated[int, typer.Option(help="Evaluations per seed.")] = 50,
    seeds: Annotated[int, typer.Option(help="Seeds 0..S-1, one run each.")] = 20,
    method: Annotated[str, typer.Option(help="ace, random, tpe or gp.")] = "ace",
    minimize: MinOpt = False,
) -> None:
    """Run a search method against TABLE as an oracle; write the rows each seed visited.

    A combination's score is its row's --score; combinations not in the table are never
    evaluated. result.json is {"method": ..., "runs": [{"seed": s, "rows": [row indices in
    evaluation order]}]}. With --truth, prints the median regret curve (best truth in the table
    minus the truth of the best row found so far by --score).
    """
    if method not in _METHODS:
        from hypergraph.exceptions import closest

        near = closest(method, _METHODS)
        hint = f" Did you mean '{near}'?" if near else ""
        raise ConfigError(f"Unknown --method '{method}'.{hint} Valid choices: "
                          f"{', '.join(_METHODS)}.")
    if budget < 1:
        raise ConfigError(f"--budget must be at least 1. Got {budget} instead.")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1. Got {seeds} instead.")
    data = _load(table, slots, score, truth, minimize)
    if method in ("tpe", "gp"):
        import torch

        torch.set_num_threads(1)
    from hypergraph.ace._replay import regret_curve
    from hypergraph.ace._replay import replay as run_replay

    runs: list[dict[str, Any]] = []
    with console.status(f"Replaying {method} ({seeds} seeds x {budget} evaluations)..."):
        for seed in range(seeds):
            runs.append({"seed": seed, "rows": [int(r) for r in
                                                run_replay(data, method, budget, seed)]})
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"method": method, "runs": runs}))
    except OSError as err:
        raise ConfigError(f"Cannot write '{out}': {err.strerror or err}.") from None
    distinct = len(data.rows_of)
    console.print(f"{method}: {seeds} runs of {len(runs[0]['rows'])} evaluations on "
                  f"{len(data)} rows ({distinct} combinations); wrote {out}.")
    if truth:
        import numpy as np

        from hypergraph.ace._report import median_curve

        med, q1, q3 = median_curve([regret_curve(data, r["rows"]) for r in runs])
        grid = sorted({1, *[int(x) for x in np.unique(np.geomspace(1, len(med), 12).round())],
                       len(med)})
        view = RichTable(title=f"median regret of {method} ({seeds} seeds)")
        for col in ("evaluations", "median", "q1", "q3"):
            view.add_column(col, justify="right")
        for n in grid:
            view.add_row(str(n), f"{med[n - 1]:.4g}", f"{q1[n - 1]:.4g}", f"{q3[n - 1]:.4g}")
        console.print(view)


@ace_app.command()
def report(
    table: TableArg,
    slots: SlotsOpt,
    score: ScoreOpt,
    truth: TruthOpt = None,
    results: Annotated[list[Path] | None, typer.Option(
        "--results", help="result.json of `ace replay` (repeatable): regret curves; the first "
        "run of the first file is what ACE is fitted on.")] = None,
    top: Annotated[int, typer.Option(help="Rows of the ranking shown.")] = 10,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder of the plots.")] = Path(
        "ace_report"),
    minimize: MinOpt = False,
    seed: Annotated[int, typer.Option(help="Seed of the ACE fit.")] = 0,
) -> None:
    """Fit ACE on a table of results: ranking, predicted vs observed, regret and effect plots.

    ACE is fitted on every row, or, with --results, on the rows visited by the first run of
    the first file: then predicted vs observed is measured on the rows it did not see.
    """
    import numpy as np
    from scipy.stats import spearmanr

    from hypergraph.ace import ACE
    from hypergraph.ace._replay import regret_curve
    from hypergraph.ace._report import plot_effects, plot_regret

    if top < 1:
        raise ConfigError(f"--top must be at least 1. Got {top} instead.")
    data = _load(table, slots, score, truth, minimize)
    loaded: list[tuple[str, dict[str, Any]]] = []
    for path in results or []:
        try:
            res = json.loads(path.read_text())
            rows = [r["rows"] for r in res["runs"]]
            label = str(res["method"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"'{path}' is not a result.json of `hypergraph ace replay`: "
                            f"{err}.") from None
        if any(not isinstance(i, int) or not 0 <= i < len(data) for r in rows for i in r):
            raise DataError(f"'{path}' names rows that are not in '{table}' ({len(data)} rows): "
                            "was it replayed on another table?")
        loaded.append((label, res))
    fit_rows = (list(dict.fromkeys(loaded[0][1]["runs"][0]["rows"])) if loaded
                else list(range(len(data))))
    ace = ACE(data.space, seed=seed, maximize=data.maximize)
    for r in fit_rows:
        ace.tell(list(data.values[r]), float(data.score[r]))
    held = [r for r in range(len(data)) if r not in set(fit_rows)] or list(range(len(data)))
    mean, _ = ace.predict([list(data.values[r]) for r in held])
    rho = float(spearmanr(mean, data.score[held]).statistic) if len(held) > 2 else float("nan")
    where = "held-out rows" if len(held) < len(data) else "all rows (in-sample)"

    view = RichTable(title=f"ACE ranking (fitted on {len(fit_rows)} of {len(data)} rows)")
    for col in ("#", *data.slots, "predicted", "std", "observed"):
        view.add_column(col, justify="right" if col in ("#", "predicted", "std", "observed")
                        else "left")
    for i, entry in enumerate(ace.ranking(top)):
        obs = entry["observed"]
        view.add_row(str(i + 1), *[entry["combo"][s] for s in data.slots],
                     f"{entry['mean']:.4g}", f"{entry['std']:.2g}",
                     "-" if obs is None else f"{obs:.4g}")
    console.print(view)
    console.print(f"Predicted vs observed score on {len(held)} {where}: Spearman {rho:.3f}, "
                  f"mean absolute error {float(np.mean(np.abs(mean - data.score[held]))):.4g}.")
    effects = ace.effects()
    ranked = sorted(effects["importance"].items(), key=lambda kv: -kv[1])
    console.print("Slot importance (std of the choices' effects): " + ", ".join(
        f"{k} {v:.3g}" for k, v in ranked))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"Cannot create '{out_dir}': {err.strerror or err}.") from None
    plot_effects(effects["main"], out_dir / "effects.png")
    written = [out_dir / "effects.png"]
    if loaded and truth:
        curves = {label: [regret_curve(data, r["rows"]) for r in res["runs"]]
                  for label, res in loaded}
        plot_regret(curves, out_dir / "regret.png")
        written.append(out_dir / "regret.png")
        for label, runs in curves.items():
            final = [c[-1] for c in runs]
            console.print(f"{label}: median final regret {float(np.median(final)):.4g} after "
                          f"{min(len(c) for c in runs)} evaluations ({len(runs)} runs).")
    elif loaded:
        console.print("No --truth column: regret curves are not drawn.")
    console.print("Wrote " + ", ".join(str(p) for p in written) + ".")
