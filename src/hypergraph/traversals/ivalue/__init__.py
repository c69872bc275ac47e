"""IValue: walkers steered by measured, propagated information value (``traversal: ivalue``).

The traversal (:class:`IValueTraversal`) lives in ``_traversal``; see its module docstring for
the design.
"""

from hypergraph.traversals.ivalue._traversal import (
    IValueTraversal,
    near_duplicate_groups,
    propagate_values,
)

__all__ = ["IValueTraversal", "near_duplicate_groups", "propagate_values"]
