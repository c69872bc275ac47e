"""The library logger.

Every module logs through ``get_logger(__name__)``; the root library logger is ``hypergraph``.
Nothing is printed by library code: the CLI decides what reaches the terminal.
"""

from __future__ import annotations

import logging

_ROOT = "hypergraph"


def get_logger(name: str) -> logging.Logger:
    """Return a logger below the library's root logger.

    Args:
        name: Usually ``__name__`` of the calling module.

    Returns:
        A :class:`logging.Logger` whose name starts with ``hypergraph``.
    """
    if name == _ROOT or name.startswith(_ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{_ROOT}.{name}")


def set_verbosity(level: int) -> None:
    """Set the level of the library's root logger (e.g. ``logging.INFO``)."""
    logging.getLogger(_ROOT).setLevel(level)


logging.getLogger(_ROOT).addHandler(logging.NullHandler())
