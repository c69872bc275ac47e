"""The documentation site: its code examples run, its generated reference is complete, and every
public class and function has a docstring.

Every fenced ``python`` and ``bash`` block under ``docs/`` is an example a reader may copy, so
each page's blocks run in document order in a fresh temporary folder, in one process per page:
``python`` blocks share one namespace (as in a notebook), ``bash`` blocks run with ``bash -e``
with the installed ``hypergraph`` command first on ``PATH``. A ``python`` block whose first line
(of any language) is ``# file: NAME`` is a file the reader saves: it is written to ``NAME``
instead of run. A block that cannot run in a test
(it installs software, or takes minutes) starts with a visible comment line
``# not run by the docs tests: <reason>``. Blocks without a language (formulas, output, command
synopses with placeholders) and ``text`` blocks are not examples.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import hypergraph

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_MARK = "# not run by the docs tests:"
FILE_MARK = "# file:"
PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")


@dataclass
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order (indented fences dedented)."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        out.append(Block(path, i + 1, lang, "\n".join(body) + "\n"))
        i = j + 1
    return out


def _skipped(block: Block) -> bool:
    return block.code.lstrip().startswith(SKIP_MARK)


def _is_file(block: Block) -> bool:
    return block.code.lstrip().startswith(FILE_MARK)


def _examples(path: Path) -> list[Block]:
    return [b for b in blocks(path)
            if (b.lang in PYTHON | SHELL or _is_file(b)) and not _skipped(b)]


PAGES = sorted(p for p in DOCS.rglob("*.md") if _examples(p))

# The `hypergraph` command of the bash blocks. Each command is its own process with its own
# argv, folder, environment, stdin/stdout/stderr and exit code, but forked from a "zygote" that
# has already imported hypergraph (torch makes a fresh start cost ~3 s of CPU per command, most
# of this file's budget). The zygote never runs user code; PYTHONPATH is applied per command as
# Python would at start-up; entry points are loaded by each command, as in a fresh process.
# HYPERGRAPH_DOCS_REAL_CLI=1 runs the installed console script instead.
_ZYGOTE = r"""
import json, os, signal, socket, sys
import hypergraph.cli, hypergraph.plots, hypergraph.registry, hypergraph.run  # noqa: F401
hypergraph.registry.load_builtins()
def reap(*_):                                          # reaped here, so their CPU time
    try:                                               # counts towards this process's
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
signal.signal(signal.SIGCHLD, reap)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(8)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    sys.stdout.flush(); sys.stderr.flush()
    if os.fork():
        conn.close()
        for fd in fds:
            os.close(fd)
        continue
    server.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    req = json.loads(msg)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    extra = [os.path.abspath(p) for p in req["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[1:1] = extra
    sys.argv = ["hypergraph", *req["argv"]]
    code = 0
    try:
        hypergraph.cli.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush(); sys.stderr.flush()
    conn.sendall(code.to_bytes(4, "big", signed=True))
    os._exit(0)
"""

_SHIM = r"""#!{python} -S
import json, os, socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect({sock!r})
msg = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}})
socket.send_fds(conn, [msg.encode()], [0, 1, 2])
reply = b""
while len(reply) < 4:
    part = conn.recv(4 - len(reply))
    if not part:
        sys.exit("hypergraph (docs test zygote): the command process died")
    reply += part
