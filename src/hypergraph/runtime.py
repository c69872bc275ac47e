"""Process-wide settings of a run: how many CPU threads torch may use.

PyTorch starts one intra-op thread per core. When several processes share the cores (sweep
workers, test workers, a busy machine) that oversubscribes them, and small models (an MLP on
tabular data) slow down several-fold waiting on each other's threads. The command line
therefore caps torch at :func:`default_threads` threads unless ``--threads`` (or the
``HYPERGRAPH_THREADS`` environment variable, which sweep workers inherit) says otherwise.
Library users keep torch's own setting unless they set the variable.
"""

from __future__ import annotations

import os

from hypergraph.exceptions import InvalidParameterError

__all__ = ["THREADS_ENV", "apply_threads", "default_threads"]

#: Environment variable read by :func:`apply_threads`.
THREADS_ENV = "HYPERGRAPH_THREADS"
#: More threads than this rarely help the models HyperGraph trains on the CPU.
_MAX_DEFAULT = 4


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """The command line's default: the usable cores, at most 4."""
    return min(_MAX_DEFAULT, usable_cores())


def apply_threads(threads: int | None = None) -> int | None:
    """Set torch's intra-op thread count to ``threads``, else to ``$HYPERGRAPH_THREADS``.

    Returns the count set, or ``None`` when neither is given (torch's setting is kept).

    Raises:
        InvalidParameterError: a count below 1 or a variable that is not an integer.
    """
    if threads is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        if not text:
            return None
        try:
            threads = int(text)
        except ValueError:
            raise InvalidParameterError(f"{THREADS_ENV} must be a whole number of threads >= 1. "
                                        f"Got {text!r} instead.") from None
    if threads < 1:
        raise InvalidParameterError(f"The number of threads must be >= 1. Got {threads} "
                                    "instead.")
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
