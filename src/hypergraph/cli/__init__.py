"""The ``hypergraph`` command line (Typer).

Each command group lives in its own module that decorates functions with ``@app.command()``;
importing it here registers the command.
"""

import hypergraph.cli._ace
import hypergraph.cli._bench
import hypergraph.cli._check
import hypergraph.cli._plot
import hypergraph.cli._runs
import hypergraph.cli._server
import hypergraph.cli._sweep  # noqa: F401
from hypergraph.cli._app import app, main

__all__ = ["app", "main"]
