"""Run folders that nothing can destroy (issue: data loss and mix-ups).

Each class of fault gets a test: a failing train over a finished run, ``--out`` on an occupied
folder, two processes on one folder, resume of a damaged folder, and the state of killed and
interrupted runs. Where the fault is a process (a second trainer, SIGKILL, SIGINT, SIGTERM) the
test uses real subprocesses. Afterwards the folder's files are compared byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import cli
from hypergraph.cli import main
from hypergraph.rundir import find_runs, inspect, lock_holder

HYPERGRAPH = str(Path(sys.executable).with_name("hypergraph"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FAST = ["--no-progress", "--set", "model.width=16", "--set", "trainer.batch_size=32"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}




def refused(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    """Assert exit code 2 with one message line and no traceback; return the message."""
    code, out, err = cli(argv, capsys)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished iris run, made once; tests copy it."""
    run = tmp_path_factory.mktemp("finished") / "keep"
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "iris", "--epochs", "2", "--out", str(run), *FAST])
    assert info.value.code in (0, None)
    return run


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ 1. a failing train
def test_failing_train_leaves_a_finished_run_untouched(
        finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished, tmp_path / "keep")
    before = snapshot(run)
    out = ["--out", str(run), "--overwrite", "--no-progress"]
    refused(["train", "--dataset", "csv", "--set", "dataset.path=typo.csv", *out], capsys,
            "typo.csv")
    refused(["train", "--model", "mlpp", *out], capsys, "Did you mean 'mlp'?")
    refused(["train", "--set", "model.lr=-1", *out], capsys, "'lr'")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n")
    refused(["train", "--dataset", "csv", "--set", f"dataset.path={bad}", *out], capsys)
    assert snapshot(run) == before


# ------------------------------------------------------------------ 2. --out occupied
def test_out_on_a_finished_run_or_foreign_files_is_refused(
        finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(finished, tmp_path / "keep")
    before = snapshot(run)
    msg = refused(["train", "--dataset", "iris", "--out", str(run), "--no-progress"], capsys,
                  "already holds a run", "finished", "--overwrite")
    assert "accuracy" in msg
    assert snapshot(run) == before

    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("precious")
    refused(["train", "--dataset", "iris", "--out", str(foreign), "--no-progress"], capsys,
            "not a HyperGraph run", "chapter1.tex")
    assert snapshot(foreign) == {"chapter1.tex": hashlib.sha256(b"precious").hexdigest()}

    # --overwrite replaces the old run's files and keeps anything else
    (run / "notes.txt").write_text("mine")
    code, _, err = cli(["train", "--dataset", "iris", "--epochs", "1", "--out", str(run),
                        "--overwrite", *FAST], capsys)
    assert code in (0, None), err
    assert (run / "notes.txt").read_text() == "mine"
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    assert json.loads((run / "run.json").read_text())["run_id"] != json.loads(
        (finished / "run.json").read_text())["run_id"]


def test_working_folder_is_never_a_run_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.csv").write_text("precious")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    for out in (".", "", str(tmp_path), ".."):
        refused(["train", "--dataset", "iris", "--out", out, "--overwrite", "--no-progress"],
                capsys, "working folder")
    assert snapshot(tmp_path) == before


def test_bad_input_into_a_new_folder_leaves_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "a" / "b" / "run"
    refused(["train", "--dataset", "csv", "--set", "dataset.path=nope.csv", "--out", str(run),
             "--no-progress"], capsys, "nope.csv")
    assert not (tmp_path / "a").exists()


# ------------------------------------------------------------------ 3 + 5. two processes
def _wait(pred: Any, proc: subprocess.Popen[str], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _default_sigint() -> None:
    # a shell starts background jobs with SIGINT ignored and children inherit that; the run
    # under test must see Ctrl-C however the test suite itself was started
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _long_run(run: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HYPERGRAPH, "train", "--dataset", "digits", "--epochs", "500", "--set",
         "trainer.patience=0", "--traversal", "comprehensive", "--out", str(run), *FAST],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
        preexec_fn=_default_sigint)


def _has_epoch(run: Path) -> bool:
    hist = run / "history.jsonl"
    return (run / "last.pt").is_file() and hist.is_file() and hist.read_text().count("\n") >= 1


def test_second_process_is_refused_and_a_killed_run_is_told_apart(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _long_run(run)
    try:
        _wait(lambda: _has_epoch(run), proc, "the first epoch")
        assert lock_holder(run) == proc.pid
        info = inspect(run)
        assert info.state == "running" and info.pid == proc.pid
        config_before = (run / "config.yaml").read_bytes()
        for argv in (["train", "--dataset", "iris", "--out", str(run), "--overwrite"],
                     ["train", "--resume", str(run)]):
            second = subprocess.run([HYPERGRAPH, *argv, "--no-progress"], capture_output=True,
                                    text=True, env=ENV, timeout=120)
            assert second.returncode == 2, second.stderr
            assert f"in use by process {proc.pid}" in second.stderr
            assert "Traceback" not in second.stderr
        assert (run / "config.yaml").read_bytes() == config_before
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # SIGKILL leaves status.json at "running": the free lock tells a reader it was killed
    assert json.loads((run / "status.json").read_text())["state"] == "running"
    info = inspect(run)
    assert info.state == "killed" and info.resumable and info.epochs >= 1
    assert info.describe() == f"killed at epoch {info.epochs}"
    listed = subprocess.run([HYPERGRAPH, "runs", str(tmp_path), "--json"], capture_output=True,
                            text=True, env=ENV, timeout=60)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["state"] == "killed" and row["resumable"] and row["epochs"] == info.epochs


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"),
                                                  (signal.SIGTERM, 143, "SIGTERM")])
