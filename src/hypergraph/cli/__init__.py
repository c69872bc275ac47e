"""The ``hypergraph`` command line (Typer)."""

from hypergraph.cli._app import app, main

__all__ = ["app", "main"]
