"""The one table of module kinds a run chooses, with their defaults.

Everything that lists the run kinds derives from :data:`RUN_KINDS`: the run config's sections
and defaults (:mod:`hypergraph.config`), the combinations that tags check
(:data:`hypergraph.tags.COMBINATION_KINDS`), and the module options of the ``train``, ``test``
and ``sweep`` commands. This module imports nothing heavy, so the command line can read it
before deciding what else to load.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULTS", "FALLBACK_TRAVERSAL", "KIND_NAMES", "RUN_KINDS", "RunKind"]


@dataclass(frozen=True)
class RunKind:
    """One kind of module that every run chooses.

    Attributes:
        name: The kind (``"traversal"``), also the run config's section and the CLI option.
        default: The module ``hypergraph train`` uses when none is named.
        help: One line for ``--help``.
    """

    name: str
    default: str
    help: str


#: The run kinds, in the order a run builds them.
RUN_KINDS: tuple[RunKind, ...] = (
    RunKind("dataset", "digits", "where the data points come from"),
    RunKind("dataloader", "knn", "how the data points become a graph"),
    RunKind("model", "mlp", "what is trained"),
    RunKind("traversal", "ivalue", "which nodes each batch takes"),
    RunKind("manager", "static", "how the graph changes during training"),
    RunKind("trainer", "standard", "the training loop"),
)

#: The run kinds' names, in order (the run config's module sections).
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in RUN_KINDS)

#: The default module of each run kind (``hypergraph train`` with no options).
DEFAULTS: dict[str, str] = {k.name: k.default for k in RUN_KINDS}

#: Used instead of the default traversal when the default does not fit the other modules
#: (e.g. a hyperedge-only graph) and no traversal was named.
FALLBACK_TRAVERSAL = "comprehensive"
