"""Errors raised for bad input.

Every error a user can cause derives from :class:`HyperGraphError`; the CLI turns these into one
clear paragraph and exit code 2 (``--debug`` shows the traceback). Anything else is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HyperGraphError(Exception):
    """Base class of every error caused by user input (names, values, files, combinations)."""


class UnknownNameError(HyperGraphError, KeyError):
    """A module (or other named thing) that is not registered."""

    def __init__(self, what: str, name: str, choices: Iterable[str], note: str = "") -> None:
        self.what = what
        self.name = name
        self.choices = sorted(choices)
        self.note = note
        super().__init__(self._message())

    def _message(self) -> str:
        close = difflib.get_close_matches(self.name, self.choices, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listed = ", ".join(self.choices) if self.choices else "(none registered)"
        return f"Unknown {self.what} '{self.name}'.{hint} Valid choices: {listed}.{self.note}"

    def __str__(self) -> str:  # KeyError would quote the message
        return self._message()


class InvalidParameterError(HyperGraphError, ValueError):
    """A hyperparameter value outside its declared space."""


class IncompatibleModulesError(HyperGraphError):
    """A combination of modules whose tags do not fit together."""


class ConfigError(HyperGraphError):
    """A malformed or inconsistent configuration (YAML, ``--set``, sweep file)."""


class DataError(HyperGraphError):
    """Malformed, missing or unusable data (files, NaN features, empty splits)."""


class TrainingError(HyperGraphError):
    """Training cannot go on (for example a NaN or infinite loss)."""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM (the CLI installs the
    handler), so that a run stops as cleanly as on Ctrl-C."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM; its folder is marked ``interrupted`` and resumable.

    Attributes:
        run_dir: The run folder.
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
    """

    def __init__(self, run_dir: object, signal_name: str = "SIGINT") -> None:
        super().__init__(f"{signal_name}: run {run_dir} interrupted")
        self.run_dir = run_dir
        self.signal_name = signal_name


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the closest match of ``name`` among ``choices``, or ``None``."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None
