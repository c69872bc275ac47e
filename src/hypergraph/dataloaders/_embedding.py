"""The vectors a graph builder works on: raw features or a fixed random projection of them.

Every builder that measures similarity takes ``features`` (``"raw"`` or ``"random_projection"``)
and ``embed_dim``; :func:`builder_vectors` turns a bundle into the matrix to compare. The model's
own embedding is used by the ``reembed`` manager (:func:`model_embedding`). Labels are never read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hypergraph.datasets import DatasetBundle
from hypergraph.exceptions import InvalidParameterError
from hypergraph.spaces import Categorical, Int

if TYPE_CHECKING:
    from hypergraph.data import DataStore
    from hypergraph.models import Model

__all__ = ["EMBED_DIM", "FEATURES", "builder_vectors", "model_embedding", "random_projection"]

#: Shared hyperparameter declarations of the builders.
FEATURES = Categorical(choices=("raw", "random_projection"),
                       help="compare raw features or a fixed seeded random projection of them")
EMBED_DIM = Int(low=1, high=4096, log=True,
                help="width of the random projection (features=random_projection)")


def random_projection(X: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``X`` (rows x d) projected by a Gaussian matrix ``d x dim`` scaled by ``1/sqrt(dim)``.

    The matrix is drawn from ``rng``, so the same seed gives the same projection
    (Johnson-Lindenstrauss: distances are preserved up to a small factor).
    """
    X = X.reshape(X.shape[0], -1)
    proj = rng.standard_normal((X.shape[1], dim)).astype(np.float32) / np.float32(np.sqrt(dim))
    out: np.ndarray = X.astype(np.float32, copy=False) @ proj
    return out


def builder_vectors(bundle: DatasetBundle, features: str, embed_dim: int,
                    rng: np.random.Generator, owner: str = "dataloader") -> np.ndarray:
    """The ``float32`` matrix (one row per data row) a builder compares.

    Args:
        bundle: The dataset: its in-memory features, or its `embedding_features()` (e.g.
            image thumbnails) when the data is file-backed.
        features: ``"raw"`` or ``"random_projection"``.
        embed_dim: Projection width for ``"random_projection"``.
        rng: Generator the projection is drawn from.
        owner: Module name used in error messages.
    """
    X = bundle.embedding_features().reshape(len(bundle), -1).astype(np.float32, copy=False)
    if features == "raw":
        return X
    if features == "random_projection":
        return random_projection(X, embed_dim, rng)
    raise InvalidParameterError(f"The 'features' parameter of {owner} must be one of "
                                f"{{'raw', 'random_projection'}}. Got {features!r} instead.")


def model_embedding(model: Model, store: DataStore, rows: np.ndarray,
                    batch_size: int = 4096) -> np.ndarray:
    """``model.embed`` of the given store rows, in batches, as a ``float32`` array."""
    import torch

    device = getattr(model, "device", torch.device("cpu"))
    parts = []
    for lo in range(0, rows.size, batch_size):
        chunk = rows[lo:lo + batch_size]
        x = torch.from_numpy(np.ascontiguousarray(store.get(chunk), dtype=np.float32)).to(device)
        parts.append(model.embed(x).reshape(chunk.size, -1).float().cpu().numpy())
    if not parts:
        return np.zeros((0, 1), np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)
