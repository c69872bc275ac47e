"""Process-wide settings of a run: how many CPU threads torch may use.

PyTorch starts one intra-op thread per core. For the small models HyperGraph mostly trains (an
MLP on tabular data, a batch of 64) the threads spend more time waiting for each other than
computing, and when other processes share the cores (sweep workers, test workers, a busy
machine) they oversubscribe them: measured with ``benchmarks/threads_bench.py`` on 2 cores, a
3-epoch digits MLP trained 16x slower with torch's default of 2 threads than with 1, and 7x
slower when the cores were shared (``docs/benchmarks.md``). The command line therefore uses
:func:`default_threads` (one) unless ``--threads`` (or the ``HYPERGRAPH_THREADS`` environment
variable, which sweep workers inherit) says otherwise; larger models (a CNN on images) may gain
from ``--threads N``. Library users keep torch's own setting unless they set the variable.
"""

from __future__ import annotations

import os

from hypergraph.exceptions import InvalidParameterError

__all__ = ["THREADS_ENV", "apply_threads", "default_threads"]

#: Environment variable read by :func:`apply_threads`.
THREADS_ENV = "HYPERGRAPH_THREADS"


def default_threads() -> int:
    """The command line's default: one thread (see the module docstring for the measurement)."""
    return 1


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
