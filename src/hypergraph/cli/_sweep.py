"""``hypergraph sweep``: hyperparameter search on Optuna; ``hypergraph sweep show``: results.

The sweep machinery (and Optuna) is imported inside the commands so ``hypergraph --help``
stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hypergraph.cli._app import _state, app, console, err_console
from hypergraph.exceptions import ConfigError

sweep_app = typer.Typer(help="Hyperparameter sweeps (Optuna; W&B sweep files).",
                        no_args_is_help=False, pretty_exceptions_enable=False)
app.add_typer(sweep_app, name="sweep")

_INFO = "sweep.json"  # in the sweep folder: {"storage": URL, "name": NAME}


def _mopt(kind: str) -> Any:
    return typer.Option(help=f"Search this {kind} module's declared space (instead of -c).",
                        rich_help_panel="Space from modules")


@sweep_app.callback(invoke_without_command=True)
def sweep(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Sweep file in W&B syntax (method, metric, parameters...).")
                      ] = None,
    storage: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL of the sweep storage (default sqlite:///OUT/sweep.db; "
        "postgresql://user@host/db for many machines).")] = None,
    name: Annotated[str | None, typer.Option(
        help="Sweep name in the storage (default: the file's name). The same storage and "
        "name join (or continue) the sweep.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Sweep folder: trial run folders, sweep.db (default sweeps/NAME).")
                   ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes started here.")] = 1,
    trials: Annotated[int | None, typer.Option(
        min=1, help="Number of trials (sets run_cap).")] = None,
    dataset: Annotated[str | None, _mopt("dataset")] = None,
    dataloader: Annotated[str | None, _mopt("dataloader")] = None,
    model: Annotated[str | None, _mopt("model")] = None,
    traversal: Annotated[str | None, _mopt("traversal")] = None,
    manager: Annotated[str | None, _mopt("manager")] = None,
    trainer: Annotated[str | None, _mopt("trainer")] = None,
    epochs: Annotated[int | None, typer.Option(
        min=1, help="Fix trainer.epochs (space from modules).",
        rich_help_panel="Space from modules")] = None,
    method: Annotated[str, typer.Option(
        help="grid, random or bayes (space from modules).",
        rich_help_panel="Space from modules")] = "bayes",
    metric: Annotated[str, typer.Option(
        help="Validation metric to optimise (space from modules).",
        rich_help_panel="Space from modules")] = "val.accuracy",
    print_space: Annotated[bool, typer.Option(
        "--print-space", help="Print the sweep as a W&B sweep file and exit.")] = False,
    seed: Annotated[int | None, typer.Option(
        help="Sampler seed (worker i of --workers uses SEED+i; default: random).")] = None,
    logger_: Annotated[list[str] | None, typer.Option(
        "--logger", help="Add a run logger to every trial, e.g. wandb (grouped by sweep).")
                       ] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an existing sweep (re-running the command does too; "
        "--resume refuses to start a new one).")] = False,
    heartbeat: Annotated[int, typer.Option(
        min=1, help="Seconds between heartbeats of a running trial.")] = 5,
    grace: Annotated[int, typer.Option(
        min=2, help="Seconds without heartbeat before a trial is failed and retried.")] = 20,
    worker: Annotated[bool, typer.Option("--worker", hidden=True)] = False,
) -> None:
    """Search hyperparameters: each trial is a run folder under OUT/trials/<number>.

    Give a W&B sweep file (-c) or modules (--model mlp --traversal ivalue ...) whose declared
    spaces are searched. Re-running the same command continues the sweep; the same --storage
    and --name on another machine joins it. `hypergraph sweep show OUT` prints the leaderboard
    and writes best.yaml and plots.
    """
    if ctx.invoked_subcommand is not None:
        return
    from hypergraph.loggers import check_logger_names
    from hypergraph.sweeps import SweepStore, load_sweep, space_from_modules, sweep_from_mapping

    check_logger_names(list(logger_ or []))  # before any trial, not in each
    names = {"dataset": dataset, "dataloader": dataloader, "model": model,
             "traversal": traversal, "manager": manager, "trainer": trainer}
    store_args = {"heartbeat_interval": heartbeat, "grace_period": grace}
    if worker:  # a worker started by --workers: the sweep is in the storage
        if storage is None or name is None or out is None:
            raise ConfigError("--worker needs --storage, --name and --out.")
        store = SweepStore(storage, **store_args)
        _work(store, name, store.spec(name), out, seed, logger_)
        return
    if config is not None and any(names.values()):
        raise ConfigError("Give either a sweep file (-c) or modules (--model ...), not both.")
    if config is not None:
        spec = load_sweep(config)
    elif any(names.values()) or print_space:
        spec = sweep_from_mapping(space_from_modules(names, epochs=epochs, method=method,
                                                     metric=metric, trials=trials),
                                  "(from modules)")
        spec.name = "-".join(v for v in names.values() if v) or "sweep"
    else:
        raise ConfigError("Give a sweep file (-c sweep.yaml) or modules to search (--model "
                          "mlp --traversal ivalue ...); --print-space writes a sweep file.")
    if trials is not None:
        spec.run_cap = trials
        spec.raw["run_cap"] = trials
    if print_space:
        console.print(spec.to_yaml(), end="", markup=False, highlight=False)
        return
    spec.budget()  # a sweep without a budget fails here, before anything is written
    name = name or spec.name or "sweep"
    out = out if out is not None else Path("sweeps") / name
    if storage is None:
        storage = f"sqlite:///{(out / 'sweep.db').resolve()}"
    store = SweepStore(storage, **store_args)
    exists = name in store.names()
    if resume and not exists:
        raise ConfigError(f"--resume: no sweep named '{name}' in the storage to continue.")
    if not exists and any((out / "trials").glob("*")):
        raise ConfigError(f"'{out / 'trials'}' holds the trials of another sweep (this storage "
                          f"has no sweep '{name}'); give another --out.")
    store.create(name, spec)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(spec.to_yaml())
    (out / _INFO).write_text(json.dumps({"storage": storage, "name": name}) + "\n")
    err_console.print(f"Sweep '{escape(name)}': {spec.method}, {spec.budget()} trials, "
                      f"{workers} worker(s), storage {escape(store.url.split('@')[-1])}")
    if workers == 1:
        _work(store, name, spec, out, seed, logger_)
    else:
        _spawn(workers, storage, name, out, seed, logger_, heartbeat, grace)
    _print_status(store, name, spec.budget())


def _work(store: Any, name: str, spec: Any, out: Path, seed: int | None,
          loggers: list[str] | None) -> None:
    from hypergraph.sweeps import run_worker

    try:
        run_worker(store, name, spec, out, seed=seed, loggers=loggers)
    except KeyboardInterrupt:
        err_console.print("Worker stopped; its trial was given back to the sweep.")
        raise


def _spawn(k: int, storage: str, name: str, out: Path, seed: int | None,
           loggers: list[str] | None, heartbeat: int, grace: int) -> None:
    """Start ``k`` worker processes of this command and wait for them."""
    base = [sys.executable, "-c", "from hypergraph.cli import main; main()"]
    if _state.get("debug"):
        base.append("--debug")
    for plugin in _state.get("plugins") or []:
        base += ["--plugins", plugin]
    # k processes share the cores: one BLAS/OpenMP pool each of cores/k threads
    threads = str(max(1, (os.cpu_count() or 1) // k))
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **os.environ}
    procs = []
    for i in range(k):
        cmd = [*base, "sweep", "--worker", "--storage", storage, "--name", name,
               "--out", str(out), "--heartbeat", str(heartbeat), "--grace", str(grace)]
        if seed is not None:
            cmd += ["--seed", str(seed + i)]
        for lg in loggers or []:
            cmd += ["--logger", lg]
        procs.append(subprocess.Popen(cmd, env={**env, "HYPERGRAPH_SWEEP_WORKER": str(i)}))
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        raise
    bad = [(p.pid, c) for p, c in zip(procs, codes, strict=True) if c != 0]
    for pid, code in bad:
        err_console.print(f"Worker {pid} ended with exit code {code}.")


def _print_status(store: Any, name: str, budget: int) -> None:
    from hypergraph.sweeps import summary

    study = store.load(name)
    store.maintain(study)
    done = store.finished(study)
    counts = summary(study)
    console.print(f"Sweep '{escape(name)}': {done}/{budget} finished; " + ", ".join(
        f"{v} {k}" for k, v in sorted(counts.items())))
    if done < budget:
        err_console.print("The sweep is not finished: run the same command again to continue.")
        raise typer.Exit(1)


@sweep_app.command("show")
def show(
    folder: Annotated[Path | None, typer.Argument(
        help="Sweep folder (holds sweep.json, written by `hypergraph sweep`).")] = None,
    storage: Annotated[str | None, typer.Option(help="Storage URL (instead of a folder).")
                       ] = None,
    name: Annotated[str | None, typer.Option(help="Sweep name (with --storage).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Where best.yaml and plots/ go (default: the sweep folder, or "
        "sweeps/NAME).")] = None,
    top: Annotated[int, typer.Option(min=1, help="Rows of the leaderboard.")] = 10,
    plots: Annotated[bool, typer.Option(help="Write Optuna's plots.")] = True,
    server: Annotated[str | None, typer.Option(help="Ask this control server instead.")
                      ] = None,
    token: Annotated[str | None, typer.Option(help="Admin token (with --server).",
                                              envvar="HYPERGRAPH_TOKEN", show_envvar=False)
                     ] = None,
) -> None:
    """Print the leaderboard; write the best trial's config as best.yaml, and plots."""
    if server is not None:  # through the control server (hypergraph.cli._server)
        if token is None or name is None:
            raise ConfigError("--server needs --token and --name.")
        from hypergraph.cli._server import show_remote

        show_remote(server, token, name, top)
        return
    from hypergraph.sweeps import SweepStore, leaderboard, summary, write_best, write_plots

    if folder is not None:
        info = folder / _INFO
        if not info.is_file():
            raise ConfigError(f"'{folder}' is not a sweep folder (no {_INFO}); give the folder "
                              "`hypergraph sweep` wrote, or --storage URL --name NAME.")
        data = json.loads(info.read_text())
        storage, name = storage or data["storage"], name or data["name"]
    if storage is None:
        raise ConfigError("Give a sweep folder or --storage URL (with --name).")
    store = SweepStore(storage)
    if name is None:
        found = store.names()
        if len(found) != 1:
            raise ConfigError("Give --name: the storage holds the sweeps "
                              f"{', '.join(found) or '(none)'}.")
        name = found[0]
    study = store.load(name)
    spec = store.spec(name)
    dest = out or folder or Path("sweeps") / name
    rows = leaderboard(study)
    table = Table(title=f"Sweep {escape(name)}: {spec.goal} val.{spec.metric}")
    for col in ("#", "trial", "state", "value", "params", "worker"):
        table.add_column(col)
    for i, r in enumerate(rows[:top]):
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items())
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        table.add_row(str(i + 1), str(r["number"]), r["state"], value, escape(params),
                      escape(r["worker"]))
    console.print(table)
    counts = summary(study)
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if counts.get("complete"):
        path = write_best(study, dest / "best.yaml")
        console.print(f"Best trial {study.best_trial.number}: val.{spec.metric} = "
                      f"{study.best_value:.4f}; config: {escape(str(path))} "
                      f"(hypergraph train -c {escape(str(path))})")
        if plots:
            for p in write_plots(study, dest / "plots"):
                console.print(f"Plot: {escape(str(p))}")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
