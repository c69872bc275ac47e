"""``hypergraph check`` (contract checks + compatibility matrix) and ``hypergraph test``.

``check`` exits 1 when any check or smoke training fails and 2 on bad input (an unknown module
name); ``test`` exits 1 when a stage fails.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hypergraph import registry
from hypergraph.cli._app import app, cli_config, console, err_console, with_module_options
from hypergraph.cli._checks import check_range
from hypergraph.tags import COMBINATION_KINDS

_MARK = {"pass": "[green]✓[/]", "fail": "[bold red]✗[/]", "skipped": "[yellow]s[/]",
         "incompatible": "[dim]·[/]", "untested": "[dim]?[/]"}


def _print_checks(report: object) -> None:
    from hypergraph.testing import CheckReport

    assert isinstance(report, CheckReport)
    table = Table(title="Contract checks", show_lines=False)
    for col in ("module", "passed", "failed", "skipped", "details"):
        table.add_column(col, overflow="fold")
    for m in report.modules:
        k = f"{m.kind}:{m.name}"
        rs = report.checks[k]
        counts = {s: sum(r.status == s for r in rs) for s in ("passed", "failed", "skipped")}
        details = [f"[red]{r.rule or r.check}[/]: {r.message}" for r in rs if r.status == "failed"]
        skipped = sorted({r.message for r in rs if r.status == "skipped"})
        details += [f"[yellow]skipped[/] ({counts['skipped']}): {msg}" for msg in skipped[:2]]
        table.add_row(k, str(counts["passed"]),
                      f"[red]{counts['failed']}[/]" if counts["failed"] else "0",
                      str(counts["skipped"]), "\n".join(details))
    console.print(table)


def _print_matrix(report: object) -> None:
    from hypergraph.testing import CheckReport

    assert isinstance(report, CheckReport)
    if not report.pairs:
        return
    cells = {(p.a, p.b): p for p in report.pairs} | {(p.b, p.a): p for p in report.pairs}
    focus = [m for m in report.modules if m.kind in COMBINATION_KINDS]
    console.print(f"[bold]Compatibility matrix[/] ({report.selection}; "
                  "✓ trained one epoch, ✗ failed, s skipped, · incompatible by tags)")
    focus_kinds = {m.kind for m in focus}
    order = list(COMBINATION_KINDS)
    for kind in order:
        rows = [m for m in focus if m.kind == kind]
        if not rows:
            continue
        for other in order:
            if other == kind or (other in focus_kinds and order.index(other) < order.index(kind)):
                continue
            cols = registry.all_modules(other)
            if not cols:
                continue
            left, top, lk, tk = rows, cols, kind, other
            if len(top) > len(left):  # keep the table narrow: the longer list goes down
                left, top, lk, tk = cols, rows, other, kind
            table = Table(title=f"{lk} x {tk}", title_justify="left", pad_edge=False)
            table.add_column(lk)
            for c in top:
                table.add_column(c.name, justify="center")
            for m in left:
                row = [m.name]
                for c in top:
                    p = cells.get((f"{m.kind}:{m.name}", f"{c.kind}:{c.name}"))
                    row.append(_MARK.get(p.status, p.status) if p else "")
                table.add_row(*row)
            console.print(table)
    problems = [p for p in report.pairs if p.status in ("fail", "skipped")]
    incompatible = [p for p in report.pairs if p.status == "incompatible"]
    for p in problems:
        console.print(f"{_MARK[p.status]} {p.a} + {p.b}: {p.detail}", highlight=False,
                      soft_wrap=True)
    if incompatible:
        console.print(f"[dim]Incompatible by tags ({len(incompatible)} pairs):[/]")
        for p in incompatible:
            console.print(f"  · {p.a} + {p.b}: {p.detail}", style="dim", highlight=False,
                          soft_wrap=True)


@app.command()
def check(
    names: Annotated[list[str] | None, typer.Argument(
        help="Modules to check, as kind:name or a unique name (default: every registered "
        "module).")] = None,
    plugins: Annotated[list[str] | None, typer.Option(
        "--plugins", help="Import a module that registers extra modules (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    smoke: Annotated[bool, typer.Option(
        help="Also train each module one epoch with every tag-compatible partner.")] = True,
) -> None:
    """Check modules against their contracts and against every tag-compatible partner.

    Runs each module's contract checks (chosen by kind and tags) on tiny deterministic data,
    then trains one epoch of combinations in which the module meets every tag-compatible
    partner, and prints a compatibility matrix. Exit code 1 if anything fails.
    """
    from hypergraph.testing import check_modules, resolve_module

    t0 = time.perf_counter()
    if plugins:
        registry.load_plugins(plugins)
    modules = [resolve_module(n) for n in names] if names else None
    progress = None
    if not as_json:
        def progress(msg: str) -> None:
            err_console.print(f"[dim]{msg}[/]", highlight=False)

    report = check_modules(modules, smoke=smoke, progress=progress)
    wall = time.perf_counter() - t0
    if as_json:
        data = report.to_dict()
        data["wall_s"] = round(wall, 3)
        console.print_json(json.dumps(data))
    else:
        _print_checks(report)
        _print_matrix(report)
        n_checks = sum(len(v) for v in report.checks.values())
        n_failed = sum(r.status == "failed" for v in report.checks.values() for r in v)
        n_smoke_failed = sum(r.status == "fail" for r in report.smoke.values())
        verdict = "[bold red]FAILED[/]" if report.failed else "[bold green]OK[/]"
        console.print(f"{verdict}: {len(report.modules)} modules, {n_checks} checks "
                      f"({n_failed} failed), {len(report.smoke)} combinations trained "
                      f"({n_smoke_failed} failed) in {wall:.1f}s")
    if report.failed:
        raise typer.Exit(1)


@app.command("test")
@with_module_options
def test_(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Run config YAML (e.g. a run's config.yaml).")] = None,
    modules: dict[str, str | None] | None = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", help="Override a hyperparameter: KIND.PARAM=VALUE (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    rows: Annotated[int, typer.Option(help="Shrink the dataset to at most this many rows.")
                    ] = 300,
    steps: Annotated[int, typer.Option(help="Gradient steps in the train stage.")] = 5,
    plugins: Annotated[list[str] | None, typer.Option(
        "--plugins", help="Import a module that registers extra modules (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Quick smoke run of one combination: each stage on tiny data, with pass/fail and time.

    Stages: load, build graph, traverse, train (a few steps with the manager), validate, test.
    Exit code 1 if a stage fails (later stages are not run).
    """
    from hypergraph.testing import run_stages

    check_range("--rows", rows, 3, why="the smoke run keeps at least one row per split: "
                "train, validation and test")
    check_range("--steps", steps, 1, why="gradient steps of the train stage")
    if plugins:
        registry.load_plugins(plugins)
    cfg = cli_config(config, modules or {},
                     [f"seed={seed}", f"device={device}", *(set_ or [])], plugins)
    results = run_stages(cfg, max_rows=rows, steps=steps)
    failed = any(r.status == "fail" for r in results)
    if as_json:
        console.print_json(json.dumps({"ok": not failed,
                                       "stages": [r.to_dict() for r in results]}))
    else:
        names = ", ".join(f"{k}={cfg.choice(k).name}" for k in COMBINATION_KINDS)
        table = Table(title=f"hypergraph test: {names}")
        for col in ("stage", "result", "time", "details"):
            table.add_column(col, overflow="fold")
        for r in results:
            mark = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]"}.get(
                r.status, f"[dim]{r.status}[/]")
            table.add_row(r.stage, mark, f"{r.seconds * 1000:.0f} ms" if r.status != "not run"
                          else "", r.error or r.detail)
        console.print(table)
    if failed:
        raise typer.Exit(1)
