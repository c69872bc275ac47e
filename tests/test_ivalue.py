"""IValueTraversal: value propagation, split safety, coverage, determinism, resume."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hypergraph.graph import HyperGraph
from hypergraph.traversals import IValueTraversal, TraversalContext
from hypergraph.traversals.ivalue import near_duplicate_groups, propagate_values


def _grid(side: int = 10, seed: int = 0) -> HyperGraph:
    """A side x side grid; a random 30% of nodes are validation/test."""
    n = side * side
    idx = np.arange(n).reshape(side, side)
    src = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    dst = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    split = np.zeros(n, np.int8)
    rng = np.random.default_rng(seed)
    held = rng.choice(n, size=int(0.3 * n), replace=False)
    split[held[: held.size // 2]] = 1
    split[held[held.size // 2:]] = 2
    return HyperGraph.from_edges(n, src, dst, split=split, label=np.arange(n) % 3)


def test_propagation_matches_hand_computation() -> None:
    # path 0 - 1 - 2, row-normalised: row 0 -> [0, 1, 0], row 1 -> [.5, 0, .5], row 2 -> [0, 1, 0]
    adj = sp.csr_matrix(np.array([[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]]))
    obs = np.array([1.0, 0.0, 0.0])
    conf = np.array([1.0, 0.0, 0.0])
    est, unc = propagate_values(adj, obs, conf, alpha=0.5, hops=1, prior_weight=1.0)
    # num = [1, .5*.5*1, 0] = [1, .25, 0]; den = [1, .25, 0]; est = num / (den + 1)
    np.testing.assert_allclose(est, [0.5, 0.2, 0.0])
    np.testing.assert_allclose(unc, [0.5, 0.8, 1.0])
    est2, _ = propagate_values(adj, obs, conf, alpha=0.5, hops=2, prior_weight=1.0)
    # hop 2: num = num0 + .5 * A @ [1, .25, 0] = [1 + .125, .25, .125]
    # den identical -> est = [1.125/2.125, .25/1.25, .125/1.125]
    np.testing.assert_allclose(est2, [1.125 / 2.125, 0.2, 0.125 / 1.125])


def _drive(t: IValueTraversal, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(steps):
        sel = t.next_batch()
        out.append(sel.ids)
        t.feedback(sel.ids, rng.random(sel.ids.size) + (sel.ids % 7 == 0))
    return out


@pytest.mark.parametrize(
    "signal", ["loss", "gain", "reducible", "uncertainty", "variance", "gated", "learnable",
               "decided"])
def test_only_training_nodes_and_every_one_eventually(signal: str) -> None:
    g = _grid()
    train = set(g.train_ids().tolist())
    t = IValueTraversal(signal=signal, walkers=8, refresh=2)
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(epochs=5))
    batches = _drive(t, 150, np.random.default_rng(1))
    seen = np.concatenate(batches)
    assert set(seen.tolist()) <= train
    assert set(seen.tolist()) == train
    assert all(np.unique(b).size == b.size == 8 for b in batches)


def test_same_seed_same_selections_and_exact_resume() -> None:
    g = _grid()
    a, b = IValueTraversal(walkers=6), IValueTraversal(walkers=6)
    a.setup(g, 6, np.random.default_rng(5))
    b.setup(g, 6, np.random.default_rng(5))
    runs = _drive(a, 30, np.random.default_rng(2)), _drive(b, 30, np.random.default_rng(2))
    for x, y in zip(*runs, strict=True):
        np.testing.assert_array_equal(x, y)
    state = a.state_dict()
    c = IValueTraversal(walkers=6)
    c.setup(g, 6, np.random.default_rng(99))
    c.load_state_dict(state)
    runs = _drive(a, 10, np.random.default_rng(3)), _drive(c, 10, np.random.default_rng(3))
    for x, y in zip(*runs, strict=True):
        np.testing.assert_array_equal(x, y)


def test_high_value_region_is_visited_more() -> None:
    g = _grid(12)
    t = IValueTraversal(signal="loss", walkers=8, refresh=1, explore=0.05, return_delay=0.0)
    t.setup(g, 8, np.random.default_rng(0))
    train = g.train_ids()
    hot = set(train[train < 48].tolist())  # the top four rows of the grid carry high loss
    count_hot = 0
    total = 0
    for step in range(200):
        ids = t.next_batch().ids
        t.feedback(ids, np.where(np.isin(ids, list(hot)), 2.0, 0.1))
        if step >= 100:
            count_hot += int(np.isin(ids, list(hot)).sum())
            total += ids.size
    share_hot = len(hot) / train.size
    assert count_hot / total > 1.5 * share_hot
    # the unvisited-neighbour estimate follows its visited neighbours
    v = t.values()
    in_hot = np.isin(train, list(hot))
    assert v["value"][in_hot].mean() > v["value"][~in_hot].mean()


# ---------------------------------------------------------------------------- second iteration
def _path3(labels: list[int]) -> HyperGraph:
    """Path 0 - 1 - 2, all training nodes, unit weights."""
    return HyperGraph.from_edges(3, [0, 1], [1, 2], label=np.array(labels))


def test_sweep_one_is_a_shuffled_pass_without_replacement() -> None:
    g = _grid()
    n = g.train_ids().size
    t = IValueTraversal(sweep=1.0, walkers=4)
    t.setup(g, 8, np.random.default_rng(0))
    batches = _drive(t, -(-n // 8), np.random.default_rng(1))
    first = np.concatenate(batches[: n // 8])
    assert np.unique(first).size == first.size  # no node twice within a pass
    assert set(np.concatenate(batches).tolist()) == set(g.train_ids().tolist())  # full pass
    assert all(np.unique(b).size == b.size == 8 for b in batches)


def test_sweep_share_of_each_batch() -> None:
    # sweep 0.5 with batch 8: 4 places from the pass, 4 from value warps, never a duplicate
    g = _grid()
    t = IValueTraversal(sweep=0.5, walkers=4)
    t.setup(g, 8, np.random.default_rng(0))
    pass_order = t.perm_.copy()
    batches = [t.next_batch().ids for _ in range(3)]  # the batches up to a refresh are planned
    for i, ids in enumerate(batches):  # together: each still opens with its 4 places of the pass
        np.testing.assert_array_equal(ids[:4], t.train_ids_[pass_order[4 * i:4 * i + 4]])
        assert np.unique(ids).size == 8
    # one at a time (local walks, warp < 1): the pass advances by 4 per batch
    t = IValueTraversal(sweep=0.5, walkers=4, warp=0.5)
    t.setup(g, 8, np.random.default_rng(0))
    before = t.cursor_
    sel = t.next_batch()
    assert t.cursor_ - before == 4
    np.testing.assert_array_equal(sel.ids[:4], t.train_ids_[t.perm_[before:before + 4]])
    assert np.unique(sel.ids).size == 8


@pytest.mark.parametrize("warp", [1.0, 0.5])  # planned windows, and one batch at a time
def test_anneal_turns_the_budget_tail_into_the_shuffled_pass(warp: float) -> None:
    # anneal 0.5 of 20 steps: batches 0-9 take 2 of 8 places from the pass (sweep 0.25), the
    # rest from value draws; from step 10 on, every place comes from the pass, in its order
    g = _grid()
    t = IValueTraversal(sweep=0.25, walkers=4, anneal=0.5, warp=warp, dedup=0.0)
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(max_steps=20))
    assert t._anneal_at() == 10
    rng = np.random.default_rng(1)
    head = _drive(t, 10, rng)
    assert t.cursor_ == 20  # two pass places per batch before the tail, none more
    assert not np.isin(np.concatenate(head), t.train_ids_[t.perm_[20:]]).all()
    perm, cursor = t.perm_.copy(), t.cursor_
    tail = np.concatenate(_drive(t, 6, rng))  # 48 places: the pass (70 nodes) does not wrap
    np.testing.assert_array_equal(tail, t.train_ids_[perm[cursor:cursor + 48]])
    # without a step limit the budget is the planned epochs; anneal 0 never switches
    t = IValueTraversal(anneal=0.25)
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(epochs=4))
    assert t._anneal_at() == int(np.ceil(0.75 * 4 * t.steps_per_epoch()))
    t = IValueTraversal()
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(max_steps=20))
    assert t._sweep_share() == 0.5 and t._anneal_at() > 10**12


def test_peak_signal_matches_hand_computation() -> None:
    g = _path3([0, 0, 1])
    t = IValueTraversal(signal="uncertainty", peak=0.25, walkers=1, sweep=0.0)
    t.setup(g, 3, np.random.default_rng(0))
    p = np.array([0.5, 0.25, 0.9])
    t.feedback(np.arange(3), -np.log(p))
    t.values()  # feedback is queued until a refresh or a read
    sig = p ** (1.0 / 3.0) * (1.0 - p)  # a = 0.25 / 0.75; peaks at p = 0.25
    np.testing.assert_allclose(t.obs_, sig - sig.mean())
    t2 = IValueTraversal(signal="uncertainty", walkers=1)  # peak 0.5: p (1 - p)
    t2.setup(g, 3, np.random.default_rng(0))
    t2.feedback(np.arange(3), -np.log(p))
    t2.values()  # feedback is queued until a refresh or a read
    sig2 = p * (1.0 - p)
    np.testing.assert_allclose(t2.obs_, sig2 - sig2.mean())


def test_learnable_signal_drops_labels_below_chance() -> None:
    g = _path3([0, 1, 2])  # three classes: chance = 1/3
    t = IValueTraversal(signal="learnable", walkers=1)
    t.setup(g, 3, np.random.default_rng(0))
    p = np.array([0.6, 0.1, 0.34])
    t.feedback(np.arange(3), -np.log(p))
    t.values()  # feedback is queued until a refresh or a read
    sig = np.array([-np.log(0.6), 0.1 * 0.9, -np.log(0.34)])
    np.testing.assert_allclose(t.obs_, sig - sig.mean())


def test_model_agreement_matches_hand_computation() -> None:
    # row-normalised path: A[0] = [0, 1, 0], A[1] = [.5, 0, .5], A[2] = [0, 1, 0]
    g = _path3([0, 0, 1])
    t = IValueTraversal(walkers=1)
    t.setup(g, 3, np.random.default_rng(0))
    t.last_loss_ = -np.log(np.array([0.8, 0.5, 1.0]))
    t.last_loss_[2] = np.nan  # node 2 never visited: contributes nothing
    # node 0: support 1 * .5 (node 1, same label), against 0 -> 1
    # node 1: support .5 * .8, against .5 * 0 (unvisited) -> 1
    # node 2 (label 1): support 0, against 1 * .5 -> (0 + .25) / (.5 + .25) = 1/3
    np.testing.assert_allclose(t.model_agreement(), [1.0, 1.0, 1.0 / 3.0])
    # with contra > 0 the contradicted node gets a lower logit (ln(1/3) * contra)
    # (the exact engine stores the logits at each refresh; the stream engine computes them on
    # demand, per node, from the same agreement)
    want = 2.0 * np.log([1.0, 1.0, 1.0 / 3.0])
    for engine in ("exact", "stream"):
        c = IValueTraversal(walkers=1, contra=2.0, pressure=1.0, bonus=0.0, engine=engine)
        c.setup(g, 3, np.random.default_rng(0))
        c.last_loss_ = t.last_loss_.copy()
        c._refresh()
        got = c.engine_.logits(np.arange(3))
        np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("hops,self_weight", [(0, 1.0), (1, 1.0), (2, 0.5)])
def test_stream_engine_values_match_full_propagation(hops: int, self_weight: float) -> None:
    # the stream engine's incremental sums give what a full propagation gives, at any step
    g = _grid(12)
    t = IValueTraversal(walkers=8, hops=hops, self_weight=self_weight, staleness=0.05,
                        refresh=8)
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(epochs=5))
    _drive(t, 120, np.random.default_rng(1))  # staleness 0.05: several exact rebases on the way
    age = (t.step_ - t.t_obs_) / (t.staleness * t.steps_per_epoch())
    conf = np.where(t.t_obs_ > -(10**12), np.exp(-age), 0.0)
    est, unc = propagate_values(t.adj_, t.obs_, conf, t.alpha, hops, prior_weight=0.5,
                                self_weight=self_weight)
    v = t.values()
    np.testing.assert_allclose(v["value"], est, atol=1e-10)
    np.testing.assert_allclose(v["uncertainty"], unc, atol=1e-10)


def test_stream_engine_with_many_hops_recomputes_instead_of_walking_out() -> None:
    # walking out from the observed nodes grows as degree ** hops (18 hops on digits once took
    # 20 GB); past the cost of an exact recomputation the engine recomputes every sum, and the
    # values stay those of a full propagation
    g = _grid(12)
    t = IValueTraversal(walkers=8, hops=18, staleness=50.0, refresh=8)
    t.setup(g, 8, np.random.default_rng(0), TraversalContext(epochs=5))
    engine = t.engine_
    assert engine._spread_size(8) > engine._rebase_limit()
    _drive(t, 64, np.random.default_rng(1))  # ends on a refresh (every 8 batches)
    assert engine.base_ > 0  # staleness 50 never asks for a rebase in 64 steps: the guard did
    age = (t.step_ - t.t_obs_) / (t.staleness * t.steps_per_epoch())
    conf = np.where(t.t_obs_ > -(10**12), np.exp(-age), 0.0)
    est, unc = propagate_values(t.adj_, t.obs_, conf, t.alpha, 18, prior_weight=0.5,
                                self_weight=t.self_weight)
    v = t.values()
    np.testing.assert_allclose(v["value"], est, atol=1e-10)
    np.testing.assert_allclose(v["uncertainty"], unc, atol=1e-10)


@pytest.mark.parametrize("transform,table", [("rank", False), ("z", False), ("z", True)])
def test_stream_engine_warp_draws_follow_the_logits(transform: str, table: bool) -> None:
    # rejection draws (or, when acceptance is too low, the table) match
    # (1 - explore) softmax(logits) + explore / n
    g = _grid(6)
    t = IValueTraversal(signal="loss", walkers=8, explore=0.2, transform=transform,
                        stratify="none")
    t.setup(g, 8, np.random.default_rng(0))
    _drive(t, 20, np.random.default_rng(1))
    t._refresh()
    if table:
        t.engine_.accept_ = 0.0
    lg = t.engine_.logits(np.arange(t.n_))
    p = np.exp(lg - lg.max())
    p = 0.8 * p / p.sum() + 0.2 / t.n_
    draws = t._draw(200_000)
    freq = np.bincount(draws, minlength=t.n_) / draws.size
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(p.max() / draws.size))


# ---------------------------------------------------------------------------- near-duplicates
def test_near_duplicate_groups_by_hand() -> None:
    # 0 = 1 = 2 near-duplicates (weights >= 0.995), 3 and 4 distinct
    g = HyperGraph.from_edges(5, [0, 1, 2, 3], [1, 2, 3, 4],
                              weights=np.array([0.999, 0.996, 0.5, 0.2], np.float32))
    group, size = near_duplicate_groups(g.indptr, g.indices, g.weights, 0.995)
    assert group[0] == group[1] == group[2] != group[3] != group[4]
    np.testing.assert_array_equal(size, [3, 3, 3, 1, 1])
    # off, or weights that say nothing (all equal): every node alone
    for w, thr in ((g.weights, 0.0), (np.ones_like(g.weights), 0.995)):
        group, size = near_duplicate_groups(g.indptr, g.indices, w, thr)
        np.testing.assert_array_equal(group, np.arange(5))
        np.testing.assert_array_equal(size, np.ones(5))


def _duplicates_graph(copies: int = 10, unique: int = 10) -> HyperGraph:
    """``copies`` near-duplicates (a clique, weight 0.999) then ``unique`` nodes on a path."""
    c = np.arange(copies)
    src, dst = np.triu_indices(copies, 1)
    path = np.arange(copies - 1, copies + unique - 1)
    src = np.concatenate([c[src], path])
    dst = np.concatenate([c[dst], path + 1])
    w = np.where(dst < copies, 0.999, 0.5).astype(np.float32)
    return HyperGraph.from_edges(copies + unique, src, dst, weights=w,
                                 label=np.arange(copies + unique) % 2)


def test_dedup_sweeps_a_group_as_one_node_and_still_covers_every_member() -> None:
    g = _duplicates_graph()
    t = IValueTraversal(sweep=1.0, walkers=2, explore=0.0)
    t.setup(g, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(t.mult_, [10.0] * 10 + [1.0] * 10)
    passes = 300
    ids = np.concatenate(_drive(t, 11 * passes, np.random.default_rng(1)))
    counts = np.bincount(ids, minlength=20)
    # one member of the group per pass of 11 places: the group as often as one unique node
    assert counts[10:].min() == counts[10:].max() == passes
    assert counts[:10].sum() == passes
    assert counts[:10].min() > 0  # every copy is still visited


def test_dedup_divides_value_draws_by_group_size() -> None:
    g = _duplicates_graph()
    on, off = IValueTraversal(sweep=0.0, pressure=1.0), IValueTraversal(sweep=0.0, pressure=1.0,
                                                                         dedup=0.0)
    shares = []
    for t in (on, off):
        t.setup(g, 4, np.random.default_rng(0))
        ids = np.concatenate(_drive(t, 400, np.random.default_rng(1)))
        shares.append(float(np.mean(ids < 10)))
    # pressure 1: no value preference, so draws follow the group weights only
    assert shares[1] > 0.4  # without grouping, the 10 copies take about half the draws
    assert shares[0] < 0.2  # with grouping, about 1 / 11 of them


def test_stratify_keeps_each_class_share_of_value_draws() -> None:
    # two classes of 50 nodes on a ring; class 0 carries all the loss (signal loss, pressure 1e4)
    n = 100
    g = HyperGraph.from_edges(n, np.arange(n), (np.arange(n) + 1) % n,
                              label=(np.arange(n) >= 50).astype(np.int64))
    shares = {}
    for stratify in ("none", "label"):
        t = IValueTraversal(signal="loss", pressure=1e4, sweep=0.0, walkers=10,
                            stratify=stratify, refresh=1)
        t.setup(g, 10, np.random.default_rng(0))
        picked = []
        for step in range(200):
            ids = t.next_batch().ids
            t.feedback(ids, np.where(ids < 50, 3.0, 0.01))
            if step >= 50:
                picked.append(ids)
        shares[stratify] = float(np.mean(np.concatenate(picked) < 50))
    assert shares["none"] > 0.8  # values alone pull the draws into class 0
    assert abs(shares["label"] - 0.5) < 0.05  # strata keep the classes' shares


@pytest.mark.parametrize("engine,table", [("stream", False), ("stream", True), ("exact", True)])
def test_stratified_draws_follow_values_within_a_class(engine: str, table: bool) -> None:
    # within class c, draws follow (1 - explore) softmax(logits over c) + explore / |c|
    g = _grid()
    t = IValueTraversal(signal="loss", stratify="label", sweep=0.0, refresh=1, explore=0.2,
                        engine=engine)
    t.setup(g, 8, np.random.default_rng(0))
    _drive(t, 40, np.random.default_rng(1))  # non-uniform values
    if table:
        t.engine_.accept_ = 0.0  # the stream engine then draws from its table too
    k = 40_000
    x = t._draw(k)
    strata, share = t.strata_, t.strata_share_
    assert strata is not None
    counts = np.bincount(strata[x], minlength=share.size)
    assert np.all(np.abs(counts - k * share) <= 1)  # quotas: floor(k * share) or one more
    lg = t.engine_.logits(np.arange(t.n_))
    for c in range(share.size):
        members = np.flatnonzero(strata == c)
        p = np.exp(lg[members] - lg[members].max())
        want = 0.8 * p / p.sum() + 0.2 / members.size
        freq = np.bincount(x, minlength=t.n_)[members] / counts[c]
        np.testing.assert_allclose(freq, want, atol=4 * np.sqrt(want.max() / counts[c]))


def test_grouped_stratified_draws_follow_values_and_the_group_floor() -> None:
    # 10 near-duplicates (a group, labels alternating: 5 in each class) + 10 unique nodes;
    # within class c: (1 - explore) softmax(logits over c) + explore * floor, the floor a
    # uniform cell (the group's members in c, or one node) of c, then a uniform member
    g = _duplicates_graph()
    t = IValueTraversal(signal="loss", sweep=0.0, refresh=1, explore=0.3)
    t.setup(g, 4, np.random.default_rng(0))
    for step in range(30):  # unequal values
        ids = t.next_batch().ids
        t.feedback(ids, (ids % 3 + 1.0) * (1 + step % 2))
    k = 60_000
    x = t._draw(k)
    lg = t.engine_.logits(np.arange(t.n_))  # includes -log(group size)
    strata = t.strata_
    assert strata is not None
    counts = np.bincount(x, minlength=t.n_)
    for c in (0, 1):
        members = np.flatnonzero(strata == c)
        p = np.exp(lg[members] - lg[members].max())
        grouped = members < 10  # the group's 5 members in class c form one cell
        cells = 1 + int((~grouped).sum())
        floor = np.where(grouped, 1.0 / (cells * grouped.sum()), 1.0 / cells)
        want = 0.7 * p / p.sum() + 0.3 * floor
        freq = counts[members] / counts[members].sum()
        np.testing.assert_allclose(freq, want, atol=4 * np.sqrt(want.max() / counts[members].sum()))


def test_planned_batches_keep_class_quotas_and_never_repeat_a_node() -> None:
    g = _grid()
    t = IValueTraversal(signal="loss", sweep=0.5, refresh=8, pressure=1e3)
    t.setup(g, 12, np.random.default_rng(0))
    strata, share = t.strata_, t.strata_share_
    assert strata is not None and t.window_
    for step, ids in enumerate(_drive(t, 40, np.random.default_rng(1))):
        assert np.unique(ids).size == ids.size == 12
        value_part = strata[t.position_[ids[6:]]]  # 6 places from the pass, 6 value draws
        counts = np.bincount(value_part, minlength=share.size)
        assert np.all(np.abs(counts - 6 * share) < 1), (step, counts)


@pytest.mark.parametrize("signal", ["learnable", "gain", "variance", "decided"])
def test_queued_feedback_gives_the_state_of_feedback_folded_batch_by_batch(signal: str) -> None:
    # the queue of a window is folded in one vectorised pass (nodes revisited within it
    # included); reading the state after every batch folds the queue one batch at a time
    from test_ivalue_state import _graph, _losses

    runs = []
    for read_often in (False, True):
        t = IValueTraversal(signal=signal, refresh=8)
        t.setup(_graph(), 16, np.random.default_rng(4))
        batches = []
        for step in range(43):
            ids = t.next_batch().ids
            batches.append(ids)
            t.feedback(ids, _losses(ids, step).astype(np.float64))
            if read_often:
                t.values()
        t.values()
        runs.append((t, batches))
    (a, ba), (b, bb) = runs
    for x, y in zip(ba, bb, strict=True):
        np.testing.assert_array_equal(x, y)
    repeats = max(np.unique(np.concatenate(ba[w:w + 8]), return_counts=True)[1].max()
                  for w in range(0, 40, 8))
    assert repeats > 1  # nodes were revisited within a window
    for key in ("obs_", "t_obs_", "last_loss_", "visits_", "p_sum_", "p_sq_", "loss_sum_"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-12, atol=1e-12,
                                   err_msg=key)
    assert a.mu_ == pytest.approx(b.mu_, rel=1e-12)
    np.testing.assert_array_equal(a.moments_, b.moments_)


def test_non_finite_losses_are_not_observed() -> None:
    g = _grid()
    t = IValueTraversal(refresh=1)
    t.setup(g, 8, np.random.default_rng(0))
    ids = t.next_batch().ids
    losses = np.full(ids.size, 0.5)
    losses[:3] = [np.nan, np.inf, -np.inf]
    t.feedback(ids, losses)  # refresh=1: values are rebuilt right away
    visits = t.values()["visits"]
    assert visits[t.position_[ids[:3]]].sum() == 0 and visits[t.position_[ids[3:]]].min() == 1
    assert all(np.isfinite(v).all() for v in t.values().values())
    assert t.next_batch().ids.size == 8


# ---------------------------------------------------------------------------- noisy vs hard
def test_judged_noisy_needs_the_model_and_the_graph_against_the_label() -> None:
    from hypergraph.traversals.ivalue._signals import judged_noisy

    chance = np.log(4)
    visits = np.array([2, 2, 2, 1, 3])
    mean = np.array([chance + 0.1, chance + 0.1, chance - 0.1, 5.0, chance + 1])
    log_agree = np.array([-chance - 0.1, -chance + 0.1, -3.0, -3.0, -3.0])
    # 0: both below chance; 1: neighbours agree (hard); 2: the model learnt it;
    # 3: one visit only; 4: noisy
    np.testing.assert_array_equal(judged_noisy(mean * visits, visits, log_agree, 4),
                                  [True, False, False, False, True])


def _two_cliques() -> HyperGraph:
    """Two cliques of 20 training nodes, labels 0 and 1, with one flipped label in each
    (nodes 3 and 25)."""
    src, dst = [], []
    for base in (0, 20):
        for i in range(20):
            for j in range(i + 1, 20):
                src.append(base + i)
                dst.append(base + j)
    label = np.repeat([0, 1], 20)
    label[[3, 25]] = [1, 0]
    return HyperGraph.from_edges(40, np.array(src), np.array(dst), label=label)


def _visits_of_flipped(noisy: str, signal: str = "learnable") -> tuple[int, np.ndarray]:
    t = IValueTraversal(noisy=noisy, signal=signal, explore=0.0, refresh=4)
    t.setup(_two_cliques(), 8, np.random.default_rng(0))
    later = 0
    for step in range(200):
        ids = t.next_batch().ids
        if step >= 40:  # every node visited at least twice by then (sweep: each 2 epochs)
            later += int(np.isin(ids, [3, 25]).sum())
        t.feedback(ids, np.where(np.isin(ids, [3, 25]), 3.0, 0.1))
    return later, t.judged_noisy()


def test_noisy_skip_leaves_judged_nodes_out_of_sweep_and_value_draws() -> None:
    kept, judged_keep = _visits_of_flipped("keep")
    skipped, judged = _visits_of_flipped("skip")
    assert not judged_keep.any()  # no judgement made unless asked for
    pos = {3: None, 25: None}
    t = IValueTraversal()
    t.setup(_two_cliques(), 8, np.random.default_rng(0))
    for node in pos:
        pos[node] = int(t.position_[node])
    np.testing.assert_array_equal(np.flatnonzero(judged), sorted(pos.values()))
    assert kept >= 32  # 160 steps of 8 = 32 epochs: the sweep alone visits each every 2
    # explore 0: only the rare last-resort fill of a batch (a uniform node, when 16 redraws
    # of a tiny class all clash) still reaches a judged node
    assert skipped <= 2


def test_decided_signal_chases_hard_nodes_and_not_judged_noisy_ones() -> None:
    # path 0 - 1 - 2, labels 0, 0, 1, two classes (chance: ln 2). Node 2's neighbour has
    # another label (judged noisy once the model contradicts it too); node 0 agrees
    g = _path3([0, 0, 1])
    t = IValueTraversal(signal="decided", walkers=1, sweep=0.0)
    t.setup(g, 3, np.random.default_rng(0))
    losses = np.array([1.5, 0.2, 1.5])  # both 0 and 2 contradicted by the model
    for _ in range(3):
        t.feedback(np.arange(3), losses)
    t.values()
    np.testing.assert_array_equal(t.judged_noisy(), [False, False, True])
    p = np.exp(-losses)
    # the third visit: node 2 judged on its first two visits -> p (1 - p); node 0 -> loss
    sig = np.array([1.5, 0.2, p[2] * (1 - p[2])])
    assert t.obs_[0] - t.obs_[1] == pytest.approx(sig[0] - sig[1])
    assert t.obs_[2] - t.obs_[1] == pytest.approx(sig[2] - sig[1])
