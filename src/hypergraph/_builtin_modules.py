"""Imports every built-in module so that its ``@register`` decorator runs.

The registry imports this once, on first use. Third-party modules arrive through the
``hypergraph.modules`` entry-point group or ``--plugins``.
"""

from __future__ import annotations

import hypergraph.data
import hypergraph.dataloaders
import hypergraph.datasets
import hypergraph.managers
import hypergraph.models
import hypergraph.trainers
import hypergraph.traversals  # noqa: F401
