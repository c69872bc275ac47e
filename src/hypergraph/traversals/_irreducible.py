"""Irreducible losses: what a sample's loss would be for a model that never trained on it.

Shared by the selection traversals (RHO-LOSS in ``_baselines``, IValue's ``reducible`` signal):
from the graph's labels alone (:func:`graph_irreducible_losses`, free) or from a small model
trained on held-out rows (:func:`holdout_irreducible_losses`, its compute reported).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph

__all__ = ["graph_irreducible_losses", "holdout_irreducible_losses", "train_features"]


def graph_irreducible_losses(graph: HyperGraph, smoothing: float = 1.0,
                             num_classes: int | None = None) -> np.ndarray:
    """Leave-one-out irreducible loss of each node from its neighbours' labels.

    ``-log p_i`` with ``p_i = (sum_j w_ij [y_j = y_i] + smoothing / C) / (sum_j w_ij + smoothing)``
    over the out-neighbours ``j`` of ``i`` in ``graph``: the cross-entropy of a weighted kNN
    classifier that never saw node ``i``. A label that disagrees with its neighbourhood (a likely
    flipped label) gets a high value. Costs one pass over the edges and no model. With float
    (regression) labels: the squared error of the neighbours' weighted mean label.
    """
    n = graph.num_nodes
    labels = np.asarray(graph.label)
    src = np.repeat(np.arange(n), np.diff(graph.indptr))
    if labels.dtype.kind == "f":  # regression: squared error of the neighbours' weighted mean
        w = graph.weights.astype(np.float64)
        total = np.bincount(src, weights=w, minlength=n)
        mean = np.bincount(src, weights=w * labels[graph.indices], minlength=n)
        pred = np.where(total > 0, mean / np.maximum(total, 1e-30), labels.mean())
        sq: np.ndarray = (labels - pred) ** 2
        return sq
    classes = int(num_classes or (labels.max(initial=0) + 1))
    agree = (labels[graph.indices] == labels[src]).astype(np.float64) * graph.weights
    same = np.bincount(src, weights=agree, minlength=n)
    total = np.bincount(src, weights=graph.weights.astype(np.float64), minlength=n)
    p = (same + smoothing / classes) / (total + smoothing)
    result: np.ndarray = -np.log(p)
    return result


def holdout_irreducible_losses(features: np.ndarray, labels: np.ndarray, num_classes: int,
                               rng: np.random.Generator, width: int = 32, epochs: int = 40,
                               lr: float = 3e-3, batch_size: int = 64, folds: int = 2,
                               ) -> tuple[np.ndarray, dict[str, Any]]:
    """Cross-fitted irreducible losses from a small model trained on held-out rows.

    The rows are split into ``folds`` parts; for each part a small MLP (``width`` hidden units,
    0 for a linear model) is trained on the other parts and scores the held-out part. Every row
    thus gets the loss of a model that never trained on it, and the main model can still train
    on every row (the no-extra-holdout variant of RHO-LOSS).

    Returns:
        ``(losses, overhead)`` where overhead holds ``forward_samples`` (training samples count
        three forward passes: forward plus a backward of about twice the cost), ``params`` and
        ``wall_s`` (seconds spent).
    """
    import time

    import torch
    from torch import nn

    t0 = time.perf_counter()
    n, d = features.shape[0], int(np.prod(features.shape[1:]))
    x_all = torch.from_numpy(np.ascontiguousarray(features.reshape(n, d), np.float32))
    regression = np.asarray(labels).dtype.kind == "f"
    y_all = torch.from_numpy(np.asarray(labels, np.float32 if regression else np.int64))
    outputs = 1 if regression else num_classes

    def per_sample(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if regression:
            return nn.functional.mse_loss(out.reshape(-1), y, reduction="none")
        return nn.functional.cross_entropy(out, y, reduction="none")

    fold = rng.permutation(n) % max(2, folds)
    out = np.zeros(n, np.float64)
    fwd = 0.0
    params = 0
    seed = int(rng.integers(0, 2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for f in range(max(2, folds)):
            fit_rows = np.flatnonzero(fold != f)
            held = np.flatnonzero(fold == f)
            layers: list[nn.Module] = (
                [nn.Linear(d, width), nn.ReLU(), nn.Linear(width, outputs)] if width > 0
                else [nn.Linear(d, outputs)])
            net = nn.Sequential(*layers)
            params = sum(p.numel() for p in net.parameters())
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            for _ in range(epochs):
                order = fit_rows[rng.permutation(fit_rows.size)]
                for i in range(0, order.size, batch_size):
                    idx = torch.from_numpy(order[i:i + batch_size])
                    loss = per_sample(net(x_all[idx]), y_all[idx]).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                fwd += 3.0 * fit_rows.size
            with torch.no_grad():
                idx = torch.from_numpy(held)
                out[held] = per_sample(net(x_all[idx]), y_all[idx]).numpy()
            fwd += held.size
    return out, {"forward_samples": fwd, "params": int(params),
                 "wall_s": time.perf_counter() - t0, "what": "irreducible-loss model"}


def train_features(graph: HyperGraph, ids: np.ndarray, who: str) -> np.ndarray:
    """Features of training nodes ``ids`` for an irreducible-loss model.

    Raises:
        DataError: naming ``who`` when the graph has no data store or holds cluster nodes.
    """
    store = graph.store
    if store is None:
        raise DataError(f"{who} needs the graph's data store to train its irreducible-loss "
                        "model; build the graph with a dataloader that attaches it.")
    if graph.members is not None and np.any(graph.store_row[ids] < 0):
        raise DataError(f"{who} needs point nodes (one data row per node); this graph holds "
                        "cluster nodes.")
    return np.asarray(store.get(graph.store_row[ids]), np.float32)