sys.exit(int.from_bytes(reply, "big", signed=True))
"""

# Runs a page's blocks in order: Python in one shared namespace, shell through bash -e.
_DRIVER = r"""
import json, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for b in blocks:
    print(f"--- {b['where']} ({b['lang']})", flush=True)
    first = b["code"].lstrip().splitlines()[0] if b["code"].strip() else ""
    if first.startswith("# file:"):
        path = first.removeprefix("# file:").strip()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write(b["code"])
    elif b["lang"] == "python":
        try:
            exec(compile(b["code"], b["where"], "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"FAILED: the python block at {b['where']}", flush=True)
            sys.exit(1)
    else:
        rc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", b["code"]]).returncode
        if rc != 0:
            print(f"FAILED: the bash block at {b['where']} exited {rc}", flush=True)
            sys.exit(1)
"""


def _start_zygote(tmp_path: Path, env: dict[str, str],
                  ) -> tuple[subprocess.Popen[str], Path, Path]:
    """Start the pre-imported command server and put its ``hypergraph`` shim in ``bin/``."""
    # A short path: Unix socket names are limited to about 100 bytes.
    sock = Path(tempfile.mkdtemp(prefix="hgdoc-")) / "hg.sock"
    zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE, str(sock)], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert zygote.stdout is not None and zygote.stdout.readline().strip() == "ready"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "hypergraph"
    shim.write_text(_SHIM.format(python=sys.executable, sock=str(sock)))
    shim.chmod(0o755)
    return zygote, bin_dir, sock.parent


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    """Every example of the page runs, in order, in a fresh folder."""
    todo = [{"where": b.where, "code": b.code,
             "lang": "python" if b.lang in PYTHON else "bash" if b.lang in SHELL else b.lang}
            for b in _examples(page)]
    spec = tmp_path / "_blocks.json"
    spec.write_text(json.dumps(todo))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline",
                "WANDB_SILENT": "true", "MPLBACKEND": "Agg",
                "HYPERGRAPH_DOCS_ROOT": str(ROOT)})
    zygote = None
    if os.environ.get("HYPERGRAPH_DOCS_REAL_CLI") != "1" and "hypergraph " in page.read_text():
        zygote, bin_dir, sock_dir = _start_zygote(tmp_path, env)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    try:
        proc = subprocess.run([sys.executable, "-c", _DRIVER, str(spec)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        if zygote is not None:
            zygote.kill()
            zygote.wait()
            shutil.rmtree(sock_dir, ignore_errors=True)
    assert proc.returncode == 0, f"{page.name}:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"


def test_skipped_blocks_give_a_reason() -> None:
    """A block kept out of the tests says why, visibly, on its first line."""
    for path in sorted(DOCS.rglob("*.md")):
        for b in blocks(path):
            if _skipped(b):
                reason = b.code.lstrip().splitlines()[0].removeprefix(SKIP_MARK).strip()
                assert len(reason) > 10, f"{b.where}: the skip marker needs a reason"


def test_examples_exist_on_the_user_pages() -> None:
    """The pages a new user follows hold runnable examples (the test above runs them)."""
    names = {str(p.relative_to(DOCS)) for p in PAGES}
    for page in ("getting-started.md", "guides/own-data.md", "guides/own-model.md",
                 "guides/own-modules.md", "contract-tests.md", "guides/plugin.md"):
        assert page in names, f"{page} has no executed example"


# --- generated reference ------------------------------------------------------------------

sys.path.insert(0, str(ROOT / "tools"))
import docs_hooks  # noqa: E402


def test_cli_reference_lists_every_command_and_option() -> None:
    """The CLI page is generated from the Typer app: every command and option is on it."""
    import typer

    from hypergraph.cli import app

    page = docs_hooks.cli_reference()
    commands = docs_hooks.cli_commands()
    assert ["train"] in commands and ["check"] in commands
    root = typer.main.get_command(app)
    for path in commands:
        assert f"`hypergraph {' '.join(path)}`" in page
        cmd: Any = root
        for word in path:
            cmd = cmd.get_command(cmd.context_class(cmd, info_name=word), word)
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in page, f"{' '.join(path)}: {opt} missing from the CLI page"


def test_cli_reference_follows_command_groups() -> None:
    """Commands added later as groups (``hypergraph sweep create``) appear with their options."""
    import typer

    app = typer.Typer()
    sweep = typer.Typer(help="Sweeps.")

    @app.command()
    def train(epochs: int = typer.Option(3, help="Epochs.")) -> None:
        """Train."""

    @sweep.command()
    def create(storage: str = typer.Option(..., help="Where trials live.")) -> None:
        """Create a sweep."""

    app.add_typer(sweep, name="sweep")
    assert sorted(docs_hooks.cli_commands(app)) == [["sweep", "create"], ["train"]]
    page = docs_hooks.cli_reference(app)
    for text in ("`hypergraph sweep create`", "Create a sweep.", "--storage", "Where trials live",
                 "`hypergraph train`", "--epochs"):
        assert text in page


def test_module_reference_lists_every_registered_module() -> None:
    """The modules page is generated from the registry, with each hyperparameter."""
    from hypergraph import registry

    page = docs_hooks.modules_reference()
    for cls in registry.all_modules():
        assert f"### {cls.kind}: `{cls.name}`" in page
        for param in cls.space:
            assert f"| `{param}` |" in page, f"{cls.kind}:{cls.name}.{param} missing"


def test_api_pages_cover_every_public_module() -> None:
    """One API page per public ``hypergraph`` module, nothing private."""
    mods = docs_hooks.api_modules()
    assert "hypergraph.traversals" in mods and "hypergraph.registry" in mods
    assert not [m for m in mods if m.split(".")[-1].startswith("_")]


# --- docstrings -----------------------------------------------------------------------------


def _public_modules() -> list[str]:
    found = pkgutil.walk_packages(hypergraph.__path__, "hypergraph.")
    return ["hypergraph", *sorted(m.name for m in found
                                  if not any(p.startswith("_") for p in m.name.split(".")))]


def test_every_public_class_and_function_has_a_docstring() -> None:
    """Everything in ``__all__`` of ``hypergraph`` and its public modules has a docstring, and so
    has each public method a class defines (an override may inherit its base method's)."""
    missing = []
    for name in _public_modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(f"{name}.{attr}")
            if not inspect.isclass(obj):
                continue
            for meth, value in vars(obj).items():
                if meth.startswith("_"):
                    continue
                if isinstance(value, classmethod | staticmethod):
                    value = value.__func__
                elif isinstance(value, property):
                    value = value.fget
                if inspect.isfunction(value) and not inspect.getdoc(getattr(obj, meth)):
                    missing.append(f"{name}.{attr}.{meth}")
    assert not missing, "no docstring: " + ", ".join(sorted(set(missing)))
