"""Smoke run of the performance benchmarks: they still execute and print every figure.

Speed is never asserted here (numbers on a shared CI machine mean nothing); the full run is
``python benchmarks/run.py`` and its results live in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_quick_run_prints_every_suite(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--repeats", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "Machine:" in text and "torch" in text and "cpu:" in text
    data = json.loads(out.read_text())
    targets = " ".join(r["target"] for r in data["rows"])
    for prefix in ("1a", "1b", "1c", "2 random_walk", "3 kNN build", "3 kNN recall@10",
                   "3 graph save", "4 peak RSS"):
        assert prefix in targets, prefix
    for row in data["rows"]:
        assert row["target"] in text
        if not row["note"].endswith("not registered"):
            assert row["values"], row["target"]
