"""MkDocs hooks: reference pages generated from the code itself, so they cannot go stale.

* ``reference/cli.md`` walks the Typer app (``hypergraph.cli.app``) through Click: every command
  and sub-command, its help, usage and options. A command added later appears by itself.
* ``reference/modules.md`` lists every registered module (``hypergraph.registry``) with tags,
  requirements and hyperparameter space.
* ``reference/api/<name>.md`` holds one mkdocstrings page per public module or subpackage of
  ``hypergraph`` (names without a leading underscore), added to the nav under "Python API".

``mkdocs.yml`` names this file under ``hooks:``. ``tests/test_docs.py`` imports the generators.
"""

from __future__ import annotations

import pkgutil
import re
from typing import Any

#: Where the generated pages go (relative to ``docs/``).
CLI_PAGE = "reference/cli.md"
MODULES_PAGE = "reference/modules.md"
API_DIR = "reference/api"
#: The nav section (a top-level title) under which the API pages are listed.
NAV_SECTION = "Reference"
API_TITLE = "Python API"


def _md(text: str) -> str:
    """Escape ``<``/``>`` outside backtick spans (help texts hold ``<time>``-style words).

    Docstrings use reStructuredText's double backticks for code; they become single ones.
    """
    parts = text.replace("``", "`").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    return _md(" ".join(str(text).split())).replace("|", "\\|")


def _clean_help(text: str | None) -> str:
    """Typer help text as Markdown: drop Click's ``\\b`` markers, keep paragraphs."""
    if not text:
        return ""
    return "\n".join(line for line in text.strip().splitlines() if line.strip() != "\b")


def _param_row(param: Any, ctx: Any) -> str:
    record = param.get_help_record(ctx) if param.param_type_name == "option" else None
    if record is not None:
        decl, help_ = record
    else:  # a positional argument (Click gives no help record for those)
        decl = (param.name or "").upper() + (" ..." if param.nargs == -1 else "")
        help_ = getattr(param, "help", None) or ""
        help_ += "  [required]" if param.required else ""
    return f"| `{decl}` | {_cell(help_)} |"


def _subcommands(cmd: Any, ctx: Any) -> list[tuple[str, Any, Any]]:
    """``(name, command, context)`` of each visible sub-command of a group (none otherwise)."""
    if not hasattr(cmd, "list_commands"):
        return []
    out = []
    for name in cmd.list_commands(ctx):
        sub = cmd.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            out.append((name, sub, sub.context_class(sub, info_name=name, parent=ctx)))
    return out


