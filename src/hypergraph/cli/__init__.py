"""The ``hypergraph`` command line (Typer).

Each command group lives in its own module that decorates functions with ``@app.command()``;
importing it here registers the command.
"""

import hypergraph.cli._bench
import hypergraph.cli._plot  # noqa: F401
from hypergraph.cli._app import app, main
import hypergraph.cli._check  # noqa: F401,E402

__all__ = ["app", "main"]
