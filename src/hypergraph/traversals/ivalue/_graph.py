"""Graph helpers of IValue: CSR row gathers, value diffusion, near-duplicate groups,
padded neighbour tables and the model-confirmed label agreement."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from hypergraph.graph import HyperGraph

__all__ = ["gather_rows", "label_agreement", "near_duplicate_groups", "pad_neighbours",
           "propagate_values", "row_normalised", "row_offsets", "split_by_label"]


def gather_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                 rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries of the given CSR rows: ``(position in rows, column, value)``, O(entries)."""
    offs, lens = row_offsets(indptr, rows)
    owner = np.repeat(np.arange(rows.size), lens)
    return owner, indices[offs], data[offs]


def row_offsets(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the entries of the given CSR rows (row by row) and each row's length."""
    start = indptr[rows]
    lens = indptr[rows + 1] - start
    ends = np.cumsum(lens)
    total = int(ends[-1]) if ends.size else 0
    start -= ends - lens  # each entry's position = its rank in the output + its row's shift
    return np.arange(total) + np.repeat(start, lens), lens


def propagate_values(adj: sp.csr_matrix, obs: np.ndarray, conf: np.ndarray, alpha: float,
                     hops: int, prior_mean: float = 0.0, prior_weight: float = 1.0,
                     self_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Confidence-weighted diffusion of node observations over a graph.

    With ``A`` the row-normalised adjacency, ``num_0 = conf * obs`` and ``den_0 = conf``, each hop
    computes ``num = num_0 + alpha * A @ num`` and ``den = den_0 + alpha * A @ den``. The estimate
    is ``(num + prior_weight * prior_mean) / (den + prior_weight)`` and the uncertainty
    ``prior_weight / (den + prior_weight)`` (1 where no confident mass arrived, near 0 for a node
    just observed with full confidence and observed neighbours). ``self_weight`` scales a node's
    own observation in its *own* estimate (its neighbours always see it in full): 0 values a node
    by its neighbourhood only, which ignores an outlying loss such as a flipped label's.

    Args:
        adj: Row-normalised ``(n, n)`` adjacency (rows sum to 1 or 0).
        obs: Observed signal per node (any value where ``conf`` is 0).
        conf: Confidence of each observation in ``[0, 1]``.
        alpha: Weight of the neighbours' mass per hop.
        hops: Number of diffusion steps.
        prior_mean: Value assumed with no evidence.
        prior_weight: Pseudo-confidence of the prior.
        self_weight: Weight of a node's own observation in its estimate.

    Returns:
        ``(estimate, uncertainty)``.
    """
    num0 = conf * np.where(conf > 0, obs, 0.0)
    den0 = np.asarray(conf, np.float64)
    num, den = num0, den0
    for _ in range(hops):
        num = num0 + alpha * (adj @ num)
        den = den0 + alpha * (adj @ den)
    num = num - (1.0 - self_weight) * num0
    den = den - (1.0 - self_weight) * den0
    est = (num + prior_weight * prior_mean) / (den + prior_weight)
    unc = prior_weight / (den + prior_weight)
    return est, unc


def near_duplicate_groups(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                          threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Groups of near-duplicate nodes: connected components of the edges whose weight is at
    least ``threshold`` (a similarity in ``(0, 1]``, as the kNN and threshold builders give).

    Returns ``(group id per node, group size per node)``. Every node is its own group when
    ``threshold`` is 0 or when the weights carry no information (all equal, as in an unweighted
    graph), so grouping never merges a graph whose weights say nothing about similarity.
    """
    n = indptr.size - 1
    alone = (np.arange(n), np.ones(n))
    if threshold <= 0 or weights.size == 0 or float(np.ptp(weights)) == 0.0:
        return alone
    keep = weights >= threshold
    if not keep.any():
        return alone
    rows = np.repeat(np.arange(n), np.diff(indptr))
    adj = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], indices[keep])), shape=(n, n))
    _, group = connected_components(adj, directed=False)
    size = np.bincount(group)
    return group.astype(np.int64), size[group].astype(np.float64)


def pad_neighbours(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray,
                   cap: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(n, D)`` neighbour ids (-1 padded) and log edge weights: the D heaviest per row."""
    n = indptr.size - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    order = np.lexsort((-weights, rows))
    rank = np.arange(order.size) - indptr[rows[order]]
    deg = int(min(cap, np.diff(indptr).max(initial=0)))
    keep = rank < deg
    nbr = np.full((n, max(deg, 1)), -1, np.int64)
    logw = np.full((n, max(deg, 1)), -np.inf)
    r, c = rows[order][keep], rank[keep]
    nbr[r, c] = indices[order][keep]
    logw[r, c] = np.log(np.maximum(weights[order][keep], 1e-30))
    return nbr, logw


def label_agreement(same: sp.csr_matrix, diff: sp.csr_matrix, last_loss: np.ndarray,
                    x: np.ndarray | None = None, smoothing: float = 0.25) -> np.ndarray:
    """Model-confirmed label agreement of every node, or of nodes ``x`` only (O(their degree)).

    With ``p_j = exp(-loss_j)`` the probability the model gave neighbour ``j``'s label at its
    last visit (``last_loss``; 0 for a node never visited) and ``A`` the row-normalised
    subgraph split by label (:func:`split_by_label`), ``support_i = sum_j A_ij [y_j = y_i] p_j``
    and ``against_i = sum_j A_ij [y_j != y_i] p_j``; the agreement is
    ``(support_i + s) / (support_i + against_i + s)`` with ``s = smoothing``.
    """
    if x is None:
        p = np.where(np.isfinite(last_loss), np.exp(-np.nan_to_num(last_loss)), 0.0)
        support = same @ p
        against = diff @ p
        out: np.ndarray = (support + smoothing) / (support + against + smoothing)
        return out
    sums = []
    for mat in (same, diff):
        owner, col, val = gather_rows(mat.indptr, mat.indices, mat.data, x)
        ll = last_loss[col]
        p = np.where(np.isfinite(ll), np.exp(-np.nan_to_num(ll)), 0.0)
        sums.append(np.bincount(owner, val * p, minlength=x.size))
    out = (sums[0] + smoothing) / (sums[0] + sums[1] + smoothing)
    return out


def row_normalised(graph: HyperGraph) -> sp.csr_matrix:
    """The adjacency of ``graph`` with rows scaled to sum to 1 (0 for isolated nodes)."""
    n = graph.num_nodes
    wdeg = graph.weighted_degree()
    scale = np.repeat(np.where(wdeg > 0, 1.0 / np.maximum(wdeg, 1e-30), 0.0),
                      np.diff(graph.indptr))
    return sp.csr_matrix((graph.weights * scale, graph.indices, graph.indptr), shape=(n, n))


def split_by_label(adj: sp.csr_matrix, labels: np.ndarray,
                   ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``adj``'s edges between nodes of the same label and of different labels (regression
    labels: every edge counts as same-label)."""
    if labels.dtype.kind in "iub":
        same = labels[adj.indices] == np.repeat(labels, np.diff(adj.indptr))
    else:
        same = np.ones(adj.indices.size, bool)
    return (sp.csr_matrix((adj.data * same, adj.indices, adj.indptr), shape=adj.shape),
            sp.csr_matrix((adj.data * ~same, adj.indices, adj.indptr), shape=adj.shape))
