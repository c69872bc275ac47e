"""The manager that leaves the graph as built."""

from __future__ import annotations

from typing import ClassVar

from hypergraph.managers._base import GraphManager
from hypergraph.registry import register

__all__ = ["StaticManager"]


@register("manager", "static")
class StaticManager(GraphManager):
    """Leaves the graph unchanged for the whole run."""

    tags: ClassVar[frozenset[str]] = frozenset({"manager:static"})

    def __init__(self) -> None:
        pass
