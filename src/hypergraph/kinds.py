"""The one table of module kinds a run chooses, with their defaults.

Everything that lists the kinds derives from :data:`RUN_KINDS`: the registry's kinds
(:data:`hypergraph.registry.KINDS`), the run config's sections and defaults
(:mod:`hypergraph.config`), the combinations that tags check
(:data:`hypergraph.tags.COMBINATION_KINDS`), the module options of the ``train``, ``test`` and
``sweep`` commands, the kinds whose spaces a sweep searches (:data:`SEARCHED_KINDS`) and ACE's
default slots. This module imports nothing heavy, so the command line can read it before
deciding what else to load.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULTS", "FALLBACK_TRAVERSAL", "KIND_NAMES", "RUN_KINDS", "SEARCHED_KINDS",
           "RunKind"]


@dataclass(frozen=True)
class RunKind:
    """One kind of module that every run chooses.

    Attributes:
        name: The kind (``"traversal"``), also the run config's section and the CLI option.
        default: The module ``hypergraph train`` uses when none is named.
        help: One line for ``--help``.
        searched: Whether a sweep built from modules searches this kind's hyperparameters
            and ACE makes it a slot by default. Not for the dataset (a search would move the
            test split), the store (it changes speed and memory, never the numbers) or the
            trainer (its budget is fixed by the sweep).
    """

    name: str
    default: str
    help: str
    searched: bool = False


#: The run kinds, in the order a run builds them.
RUN_KINDS: tuple[RunKind, ...] = (
    RunKind("dataset", "digits", "where the data points come from"),
    RunKind("store", "auto", "where the features live during the run: the dataset's own "
            "choice, memory, or files read lazily"),
    RunKind("dataloader", "knn", "how the data points become a graph", searched=True),
    RunKind("model", "mlp", "what is trained", searched=True),
    RunKind("traversal", "ivalue", "which nodes each batch takes", searched=True),
    RunKind("manager", "static", "how the graph changes during training", searched=True),
    RunKind("trainer", "standard", "the training loop"),
)

#: The run kinds' names, in order (the run config's module sections).
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in RUN_KINDS)

#: The default module of each run kind (``hypergraph train`` with no options).
DEFAULTS: dict[str, str] = {k.name: k.default for k in RUN_KINDS}

#: Kinds whose declared spaces a sweep searches, and ACE's default slots.
SEARCHED_KINDS: tuple[str, ...] = tuple(k.name for k in RUN_KINDS if k.searched)

#: Used instead of the default traversal when the default does not fit the other modules
#: (e.g. a hyperedge-only graph) and no traversal was named.
FALLBACK_TRAVERSAL = "comprehensive"
