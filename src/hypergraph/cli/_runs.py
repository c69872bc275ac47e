"""``hypergraph runs``: the run folders under a folder, with their state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hypergraph.cli._app import app, console
from hypergraph.exceptions import ConfigError


@app.command()
def runs(
    root: Annotated[Path, typer.Argument(help="Folder to look in (a run folder or a folder of "
                                              "runs, searched 3 levels deep).")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List run folders: state (finished / running / killed at epoch N / interrupted / failed:
    reason), best validation metric and the command that resumes each one.

    A run is `running` while a process holds its lock; `killed` when its status.json still
    says running but nobody holds the lock (SIGKILL, power loss); `interrupted` after Ctrl-C
    or SIGTERM. Killed and interrupted runs continue exactly with `hypergraph train --resume`.
    """
    from hypergraph.rundir import find_runs

    if not root.exists():
        raise ConfigError(f"'{root}' does not exist; give the folder that holds your runs "
                          "(default: runs).")
    if not root.is_dir():
        raise ConfigError(f"'{root}' is a file; give the folder that holds your runs.")
    found = find_runs(root)
    if as_json:
        console.print_json(json.dumps([info.to_dict() for info in found]))
        return
    if not found:
        console.print(f"No run folders under {escape(str(root))}.")
        return
    table = Table(title=f"Runs under {escape(str(root))}")
    for col in ("run", "state", "epochs", "best val", "resume"):
        table.add_column(col, overflow="fold")
    for info in found:
        best = ", ".join(f"{k} {v:.4f}" for k, v in info.best.items()
                         if k in ("accuracy", "loss", "r2") and isinstance(v, int | float))
        resume = f"hypergraph train --resume {info.path}" if info.resumable else ""
        table.add_row(escape(str(info.path)), escape(info.describe()), str(info.epochs),
                      best, escape(resume))
    console.print(table)
