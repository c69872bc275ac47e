"""``hypergraph`` commands: train, modules.

Errors caused by input (unknown names, bad values, malformed files, incompatible modules) exit
with code 2 and one paragraph on stderr; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hypergraph import registry
from hypergraph.config import RunConfig
from hypergraph.exceptions import ConfigError, HyperGraphError

app = typer.Typer(
    name="hypergraph",
    help="Train models by traversing a graph of data points. Run `hypergraph train` for the "
    "default run on the embedded digits dataset; `hypergraph modules` lists what can be combined.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
_state: dict[str, Any] = {"debug": False}


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    plugins: Annotated[list[str] | None, typer.Option(
        "--plugins", help="Import a module that registers extra modules (repeatable).")] = None,
) -> None:
    _state["debug"] = debug
    _state["plugins"] = list(plugins or [])  # reset: main() may run several times in-process
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if plugins:
        registry.load_plugins(plugins)


def _opt(kind: str) -> Any:
    from hypergraph.config import DEFAULTS

    return typer.Option(help=f"{kind.capitalize()} module; default {DEFAULTS[kind]} (choices: "
                        f"`hypergraph modules --kind {kind}`).", rich_help_panel="Modules")


def cli_config(config: Path | None, names: dict[str, str | None], overrides: list[str],
               plugins: list[str] | None = None) -> RunConfig:
    """The run config of a command: ``-c`` file (or defaults), module names, ``--set`` values.

    Args:
        config: Path of a run config YAML, or ``None`` for the defaults.
        names: ``kind -> module name`` given as options (``None`` = keep the config's).
        overrides: Further ``KEY=VALUE`` overrides (``seed=``, ``kind.param=``...).
        plugins: Plugin modules named on this command, added to the config's and the global ones.
    """
    from hypergraph.config import RunConfig, apply_overrides, load_config

    cfg = load_config(config) if config is not None else RunConfig()
    named = [f"{kind}.name={name}" for kind, name in names.items() if name is not None]
    cfg = apply_overrides(cfg, [*named, *overrides])
    extra = set(_state.get("plugins") or []) | set(plugins or [])
    if extra:
        cfg = cfg.model_copy(update={"plugins": sorted(set(cfg.plugins) | extra)})
    return cfg


@app.command()
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c",
                                                help="Run config YAML (e.g. a run's config.yaml)."
                                                )] = None,
    dataset: Annotated[str | None, _opt("dataset")] = None,
    dataloader: Annotated[str | None, _opt("dataloader")] = None,
    model: Annotated[str | None, _opt("model")] = None,
    traversal: Annotated[str | None, _opt("traversal")] = None,
    manager: Annotated[str | None, _opt("manager")] = None,
    trainer: Annotated[str | None, _opt("trainer")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="Override a hyperparameter: KIND.PARAM=VALUE, e.g. model.lr=0.01 "
        "(repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed (fixes the whole run).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Shorthand for --set trainer.epochs=N.")
                      ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run folder (default: runs/<time>-<dataset>-<traversal>-s<seed>).")
                   ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="Continue the killed run in this folder from its last checkpoint, "
        "with its own config.yaml (no other run options).")] = None,
    logger_: Annotated[list[str] | None, typer.Option(
        "--logger", help="Add a logger: console, jsonl, csv or wandb (repeatable; jsonl is "
        "always on).")] = None,
) -> None:
    """Train one combination of modules and write a run folder.

    With no options this trains an MLP on scikit-learn's digits over a kNN graph. The run folder
    holds config.yaml (pass it back with -c to repeat the run), metrics.json, history.jsonl,
    learning_curve.png and the best checkpoint. --resume RUN continues a killed run and ends
    with the same metrics as an uninterrupted one.
    """
    from hypergraph.run import default_run_dir
    from hypergraph.run import resume as run_resume
    from hypergraph.run import train as run_train
    from hypergraph.trainers import Callback

    if resume is not None:
        given = [name for name, value in (
            ("--config", config), ("--dataset", dataset), ("--dataloader", dataloader),
            ("--model", model), ("--traversal", traversal), ("--manager", manager),
            ("--trainer", trainer), ("--set", set_), ("--seed", seed), ("--epochs", epochs),
            ("--device", device), ("--out", out), ("--logger", logger_)) if value]
        if given:
            raise ConfigError(f"--resume reads the run's own config.yaml; it cannot be combined "
                              f"with {', '.join(given)}.")
        if (resume / "config.yaml").is_file() and not (resume / "last.pt").is_file():
            err_console.print(f"{resume} holds no last.pt (killed before its first "
                              "checkpoint): the run starts again from the beginning.")
    extra = [f"seed={seed}"] if seed is not None else []
    extra += [f"device={device}"] if device is not None else []
    extra += [f"trainer.epochs={epochs}"] if epochs is not None else []
    cfg = cli_config(config, {"dataset": dataset, "dataloader": dataloader, "model": model,
                              "traversal": traversal, "manager": manager, "trainer": trainer},
                     [*extra, *(set_ or [])])
    if logger_:
        cfg = cfg.model_copy(update={"loggers": list(dict.fromkeys([*cfg.loggers, *logger_]))})
    out_dir = resume if resume is not None else (out if out is not None
                                                 else default_run_dir(cfg))
    callbacks: list[Callback] = []
    bar = None
    if progress:
        from hypergraph.cli._progress import RichProgress

        bar = RichProgress(err_console)
        callbacks.append(bar)
    try:
        result = (run_resume(out_dir, callbacks=callbacks) if resume is not None
                  else run_train(cfg, out_dir, callbacks=callbacks))
    finally:
        if bar is not None:
            bar.close()
    table = Table(title=f"Run {escape(str(out_dir))}", show_header=True)
    table.add_column("split")
    for key in result["test"]:
        table.add_column(key, justify="right")
    for split in ("val", "test"):
        table.add_row(split, *[f"{result[split].get(k, float('nan')):.4f}" for k in result["test"]])
    console.print(table)
    console.print(f"samples seen: {result['samples_seen']}  steps: {result['steps']}  "
                  f"epochs: {result['epochs']} ({result['stop_reason']})  "
                  f"wall: {result['wall_s']:.1f}s")
    console.print(f"Run folder: {escape(str(out_dir))}")


@app.command()
def modules(
    kind: Annotated[str | None, typer.Option(help="Only this kind (e.g. traversal).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every registered module with its tags, requirements and hyperparameter space."""
    classes = registry.all_modules(kind)
    described = [registry.describe(cls) for cls in classes]
    if as_json:
        console.print_json(json.dumps(described))
        return
    table = Table(show_lines=True)
    for col in ("kind", "name", "summary", "tags", "requires", "hyperparameters"):
        table.add_column(col)
    for d in described:
        space = "\n".join(f"{p}={s['default']!r} {s['range']}" for p, s in d["space"].items())
        table.add_row(d["kind"], d["name"], d["summary"], ", ".join(d["tags"]),
                      ", ".join(d["requires"]), space)
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning input errors into exit code 2.

    ``--debug`` is accepted anywhere on the command line (``hypergraph train --debug`` too).
    """
    from hypergraph.cli._agent_args import translate_agent_args

    args = translate_agent_args(list(sys.argv[1:] if argv is None else argv))  # wandb agent
    if "--debug" in args[1:]:
        args = [args[0], *[a for a in args[1:] if a != "--debug"]]
        args.insert(0, "--debug")
    try:
        app(args=args, standalone_mode=True)
    except HyperGraphError as err:
        if _state["debug"]:
            traceback.print_exc()
        # escape: a message quoting user input such as 'x[/]' must not be read as rich markup
        err_console.print(f"[bold red]Error:[/] {escape(str(err))}", highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
