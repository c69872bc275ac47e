"""IValue resumes at any batch with the same selections; lazily folded gain moments."""

from __future__ import annotations

import numpy as np
import pytest

from hypergraph.graph import HyperGraph
from hypergraph.traversals import IValueTraversal


def _graph(n: int = 300, seed: int = 0) -> HyperGraph:
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n), 4)
    dst = rng.integers(0, n, src.size)
    split = np.zeros(n, np.int8)
    split[rng.permutation(n)[: n // 5]] = 1
    return HyperGraph.from_edges(n, src, dst, rng.uniform(0.1, 1.0, src.size), split=split,
                                 label=rng.integers(0, 3, n))


def _losses(ids: np.ndarray, step: int) -> np.ndarray:
    return ((ids * 7919 + step * 104729) % 1000 / 400.0).astype(np.float32)


def _run(pattern: str, params: dict[str, object], resume_at: int | None = None,
         ) -> list[np.ndarray]:
    """Batches of a traversal driven by ``pattern`` (``b``: next_batch, ``f``: feedback on the
    last batch), optionally resumed from its own state at op ``resume_at``."""
    g = _graph()
    t = IValueTraversal(**params)  # type: ignore[arg-type]
    t.setup(g, 16, np.random.default_rng(4))
    out: list[np.ndarray] = []
    last = np.empty(0, np.int64)
    for i, op in enumerate(pattern):
        if i == resume_at:
            state = t.state_dict()
            t = IValueTraversal(**params)  # type: ignore[arg-type]
            t.setup(g, 16, np.random.default_rng(99))
            t.load_state_dict(state)
        if op == "b":
            last = t.next_batch().ids
            out.append(last)
        else:
            t.feedback(last, _losses(last, i))
    return out


PATTERNS = {
    "alternating": "bf" * 40,
}


@pytest.mark.parametrize("params", [{}, {"noisy": "skip", "signal": "decided"}])
@pytest.mark.parametrize("resume_at", [5, 11, 24])
def test_resume_at_any_batch_continues_the_same_batches(resume_at: int,
                                                        params: dict[str, object]) -> None:
    pattern = PATTERNS["alternating"]
    whole = _run(pattern, params)
    resumed = _run(pattern, params, resume_at=resume_at)
    for x, y in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(x, y)


def test_gain_moments_folded_lazily_are_the_per_batch_ones() -> None:
    """``moments_`` read after every feedback equals ``moments_`` read once at the end."""
    runs = []
    for read_often in (True, False):
        t = IValueTraversal(refresh=5)
        t.setup(_graph(), 16, np.random.default_rng(4))
        for step in range(40):
            ids = t.next_batch().ids
            t.feedback(ids, _losses(ids, step).astype(np.float64))
            if read_often:
                t.moments_.copy()
        runs.append(t.moments_.copy())
    np.testing.assert_array_equal(*runs)
    assert runs[0][0] > 0  # revisits were seen


# The keys of ``extra_state`` as checkpoints written before the subpackage hold them: a checkpoint
# loads only if every key is still read, and nothing new is required.
_COMMON_KEYS = {"obs", "t_obs", "last_loss", "last_pick", "visits", "pos", "step", "mu", "irr",
                "moments", "p_sum", "p_sq", "perm", "cursor", "plan", "acc_all", "acc_class"}
_ENGINE_KEYS = {"stream": {"V", "base", "gstep", "pending", "sketch", "sk_mean", "sk_std", "cap",
                           "accept"},
                "exact": {"raw", "est", "unc"}}


@pytest.mark.parametrize("engine", ["stream", "exact"])
def test_checkpoint_keys_are_those_of_earlier_versions(engine: str) -> None:
    t = IValueTraversal(engine=engine)
    t.setup(_graph(), 16, np.random.default_rng(0))
    for step in range(5):
        ids = t.next_batch().ids
        t.feedback(ids, _losses(ids, step))
    state = t.state_dict()
    assert set(state) == {"rng", "extra"}
    assert set(state["extra"]) == _COMMON_KEYS | _ENGINE_KEYS[engine]
