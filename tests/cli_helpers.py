"""Running ``hypergraph`` in-process in tests."""

from __future__ import annotations

import pytest

from hypergraph.cli import main


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``hypergraph ARGV`` through the console-script entry point; ``(code, out, err)``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err
