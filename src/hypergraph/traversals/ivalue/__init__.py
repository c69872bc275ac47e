"""IValue (``traversal: ivalue``): walkers steered by measured, propagated information value.

The design answers the two failures of an earlier greedy walk (batches far less diverse than
i.i.d. ones; predicted values uncorrelated with the gain actually realised):

* **Values are measured, not predicted.** Every training step already computes each sample's
  loss; the trainer hands those losses back (``feedback``) and the traversal turns them into a
  per-node signal: the loss while the model gives the label more than chance and the bounded
  ``p(1 - p)`` below it (``learnable``, default), the label-probability uncertainty
  ``p(1 - p)``, the loss, the loss change since the node's last visit (``gain``), its spread
  over visits, or the reducible loss (loss minus an irreducible loss: from the node's
  neighbours' labels, or from a small model trained on held-out rows).
* **The whole graph is valued without a forward pass over it.** Every ``refresh`` batches the
  observations, weighted by a confidence that decays with their age, are diffused ``hops``
  times over the row-normalised training subgraph (:func:`propagate_values`): a node never seen
  (or seen long ago) inherits the value of its neighbours, and its uncertainty (how little
  confident mass reached it) earns an exploration bonus. Cost: ``hops`` sparse mat-vecs per
  refresh, amortised over ``refresh`` batches. The default is ``hops = 0`` (since 2026-12-03):
  diffusion predicted nothing of the gain of unvisited nodes and changed no accuracy on report
  seeds (``docs/ivalue.md``), so a node's value is its own observation.
* **Batches stay diverse and cover the data.** A share ``sweep`` of every batch comes from a
  shuffled pass over the training nodes without replacement (every node at least once every
  ``1 / sweep`` epochs); the rest from ``walkers`` walkers that either warp to a node anywhere
  drawn in proportion to ``exp(logit)`` mixed with a uniform share ``explore`` (``warp = 1``,
  the default) or move to a neighbour drawn by a softmax of value over its neighbours
  (temperature, not argmax). Nodes picked within the last ``return_delay`` epochs are skipped,
  and a batch never holds a node twice. Value draws keep every class's share of the batch
  (``stratify``: value picks members within a class, not the class mix), and near-duplicate
  nodes (edges of weight >= ``dedup``) are visited as one node per group.

Two engines compute the same values. ``exact`` (the first implementation) re-propagates over
every edge, ranks every node and rebuilds a cumulative warp table every ``refresh`` batches:
O(E + n log n) per refresh. ``stream`` (the default) keeps the cost of a step independent of
the graph's size: confidences decay by one global factor, so the diffused numerator and
denominator are kept per node (scaled by ``exp(t_obs / tau)``) and updated every ``refresh``
batches only around the nodes observed since (O(batch x degree^hops) per batch, by linearity);
a node's value and logit are computed when needed from these sums, as of the last refresh
(the exact engine's values, up to rounding). Ranks are read from a sorted sample of
``min(n, 4096)`` values rebuilt at each refresh, through a table of mid-ranks over 8192 equal
value bins (ties share their mid-rank, where the exact engine breaks them by node order);
logits are capped at the sample's largest (never binding below 4096 nodes). Value draws pick
a node of a given class by rejection from the class's floor proposals against that cap (exact
in distribution, O(1) expected work per draw).

Per-batch cost: values change only at a refresh, so with the defaults (``warp = 1``,
``return_delay = 0``, ``contra = 0``) every batch up to the next refresh is selected in one
vectorised pass (``IValueTraversal._plan``), and ``feedback`` queues the losses, folded in
at the refresh in one pass (``IValueTraversal._ingest``; the same state as folding them
batch by batch). Per-call NumPy overhead, not arithmetic, dominated the cost of selecting and
observing one batch of 64 at a time.

Code map:

* ``_traversal.py``: :class:`IValueTraversal` (parameters, life cycle, batch assembly, feedback,
  state).
* ``_engines.py``: the value engines (``ValueEngine``; ``StreamEngine``, ``ExactEngine``):
  values, ranks and logits from the observations.
* ``_draws.py``: strata (classes, near-duplicate cells), class quotas, the exploration floor,
  value draws (rejection or cumulative table) and the sweep's shuffled passes.
* ``_signals.py``: the ``signal`` table (how a visit's losses become its value) and the moments
  of the loss drop between visits (``gain_correlation``).
* ``_graph.py``: value diffusion (:func:`propagate_values`), near-duplicate groups
  (:func:`near_duplicate_groups`), neighbour tables, model-confirmed label agreement.
"""

from hypergraph.traversals.ivalue._draws import shuffled_pass
from hypergraph.traversals.ivalue._graph import near_duplicate_groups, propagate_values
from hypergraph.traversals.ivalue._traversal import IValueTraversal

__all__ = ["IValueTraversal", "near_duplicate_groups", "propagate_values", "shuffled_pass"]
