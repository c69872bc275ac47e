"""Run results without the fields that measure time: what must match between two runs."""

from __future__ import annotations

from typing import Any

#: Keys that hold seconds (the run's wall time and its per-phase timings), never equal twice.
TIMINGS = ("wall_s", "timings")


def without_timings(data: Any) -> Any:
    """``data`` (nested dicts and lists) with every :data:`TIMINGS` key left out."""
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if k not in TIMINGS}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data