def _command_md(cmd: Any, path: list[str], ctx: Any, depth: int) -> list[str]:
    title = " ".join(path)
    out = [f"{'#' * depth} `{title}`", ""]
    help_ = _clean_help(cmd.help)
    if help_:
        out += [_md(help_), ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    out += ["```text", f"Usage: {title} {usage}".rstrip(), "```", ""]
    params = [p for p in cmd.params if not getattr(p, "hidden", False)]
    if params:
        out += ["| option | description |", "|---|---|"]
        out += [_param_row(p, ctx) for p in params]
        out.append("")
    for name, sub, sub_ctx in _subcommands(cmd, ctx):
        out += _command_md(sub, [*path, name], sub_ctx, depth + 1)
    return out


def _root(app: Any = None) -> tuple[Any, Any]:
    import typer

    if app is None:
        from hypergraph.cli import app
    root = typer.main.get_command(app)
    return root, root.context_class(root, info_name="hypergraph")


def cli_commands(app: Any = None) -> list[list[str]]:
    """Every (sub-)command of a Typer app (default: the ``hypergraph`` CLI) as a word path,
    e.g. ``["train"]`` or ``["sweep", "create"]``."""
    found: list[list[str]] = []

    def walk(cmd: Any, ctx: Any, path: list[str]) -> None:
        subs = _subcommands(cmd, ctx)
        if not subs:
            found.append(path)
        for name, sub, sub_ctx in subs:
            walk(sub, sub_ctx, [*path, name])

    walk(*_root(app), [])
    return found


def cli_reference(app: Any = None) -> str:
    """The CLI reference page, generated from a Typer app (default: the ``hypergraph`` CLI)."""
    root, ctx = _root(app)
    lines = [
        "# Command line",
        "",
        "Generated from the `hypergraph` Typer app when the site is built: every command and "
        "option below is the one the installed code accepts. `hypergraph COMMAND --help` prints "
        "the same in the terminal. Errors caused by input exit with code 2 and one message; "
        "`--debug` adds the traceback.",
        "",
    ]
    lines += _command_md(root, ["hypergraph"], ctx, 2)
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    return f"`{value!r}`"


def modules_reference() -> str:
    """The module reference page, generated from the registry."""
    from hypergraph import registry

    lines = [
        "# Registered modules",
        "",
        "Generated from `hypergraph.registry` when the site is built (`hypergraph modules` "
        "prints the same). Each module lists its **tags** (what it is or provides), its "
        "**requires** (what the other modules of a combination must provide; `a|b` = either) "
        "and its hyperparameter space: every keyword argument with a default, the range a "
        "sweep may search, and whether it is searchable. Set a value with "
        "`--set KIND.PARAM=VALUE` or under `params:` in a run config; see "
        "[Concepts](../concepts.md#tags-and-requires).",
        "",
    ]
    for kind in registry.KINDS:
        classes = registry.all_modules(kind)
        if not classes:
            continue
        lines += [f"## {kind}", ""]
        lines += ["| name | summary |", "|---|---|"]
        lines += [f"| [`{c.name}`](#{kind}-{_slug(c.name)}) | "
                  f"{_cell(registry.describe(c)['summary'])} |" for c in classes]
        lines.append("")
        for cls in classes:
            d = registry.describe(cls)
            lines += [f"### {kind}: `{d['name']}` {{#{kind}-{_slug(d['name'])}}}", ""]
            if d["summary"]:
                lines += [_md(d["summary"]), ""]
            lines += [f"- class: `{d['class']}`",
                      f"- tags: {', '.join(f'`{t}`' for t in d['tags']) or '(none)'}",
                      f"- requires: {', '.join(f'`{t}`' for t in d['requires']) or '(none)'}",
                      ""]
            if d["space"]:
                lines += ["| hyperparameter | default | range | searchable | description |",
                          "|---|---|---|---|---|"]
                for p, s in d["space"].items():
                    lines.append(f"| `{p}` | {_value(s['default'])} | {_cell(s['range'])} | "
                                 f"{'yes' if s['searchable'] else 'no'} | {_cell(s['help'])} |")
            else:
                lines.append("No hyperparameters.")
            lines.append("")
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def api_modules() -> list[str]:
    """Public modules and subpackages of ``hypergraph`` (no leading underscore), sorted."""
    import hypergraph

    return sorted(f"hypergraph.{m.name}" for m in pkgutil.iter_modules(hypergraph.__path__)
                  if not m.name.startswith("_"))


def api_page(module: str) -> str:
    """One mkdocstrings page for ``module``."""
    return f"# `{module}`\n\n::: {module}\n"


def _api_path(module: str) -> str:
    return f"{API_DIR}/{module.removeprefix('hypergraph.')}.md"


# --- MkDocs events -------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Add one nav entry per public ``hypergraph`` module under Reference > Python API."""
    entries = [{"hypergraph": f"{API_DIR}/index.md"}]
    entries += [{module: _api_path(module)} for module in api_modules()]
    nav = config["nav"]
    for item in nav:
        if isinstance(item, dict) and NAV_SECTION in item:
            item[NAV_SECTION].append({API_TITLE: entries})
            break
    else:
        nav.append({NAV_SECTION: [{API_TITLE: entries}]})
    return config


def on_files(files: Any, config: Any) -> Any:
    """Generate the reference pages as in-memory files."""
    from mkdocs.structure.files import File

    pages = {CLI_PAGE: cli_reference(), MODULES_PAGE: modules_reference(),
             f"{API_DIR}/index.md": api_page("hypergraph")}
    pages.update({_api_path(m): api_page(m) for m in api_modules()})
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
