"""Light views of graph elements, made on access and never stored.

``Node``, ``Edge`` and ``HyperEdge`` hold a reference to the graph and an index; all facts are
read from the graph's arrays. :meth:`HyperGraph.node` picks the view: a :class:`Node` holds one
store row, a :class:`ClusterNode` many (see ``HyperGraph.members``). Views are data
structures, not modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hypergraph.exceptions import DataError

if TYPE_CHECKING:
    from hypergraph.data import Data
    from hypergraph.graph._hypergraph import HyperGraph

__all__ = ["ClusterNode", "Edge", "HyperEdge", "Node"]


class Node:
    """View of one node: its split, label, store rows, neighbours and data."""

    def __init__(self, graph: HyperGraph, node_id: int) -> None:
        self.graph = graph
        self.id = node_id

    @property
    def split(self) -> str:
        """``"train"``, ``"val"`` or ``"test"``."""
        from hypergraph.graph._hypergraph import SPLIT_NAMES

        return SPLIT_NAMES[int(self.graph.split[self.id])]

    @property
    def label(self) -> Any:
        """The node's label (a Python scalar)."""
        return self.graph.label[self.id].item()

    @property
    def rows(self) -> np.ndarray:
        """Store rows this node holds (one for a point node, many for a cluster)."""
        row = int(self.graph.store_row[self.id])
        if row >= 0 or self.graph.members is None:
            return np.array([row], np.int64)
        ptr, members = self.graph.members
        return members[ptr[self.id]:ptr[self.id + 1]]

    @property
    def degree(self) -> int:
        """Number of out-edges."""
        return int(self.graph.indptr[self.id + 1] - self.graph.indptr[self.id])

    def neighbors(self) -> np.ndarray:
        """Ids of the out-neighbours."""
        return self.graph.neighbors(self.id)[0]

    def data(self) -> list[Data]:
        """:class:`~hypergraph.data.Data` handles of the points this node holds."""
        from hypergraph.data import Data

        if self.graph.store is None:
            raise DataError("This graph has no data store attached (graph.store is None).")
        return [Data(self.graph.store, int(r)) for r in self.rows]

    def __repr__(self) -> str:
        return f"Node(id={self.id}, split={self.split}, label={self.label}, degree={self.degree})"


class ClusterNode(Node):
    """View of a cluster node (a hypernode): it holds many store rows (``graph.members``).

    ``store_row`` is ``-1`` for such a node; gathering its data draws one random member
    (:meth:`HyperGraph.node_rows`), evaluation uses every member.
    """

    @property
    def size(self) -> int:
        """Number of data points the cluster holds."""
        return int(self.rows.size)

    def __repr__(self) -> str:
        return (f"ClusterNode(id={self.id}, split={self.split}, size={self.size}, "
                f"degree={self.degree})")


class Edge:
    """View of one directed CSR entry ``src -> dst`` with its weight."""

    def __init__(self, graph: HyperGraph, position: int, src: int) -> None:
        self.graph = graph
        self.position = position
        self.src = src

    @property
    def dst(self) -> int:
        """Target node id."""
        return int(self.graph.indices[self.position])

    @property
    def weight(self) -> float:
        """Edge weight."""
        return float(self.graph.weights[self.position])

    def __repr__(self) -> str:
        return f"Edge({self.src} -> {self.dst}, weight={self.weight:.4g})"


class HyperEdge:
    """View of one hyperedge: the set of nodes it joins."""

    def __init__(self, graph: HyperGraph, index: int) -> None:
        self.graph = graph
        self.index = index

    @property
    def members(self) -> np.ndarray:
        """Ids of the nodes this hyperedge joins."""
        inc = self.graph.incidence
        assert inc is not None
        return inc.indices[inc.indptr[self.index]:inc.indptr[self.index + 1]].astype(np.int64)

    def __repr__(self) -> str:
        return f"HyperEdge({self.index}, members={self.members.tolist()})"