def test_sigint_and_sigterm_print_one_line_and_mark_the_run(
        tmp_path: Path, sig: int, code: int, name: str) -> None:
    run = tmp_path / "run"
    proc = _long_run(run)
    try:
        _wait(lambda: _has_epoch(run), proc, "the first epoch")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"Interrupted ({name})" in lines[0]
    assert f"resume with: hypergraph train --resume {run}" in lines[0]
    assert json.loads((run / "status.json").read_text()) == {"state": "interrupted",
                                                             "signal": name}
    assert inspect(run).state == "interrupted"


# ------------------------------------------------------------------ 4. resume verifies
@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two interrupted csv runs (after epoch 1 of 3) on data we can change, made once."""
    from hypergraph.exceptions import RunInterrupted
    from hypergraph.run import train
    from hypergraph.trainers import Callback

    class StopAfterFirstEpoch(Callback):
        def on_epoch_start(self, ctx: Any, state: Any) -> None:
            if state.epoch == 1:  # epoch 1's checkpoint is written: stop in epoch 2
                raise KeyboardInterrupt

    root = tmp_path_factory.mktemp("interrupted")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int)
    data = root / "data.csv"
    data.write_text("a,b,c,d,label\n" + "".join(
        f"{a:.6f},{b:.6f},{c:.6f},{d:.6f},{t}\n" for (a, b, c, d), t in zip(X, y, strict=True)))
    from hypergraph.config import config_from_mapping

    runs = {}
    for name, seed in (("a", 0), ("b", 1)):
        cfg = config_from_mapping({
            "seed": seed, "dataset": {"name": "csv", "params": {"path": str(data)}},
            "model": {"name": "mlp", "params": {"width": 16}},
            "traversal": "comprehensive",
            "trainer": {"name": "standard", "params": {"epochs": 3, "batch_size": 16}}})
        with pytest.raises(RunInterrupted):
            train(cfg, root / name, callbacks=[StopAfterFirstEpoch()])
        runs[name] = root / name
    runs["data"] = data
    return runs


def test_resume_refuses_what_it_cannot_verify(
        interrupted: dict[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    def fresh(name: str) -> Path:
        return copy_run(interrupted["a"], tmp_path / name)

    run = fresh("truncated")
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text[: text.index("trainer:")])
    before = snapshot(run)
    refused(["train", "--resume", str(run)], capsys, "changed or truncated", "run.json")
    assert snapshot(run) == before

    # seeded bytes: random ones; pickle opcodes whose garbage length once made torch.load
    # run out of memory and Python print a stray SystemError (seed 454); a damaged zip
    for name, head, seed in (("random-bytes", b"", 0), ("pickle-garbage", b"\x80\x02", 454),
                             ("broken-zip", b"PK\x03\x04", 1)):
        run = fresh(name)
        (run / "last.pt").write_bytes(head + random.Random(seed).randbytes(4096 - len(head)))
        before = snapshot(run)
        refused(["train", "--resume", str(run)], capsys, "not a readable HyperGraph checkpoint")
        assert snapshot(run) == before

    run = fresh("other-run")
    (run / "last.pt").write_bytes((interrupted["b"] / "last.pt").read_bytes())
    before = snapshot(run)
    refused(["train", "--resume", str(run)], capsys, "belongs to another run")
    assert snapshot(run) == before

    run = fresh("garbage-manifest")
    (run / "run.json").write_text("{not json")
    before = snapshot(run)
    refused(["train", "--resume", str(run)], capsys, "run.json", "corrupt")
    assert snapshot(run) == before

    # the data changed since the run started (one value of one row)
    data = interrupted["data"]
    original = data.read_text()
    run = fresh("data-changed")
    before = snapshot(run)
    try:
        lines = original.splitlines()
        lines[7] = "9" + lines[7][1:]
        data.write_text("\n".join(lines) + "\n")
        refused(["train", "--resume", str(run)], capsys, "the data changed", "hash")
    finally:
        data.write_text(original)
    assert snapshot(run) == before

    # untouched: the resume goes through and finishes the run
    run = fresh("good")
    code, _, err = cli(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code in (0, None), err
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    assert inspect(run).state == "finished"
    assert [r.state for r in find_runs(tmp_path)].count("finished") == 1


# ------------------------------------------------------------------ properties
VALID_CONFIG = {
    "seed": 0,
    "dataset": {"name": "iris", "params": {"val_fraction": 0.2}},
    "model": {"name": "mlp", "params": {"width": 16, "lr": 0.01}},
    "traversal": {"name": "comprehensive"},
    "trainer": {"name": "standard", "params": {"epochs": 1, "batch_size": 32}},
}
PLAUSIBLE = st.sampled_from([0.01, 0.2, 1, 2, 16, 32, 0.001, True, "cosine"])
VALUES = st.one_of(
    PLAUSIBLE, PLAUSIBLE, PLAUSIBLE, st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 1e-320]),
    st.text(max_size=8), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    cfg = json.loads(json.dumps(VALID_CONFIG))
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["dataset", "model", "traversal", "trainer", "seed",
                                     "extra", "delete"]))
        if kind == "seed":
            cfg["seed"] = draw(VALUES)
        elif kind == "extra":
            cfg[draw(st.text(min_size=1, max_size=6))] = draw(VALUES)
        elif kind == "delete":
            cfg.pop(draw(st.sampled_from(sorted(cfg))), None)
        elif isinstance(cfg.get(kind), dict):
            where = draw(st.sampled_from(["name", "param", "params"]))
            if where == "name":
                cfg[kind]["name"] = draw(st.one_of(VALUES, st.sampled_from(
                    ["mlp", "csv", "knn", "random_walk", "uniform"])))
            elif where == "params":
                cfg[kind]["params"] = draw(VALUES)
            else:
                params = cfg[kind].setdefault("params", {})
                if isinstance(params, dict):
                    key = draw(st.sampled_from(["lr", "width", "epochs", "batch_size",
                                                "val_fraction", "k", "dropout", "walkers"]))
                    params[key] = draw(VALUES)
    text = yaml.safe_dump(cfg)
    if draw(st.integers(0, 3)) == 0:  # also damage the text itself
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=6)) + text[cut + draw(st.integers(0, 4)):]
    return text


def _train_fails_cleanly_or_succeeds(argv: list[str], run: Path, before: dict[str, str]
                                     ) -> None:
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(argv)
            code: object = 0
        except SystemExit as done:
            code = done.code
    text = err.getvalue()
    assert "Traceback" not in text + out.getvalue()
    if code in (0, None):
        return
    assert code == 2, (code, text)
    assert text.startswith("Error: ") and text.count("\n") == 1, text
    assert snapshot(run) == before, "a failed train changed the finished run"


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=mutated_config())
def test_mutated_configs_succeed_or_fail_cleanly(text: str, finished: Path,
                                                 tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    root = tmp_path_factory.mktemp("mut")
    run = copy_run(finished, root / "keep")
    cfg = root / "c.yaml"
    cfg.write_text(text)
    before = snapshot(run)
    _train_fails_cleanly_or_succeeds(["train", "-c", str(cfg), "--out", str(run),
                                      "--overwrite", "--no-progress", "--epochs", "1",
                                      "--device", "cpu"], run, before)


CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["1e308", "-1e308", "", "nan", "x", "1,2", '"']),
                  st.text(max_size=4))


@st.composite
def mutated_csv(draw: st.DrawFn) -> str:
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    rows = draw(st.one_of(st.integers(12, 40), st.integers(0, 12)))
    X = rng.normal(size=(rows, 3)).round(3)
    y = rng.integers(0, draw(st.sampled_from([2, 3, 1])), size=rows)
    table = [["a", "b", "c", "label"]] + [[*map(str, x), str(t)] for x, t in zip(X, y,
                                                                                strict=True)]
    for _ in range(draw(st.integers(0, 3))):
        if len(table) > 0:
            r = draw(st.integers(0, len(table) - 1))
            c = draw(st.integers(0, 3))
            if c < len(table[r]):
                table[r][c] = draw(CELLS)
    if draw(st.integers(0, 3)) == 0 and len(table) > 1:
        table[draw(st.integers(1, len(table) - 1))].pop()  # a ragged row
    return "\n".join(",".join(row) for row in table) + "\n"


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=mutated_csv(), kind=st.sampled_from(["csv", "npz"]),
       junk=st.binary(min_size=0, max_size=64))
def test_mutated_data_files_succeed_or_fail_cleanly(
        text: str, kind: str, junk: bytes, finished: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("mutdata")
    run = copy_run(finished, root / "keep")
    if kind == "csv":
        path = root / "d.csv"
        path.write_text(text)
    else:
        path = root / "d.npz"
        if junk and junk[0] % 3 == 0:
            path.write_bytes(junk)  # not a zip at all
        else:
            rows = [r.split(",") for r in text.splitlines()[1:]]
            try:
                X = np.array([[float(v) for v in r[:3]] for r in rows], dtype=np.float64)
                y = np.array([int(float(r[3])) for r in rows])
            except (ValueError, IndexError):
                X, y = np.frombuffer(junk.ljust(8, b"\0")[:8], np.float64), np.zeros(3)
            np.savez(path, X=X, y=y)
    before = snapshot(run)
    _train_fails_cleanly_or_succeeds(["train", "--dataset", kind, "--set",
                                      f"dataset.path={path}", "--out", str(run), "--overwrite",
                                      "--no-progress", "--epochs", "1", *FAST[1:]], run, before)
