"""``hypergraph`` commands: train, modules.

Errors caused by input (unknown names, bad values, malformed files, incompatible modules) exit
with code 2 and one paragraph on stderr; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
import traceback
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hypergraph import registry
from hypergraph.exceptions import ConfigError, HyperGraphError

if TYPE_CHECKING:
    from hypergraph.config import RunConfig

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
    threads: Annotated[int | None, typer.Option(
        "--threads", help="CPU threads torch may use (default 1, the fastest for small models: "
        "benchmarks/threads_bench.py; also read from HYPERGRAPH_THREADS). Larger models (a CNN "
        "on images) may gain from more.")
                       ] = None,
) -> None:
    import os

    from hypergraph.runtime import THREADS_ENV, default_threads

    if threads is not None:
        from hypergraph.cli._checks import check_range

        check_range("--threads", threads, 1, why="torch needs at least one thread")
        os.environ[THREADS_ENV] = str(threads)
    elif not os.environ.get(THREADS_ENV):
        os.environ[THREADS_ENV] = str(default_threads())
    _state["debug"] = debug
    _state["plugins"] = list(plugins or [])  # reset: main() may run several times in-process
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if plugins:
        registry.load_plugins(plugins)


def with_module_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command one ``--KIND NAME`` option per run kind (:data:`hypergraph.kinds.RUN_KINDS`).

    The command declares a ``modules`` parameter and receives ``{kind: name or None}`` in it;
    the options are inserted in its place, so every command that chooses modules offers the
    same options, derived from the one table of kinds.
    """
    from hypergraph.kinds import RUN_KINDS

    sig = inspect.signature(func)
    options = [inspect.Parameter(k.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=Annotated[str | None, _opt(k.name)])
               for k in RUN_KINDS]
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if p.name == "modules":
            params += options
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        return func(modules={k.name: kwargs.pop(k.name) for k in RUN_KINDS}, **kwargs)

    hints = typing.get_type_hints(func, include_extras=True)
    hints.pop("modules", None)
    command.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in params])
    command.__annotations__ = {p.name: hints.get(p.name, p.annotation) for p in params}
    return command


def _opt(kind: str) -> Any:
    from hypergraph.kinds import DEFAULTS

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
@with_module_options
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c",
                                                help="Run config YAML (e.g. a run's config.yaml)."
                                                )] = None,
    modules: dict[str, str | None] | None = None,
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
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the run that --out already holds (its files only; never "
        "a running one). Without it, a folder holding a run or other files is refused.")
                         ] = False,
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

    A run folder is never overwritten by accident: a folder that already holds a run (or other
    files) is refused unless --overwrite, a folder in use by another training is refused with
    its pid, and nothing in it changes until the new run's config and data are validated.
    `hypergraph runs` lists run folders with their state.
    """
    from hypergraph.run import default_run_dir
    from hypergraph.run import resume as run_resume
    from hypergraph.run import train as run_train
    from hypergraph.trainers import Callback

    if resume is not None:
        given = [name for name, value in (
            ("--config", config), *((f"--{k}", v) for k, v in (modules or {}).items()),
            ("--set", set_), ("--seed", seed), ("--epochs", epochs),
            ("--device", device), ("--out", out), ("--logger", logger_),
            ("--overwrite", overwrite)) if value]
        if given:
            raise ConfigError(f"--resume reads the run's own config.yaml; it cannot be combined "
                              f"with {', '.join(given)}.")
    extra = [f"seed={seed}"] if seed is not None else []
    extra += [f"device={device}"] if device is not None else []
    extra += [f"trainer.epochs={epochs}"] if epochs is not None else []
    cfg = cli_config(config, modules or {}, [*extra, *(set_ or [])])
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
                  else run_train(cfg, out_dir, callbacks=callbacks, overwrite=overwrite))
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
    described = registry.descriptions(kind)  # the built-ins from their index: no torch import
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
    SIGTERM stops a run as cleanly as Ctrl-C: the run folder is marked ``interrupted`` and one
    line says how to resume (exit code 130 for SIGINT, 143 for SIGTERM). Warnings raised by
    libraries are held back while a command runs: shown after a successful command, dropped
    after an error (``--debug`` shows them), so that an error is always the only message.
    """
    import signal
    import warnings

    from hypergraph.cli._agent_args import translate_agent_args
    from hypergraph.exceptions import Terminated

    args = translate_agent_args(list(sys.argv[1:] if argv is None else argv))  # wandb agent
    if "--debug" in args[1:]:
        args = [args[0], *[a for a in args[1:] if a != "--debug"]]
        args.insert(0, "--debug")

    def on_sigterm(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm) if _main_thread() else None
    held: list[warnings.WarningMessage] = []
    ok = False
    try:
        with warnings.catch_warnings(record=True) as held_now:
            try:
                app(args=args, standalone_mode=True)
            finally:
                held = list(held_now)
    except SystemExit as done:
        ok = done.code in (0, None)
        stop = _interrupt_cause(done)  # Typer turns Ctrl-C into a silent exit 130
        if stop is None:
            raise
        _report_interrupt(stop)
    except HyperGraphError as err:
        if _state["debug"]:
            traceback.print_exc()
        # escape: a message quoting user input such as 'x[/]' must not be read as rich markup
        # one paragraph: messages quoting library errors (YAML, pandas) may hold line breaks
        text = " ".join(str(err).split())
        err_console.print(f"[bold red]Error:[/] {escape(text)}", highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt as err:
        _report_interrupt(err)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for w in held:
            if ok or _state["debug"]:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _interrupt_cause(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C / SIGTERM behind an exit, following the exception chain."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _report_interrupt(err: KeyboardInterrupt) -> None:
    """Print one line about the interruption and exit 130 (SIGINT) or 143 (SIGTERM)."""
    from hypergraph.exceptions import RunInterrupted, Terminated

    term = isinstance(err, Terminated) or (isinstance(err, RunInterrupted)
                                           and err.signal_name == "SIGTERM")
    err_console.print(_interrupted_text(err), highlight=False, soft_wrap=True)
    sys.exit(143 if term else 130)


def _interrupted_text(err: KeyboardInterrupt) -> str:
    """One line: where the run stopped and how to resume it."""
    from hypergraph.exceptions import RunInterrupted

    if not isinstance(err, RunInterrupted):
        return "Interrupted."
    from hypergraph.rundir import inspect

    info = inspect(Path(str(err.run_dir)))
    where = f"after {info.epochs} finished epoch{'s' if info.epochs != 1 else ''}"
    if (Path(str(err.run_dir)) / "last.pt").is_file():
        how = f"resume with: hypergraph train --resume {err.run_dir}"
    else:
        how = (f"no checkpoint was written yet; `hypergraph train --resume {err.run_dir}` "
               "starts it again from the beginning")
    return f"Interrupted ({err.signal_name}) {where} (epoch {info.epochs + 1} in progress); {how}"
