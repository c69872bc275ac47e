"""Contract checks of traversals, models, managers and trainers."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from hypergraph.base import Module
from hypergraph.graph import HyperGraph
from hypergraph.rng import RngStreams
from hypergraph.testing._core import (
    CheckEnv,
    CheckFunc,
    SkipCheck,
    _build_partner,
    _graph_arrays,
    _nested_equal,
    _same_structure,
    build_module,
    contract,
    ensure,
    graph_problems,
)
from hypergraph.testing._fixtures import (
    GRAPH_VARIANTS,
    fixture_graph,
    fixture_score,
    knn_graph,
    tiny_bundle,
)


# ---------------------------------------------------------------------------- traversals
def _wants_cluster(module: type[Module]) -> bool:
    return any("node:cluster" in r.split("|") and "node:point" not in r.split("|")
               for r in module.requires)


def _traverse(module: type[Module], env: CheckEnv, graph: HyperGraph, batch_size: int,
              seed: int, epochs: int = 3, until_covered: bool = False) -> list[Any]:
    from hypergraph.traversals import TraversalContext

    t = build_module(module, env)
    t.setup(graph, batch_size, np.random.default_rng(seed),
            TraversalContext(score=fixture_score, epochs=epochs))
    out: list[Any] = []
    seen = np.zeros(graph.num_nodes, bool)
    train = graph.train_ids()
    for epoch in range(epochs):
        t.on_epoch_start(epoch)
        steps = t.steps_per_epoch()
        ensure(bool(isinstance(steps, int | np.integer) and steps >= 1), module,
               "steps_per_epoch_positive", f"steps_per_epoch() returned {steps!r}")
        for _ in range(int(steps)):
            sel = t.next_batch()
            out.append(sel)
            ids = np.asarray(sel.ids)
            if t.needs_feedback:
                t.feedback(ids, fixture_score(ids))
            if until_covered and ids.size and ids.min() >= 0 and ids.max() < graph.num_nodes:
                seen[ids] = True
        if until_covered and seen[train].all():
            break
    return out


def _assert_train_only(module: type[Module], graph: HyperGraph, sels: list[Any], rule: str,
                       where: str) -> None:
    train = np.zeros(graph.num_nodes, bool)
    train[graph.train_ids()] = True
    for i, sel in enumerate(sels):
        ids = np.asarray(sel.ids)
        ensure(ids.ndim == 1 and np.issubdtype(ids.dtype, np.integer), module, rule,
               f"{where}: batch {i} ids must be a 1-d integer array, got {ids.dtype} "
               f"{ids.shape}")
        ensure(ids.size >= 1, module, rule, f"{where}: batch {i} is empty")
        ensure(bool(np.all((ids >= 0) & (ids < graph.num_nodes))), module, rule,
               f"{where}: batch {i} holds ids outside [0, {graph.num_nodes})")
        bad = ids[~train[ids]]
        ensure(bad.size == 0, module, rule,
               f"{where}: batch {i} yielded non-training node(s) {bad[:5].tolist()} "
               f"(splits {np.asarray(graph.split)[bad[:5]].tolist()})")


@contract("yields_only_train_ids", kinds=("traversal",))
def check_traversal_train_only(module: type[Module], env: CheckEnv) -> None:
    """Every batch holds only training node ids (never validation or test nodes)."""
    g = fixture_graph("standard", cluster=_wants_cluster(module))
    _assert_train_only(module, g, _traverse(module, env, g, 4, 0), "yields_only_train_ids",
                       "standard graph")


@contract("respects_batch_size", kinds=("traversal",))
def check_traversal_batch_size(module: type[Module], env: CheckEnv) -> None:
    """Batches hold between 1 and ``batch_size`` ids; weights, if any, match the ids."""
    g = fixture_graph("standard", cluster=_wants_cluster(module))
    rule = "respects_batch_size"
    for bs in (1, 5, 64):
        for i, sel in enumerate(_traverse(module, env, g, bs, 0, epochs=2)):
            ids = np.asarray(sel.ids)
            ensure(1 <= ids.size <= bs, module, rule,
                   f"batch {i} holds {ids.size} ids with batch_size={bs}")
            if sel.weights is not None:
                w = np.asarray(sel.weights)
                ensure(w.shape == ids.shape, module, rule,
                       f"weights shape {w.shape} differs from ids shape {ids.shape}")
                ensure(bool(np.all(np.isfinite(w)) and np.all(w >= 0)), module, rule,
                       "weights must be finite and non-negative")
                ensure(any("sample_weights" in r.split("|") for r in module.requires),
                       module, "declares_weights_requirement",
                       "returns per-sample weights but does not require 'sample_weights', so "
                       "it may be paired with a model that ignores them")


@contract("deterministic_by_seed", kinds=("traversal",))
def check_traversal_deterministic(module: type[Module], env: CheckEnv) -> None:
    """Two fresh instances with the same seed yield the same batches."""
    g = fixture_graph("standard", cluster=_wants_cluster(module))
    a = _traverse(module, env, g, 4, 11)
    b = _traverse(module, env, g, 4, 11)
    ensure(len(a) == len(b), module, "deterministic_by_seed",
           f"{len(a)} vs {len(b)} batches with the same seed")
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        ensure(np.array_equal(x.ids, y.ids), module, "deterministic_by_seed",
               f"batch {i} differs between two runs with the same seed")


def _graph_check(variant: str) -> CheckFunc:
    def run(module: type[Module], env: CheckEnv) -> None:
        g = fixture_graph(variant, cluster=_wants_cluster(module))
        _assert_train_only(module, g, _traverse(module, env, g, 4, 0),
                           f"copes_with_{variant}_graph", f"{variant} graph")

    run.__doc__ = f"Runs on the '{variant}' fixture graph, yielding only training ids."
    return run


for _variant in GRAPH_VARIANTS[1:]:
    contract(f"copes_with_{_variant}_graph", kinds=("traversal",))(_graph_check(_variant))


@contract("copes_with_regression_labels", kinds=("traversal",))
def check_traversal_regression(module: type[Module], env: CheckEnv) -> None:
    """Unless it requires task:classification, runs on a graph with float (regression) labels."""
    if any("task:classification" in r.split("|") and "task:regression" not in r.split("|")
           for r in module.requires):
        raise SkipCheck("requires task:classification")
    g = fixture_graph("standard", cluster=_wants_cluster(module), task="regression")
    _assert_train_only(module, g, _traverse(module, env, g, 4, 0),
                       "copes_with_regression_labels", "regression-labelled graph")


@contract("visits_every_training_node", kinds=("traversal",), tag="covers_all")
def check_traversal_covers(module: type[Module], env: CheckEnv) -> None:
    """Declares covers_all, so within 200 epochs it visits every training node of each graph."""
    for variant in ("standard", "isolated", "disconnected"):
        g = fixture_graph(variant, cluster=_wants_cluster(module))
        sels = _traverse(module, env, g, 4, 0, epochs=200, until_covered=True)
        seen = np.unique(np.concatenate([np.asarray(s.ids) for s in sels]))
        missing = np.setdiff1d(g.train_ids(), seen)
        ensure(missing.size == 0, module, "visits_every_training_node",
               f"declares 'covers_all' but never visited training nodes "
               f"{missing[:8].tolist()} of the {variant} graph in 200 epochs")


@contract("state_round_trip", kinds=("traversal",))
def check_traversal_state(module: type[Module], env: CheckEnv) -> None:
    """``state_dict`` then ``load_state_dict`` resumes the exact same batch sequence."""
    from hypergraph.traversals import TraversalContext

    g = fixture_graph("standard", cluster=_wants_cluster(module))
    t = build_module(module, env)
    t.setup(g, 4, np.random.default_rng(3), TraversalContext(score=fixture_score, epochs=2))
    t.on_epoch_start(0)
    for _ in range(3):
        sel = t.next_batch()
        if t.needs_feedback:
            t.feedback(sel.ids, fixture_score(sel.ids))
    state = copy.deepcopy(t.state_dict())

    def tail(tr: Any) -> list[np.ndarray]:
        out = []
        for _ in range(6):
            s = tr.next_batch()
            if tr.needs_feedback:
                tr.feedback(s.ids, fixture_score(s.ids))
            out.append(np.asarray(s.ids).copy())
        return out

    first = tail(t)
    u = build_module(module, env)
    u.setup(g, 4, np.random.default_rng(99), TraversalContext(score=fixture_score, epochs=2))
    u.on_epoch_start(0)
    u.load_state_dict(copy.deepcopy(state))
    second = tail(u)
    for i, (x, y) in enumerate(zip(first, second, strict=True)):
        ensure(np.array_equal(x, y), module, "state_round_trip",
               f"after load_state_dict batch {i} differs from the original run")


@contract("survives_graph_change", kinds=("traversal",))
def check_traversal_graph_change(module: type[Module], env: CheckEnv) -> None:
    """After ``on_graph_change`` (edges removed) it still yields only training ids."""
    from hypergraph.traversals import TraversalContext

    g = fixture_graph("standard", cluster=_wants_cluster(module))
    t = build_module(module, env)
    t.setup(g, 4, np.random.default_rng(0), TraversalContext(score=fixture_score, epochs=2))
    t.on_epoch_start(0)
    t.next_batch()
    src, dst, _ = g.edge_list()
    g.remove_edges(src[::2], dst[::2])
    t.on_graph_change(g)
    sels = []
    for _ in range(8):
        s = t.next_batch()
        if t.needs_feedback:
            t.feedback(s.ids, fixture_score(s.ids))
        sels.append(s)
    _assert_train_only(module, g, sels, "survives_graph_change", "after a graph change")


# ---------------------------------------------------------------------------- models
def _model_task(module: type[Module]) -> str:
    if "task:classification" in module.tags or "task:regression" not in module.tags:
        return "classification"
    return "regression"


def _setup_model(module: type[Module], env: CheckEnv, task: str = "", seed: int = 0,
                 ) -> tuple[Any, torch.Tensor, torch.Tensor]:
    task = task or _model_task(module)
    bundle = tiny_bundle(task)
    m = build_module(module, env)
    m.setup(bundle.store.item_shape, bundle.num_outputs, task, device="cpu", seed=seed)
    rows = np.flatnonzero(bundle.split == 0)[:12]
    x = torch.from_numpy(bundle.features()[rows])
    dtype = np.int64 if task == "classification" else np.float32
    y = torch.from_numpy(bundle.y[rows].astype(dtype))
    return m, x, y


def _step(m: Any, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None,
          seed: int = 123) -> torch.Tensor:
    torch.manual_seed(seed)
    out: torch.Tensor = m.train_step(x, y, w)
    return out


@contract("per_sample_loss_shape", kinds=("model",))
def check_model_loss_shape(module: type[Module], env: CheckEnv) -> None:
    """``train_step`` and ``losses`` return one finite loss per sample (shape ``[batch]``)."""
    m, x, y = _setup_model(module, env)
    rule = "per_sample_loss_shape"
    out = _step(m, x, y)
    ensure(tuple(out.shape) == (x.shape[0],), module, rule,
           f"train_step returned shape {tuple(out.shape)} for a batch of {x.shape[0]}")
    ensure(not out.requires_grad, module, rule, "train_step must return detached losses")
    ensure(bool(torch.isfinite(out).all()), module, rule, "train_step returned non-finite losses")
    ls = m.losses(x, y)
    ensure(tuple(ls.shape) == (x.shape[0],), module, rule,
           f"losses() returned shape {tuple(ls.shape)} for a batch of {x.shape[0]}")


@contract("gradient_step_changes_parameters", kinds=("model",))
def check_model_step_changes(module: type[Module], env: CheckEnv) -> None:
    """One ``train_step`` changes the model's outputs; ``losses``/``predict`` change nothing."""
    m, x, y = _setup_model(module, env)
    before = m.predict(x).clone()
    m.losses(x, y)
    again = m.predict(x)
    ensure(torch.equal(before, again), module, "gradient_step_changes_parameters",
           "losses() or predict() changed the model")
    _step(m, x, y)
    after = m.predict(x)
    ensure(not torch.equal(before, after), module, "gradient_step_changes_parameters",
           "a train_step left every output unchanged")


@contract("state_round_trip", kinds=("model",))
def check_model_state(module: type[Module], env: CheckEnv) -> None:
    """save/load restores outputs exactly, and the next step matches (optimiser state too)."""
    rule = "state_round_trip"
    a, x, y = _setup_model(module, env, seed=0)
    _step(a, x, y, seed=1)
    _step(a, x, y, seed=2)
    path = env.tmp_dir / "model.pt"
    a.save(path)
    b, _, _ = _setup_model(module, env, seed=5)
    b.load(path)
    ensure(torch.allclose(a.predict(x), b.predict(x), atol=1e-6), module, rule,
           "outputs differ after save/load")
    _step(a, x, y, seed=3)
    _step(b, x, y, seed=3)
    ensure(torch.allclose(a.predict(x), b.predict(x), atol=1e-5), module, rule,
           "the step after save/load differs from the original's (optimiser state not restored?)")


@contract("predict_empty_batch", kinds=("model",))
def check_model_empty(module: type[Module], env: CheckEnv) -> None:
    """``predict`` on an empty batch returns an empty result; a full batch one row per sample."""
    m, x, _ = _setup_model(module, env)
    out = m.predict(x[:0])
    ensure(out.shape[0] == 0, module, "predict_empty_batch",
           f"predict on an empty batch returned shape {tuple(out.shape)}")
    full = m.predict(x)
    ensure(full.shape[0] == x.shape[0], module, "predict_empty_batch",
           f"predict returned {full.shape[0]} rows for {x.shape[0]} samples")


@contract("deterministic_by_seed", kinds=("model",))
def check_model_deterministic(module: type[Module], env: CheckEnv) -> None:
    """Two set-ups with the same seed give the same outputs before and after a step."""
    a, x, y = _setup_model(module, env, seed=4)
    b, _, _ = _setup_model(module, env, seed=4)
    rule = "deterministic_by_seed"
    ensure(torch.equal(a.predict(x), b.predict(x)), module, rule,
           "same seed, different initial outputs")
    _step(a, x, y)
    _step(b, x, y)
    ensure(torch.allclose(a.predict(x), b.predict(x), atol=1e-6), module, rule,
           "same seed, different outputs after one step")


@contract("per_sample_loss_honest", kinds=("model",), tag="per_sample_loss")
def check_model_per_sample(module: type[Module], env: CheckEnv) -> None:
    """Declares per_sample_loss: sample i's loss equals its loss alone, not a batch mean."""
    m, x, y = _setup_model(module, env)
    rule = "per_sample_loss_honest"
    batch = m.losses(x, y).float()
    alone = torch.cat([m.losses(x[i:i + 1], y[i:i + 1]).float().reshape(-1)
                       for i in range(x.shape[0])])
    ensure(float(batch.max() - batch.min()) > 1e-7, module, rule,
           "every sample of a batch got the same loss (a broadcast mean?)")
    ensure(torch.allclose(batch, alone, rtol=1e-4, atol=1e-5), module, rule,
           "a sample's loss depends on the rest of its batch (max difference "
           f"{float((batch - alone).abs().max()):.3g}); it must be the sample's own loss")
    trained = _step(m, x, y).float()
    ensure(float(trained.max() - trained.min()) > 1e-7, module, rule,
           "train_step returned the same loss for every sample (a broadcast mean?)")


@contract("embedding_honest", kinds=("model",), tag="embedding")
def check_model_embedding(module: type[Module], env: CheckEnv) -> None:
    """Declares embedding: ``embed(x)`` returns one finite vector per sample, deterministically."""
    m, x, _ = _setup_model(module, env)
    rule = "embedding_honest"
    e = m.embed(x)
    ensure(e.ndim == 2 and e.shape[0] == x.shape[0], module, rule,
           f"embed returned shape {tuple(e.shape)} for {x.shape[0]} samples; expected "
           "[batch, dim]")
    ensure(bool(torch.isfinite(e).all()), module, rule, "embed returned non-finite values")
    ensure(torch.equal(e, m.embed(x)), module, rule, "embed is not deterministic")


@contract("sample_weights_honest", kinds=("model",), tag="sample_weights")
def check_model_weights(module: type[Module], env: CheckEnv) -> None:
    """Declares sample_weights: all-ones weights equal no weights, other weights change the step."""
    rule = "sample_weights_honest"
    a, x, y = _setup_model(module, env, seed=8)
    b, _, _ = _setup_model(module, env, seed=8)
    c, _, _ = _setup_model(module, env, seed=8)
    _step(a, x, y, None)
    _step(b, x, y, torch.ones(x.shape[0]))
    w = torch.zeros(x.shape[0])
    w[0] = float(x.shape[0])
    _step(c, x, y, w)
    pa, pb, pc = a.predict(x), b.predict(x), c.predict(x)
    ensure(torch.allclose(pa, pb, atol=1e-6), module, rule,
           "weights of all ones gave another step than no weights")
    ensure(not torch.allclose(pa, pc, atol=1e-7), module, rule,
           "putting all the weight on one sample did not change the step: weights are ignored")


def _task_check(task: str) -> CheckFunc:
    def run(module: type[Module], env: CheckEnv) -> None:
        m, x, y = _setup_model(module, env, task=task)
        rule = f"task_{task}_honest"
        losses = _step(m, x, y)
        ensure(tuple(losses.shape) == (x.shape[0],) and bool(torch.isfinite(losses).all()),
               module, rule, f"train_step on a {task} batch gave shape {tuple(losses.shape)} "
               "or non-finite losses")
        out = m.predict(x)
        width = 3 if task == "classification" else 1
        ensure(out.shape[0] == x.shape[0] and int(np.prod(out.shape[1:])) == width, module,
               rule, f"predict gave shape {tuple(out.shape)} for {task} with {width} outputs")
        metrics = m.evaluate(x, y)
        ensure("loss" in metrics, module, rule, f"evaluate returned {sorted(metrics)} (no loss)")

    run.__doc__ = f"Declares task:{task}: trains, predicts and evaluates on a {task} batch."
    return run


for _task in ("classification", "regression"):
    contract(f"task_{_task}_honest", kinds=("model",), tag=f"task:{_task}")(_task_check(_task))


# ---------------------------------------------------------------------------- managers
def _manager_world(module: type[Module], env: CheckEnv, seed: int = 0,
                   ) -> tuple[Any, HyperGraph, Any, Any]:
    from hypergraph.trainers import BatchGatherer

    bundle = tiny_bundle()
    if _wants_cluster(module):
        graph = fixture_graph("standard", cluster=True)
        bundle = tiny_bundle(n=len(graph.store))  # type: ignore[arg-type]
        bundle.store = graph.store  # type: ignore[assignment]
    else:
        graph = knn_graph(bundle)
    model = _build_partner("model", module, env)
    model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task, device="cpu", seed=0)
    gather = BatchGatherer(graph, bundle, torch.device("cpu"), np.random.default_rng(0))
    mgr = build_module(module, env)
    mgr.setup(graph, np.random.default_rng(seed))
    return mgr, graph, model, gather


def _run_manager(module: type[Module], mgr: Any, graph: HyperGraph, model: Any, gather: Any,
                 epochs: int, rng: np.random.Generator, first_epoch: int = 0) -> None:
    split, label, n = graph.split.copy(), np.asarray(graph.label).copy(), graph.num_nodes
    train = graph.train_ids()

    def verify(changed: Any, before: dict[str, np.ndarray], where: str) -> None:
        found = graph_problems(graph)
        ensure(not found, module, "graph_valid_after_every_update", f"after {where}: "
               + "; ".join(found))
        ensure(graph.num_nodes == n and np.array_equal(graph.split, split)
               and np.array_equal(np.asarray(graph.label), label), module,
               "graph_valid_after_every_update",
               f"after {where}: the nodes, splits or labels changed")
        ensure(isinstance(changed, bool | np.bool_), module, "reports_graph_changes",
               f"{where} returned {changed!r}; hooks return True/False")
        now = _graph_arrays(graph)
        same = set(now) == set(before) and all(
            now[k].shape == before[k].shape and np.array_equal(now[k], before[k]) for k in now)
        ensure(bool(changed) or same, module, "reports_graph_changes",
               f"{where} changed the graph but returned False, so the traversal is not told")

    for epoch in range(first_epoch, first_epoch + epochs):
        for step in range(3):
            ids = rng.choice(train, size=min(8, train.size), replace=False)
            x, y = gather(ids)
            losses = model.train_step(x, y).float().numpy()
            before = _graph_arrays(graph)
            changed = mgr.on_step(graph, model, ids, losses)
            verify(changed, before, f"on_step (epoch {epoch}, step {step})")
        before = _graph_arrays(graph)
        changed = mgr.on_epoch_end(graph, model, epoch)
        verify(changed, before, f"on_epoch_end (epoch {epoch})")


@contract("graph_valid_after_every_update", kinds=("manager",))
def check_manager_valid(module: type[Module], env: CheckEnv) -> None:
    """After every hook the graph is valid, nodes/splits/labels unchanged, changes reported."""
    mgr, graph, model, gather = _manager_world(module, env)
    _run_manager(module, mgr, graph, model, gather, 4, np.random.default_rng(1))


@contract("deterministic_by_seed", kinds=("manager",))
def check_manager_deterministic(module: type[Module], env: CheckEnv) -> None:
    """Two runs with the same seeds end with the same graph."""
    graphs = []
    for _ in range(2):
        torch.manual_seed(0)
        mgr, graph, model, gather = _manager_world(module, env, seed=4)
        _run_manager(module, mgr, graph, model, gather, 3, np.random.default_rng(2))
        graphs.append(graph)
    diff = _same_structure(graphs[0], graphs[1])
    ensure(not diff, module, "deterministic_by_seed", f"two runs ended in different graphs "
           f"({diff})")


@contract("state_round_trip", kinds=("manager",))
def check_manager_state(module: type[Module], env: CheckEnv) -> None:
    """``state_dict`` survives a deep copy and ``load_state_dict`` accepts it."""
    mgr, graph, model, gather = _manager_world(module, env)
    _run_manager(module, mgr, graph, model, gather, 2, np.random.default_rng(1))
    state = copy.deepcopy(mgr.state_dict())
    fresh = build_module(module, env)
    fresh.setup(graph, np.random.default_rng(77))
    fresh.load_state_dict(state)
    again = copy.deepcopy(fresh.state_dict())
    ensure(_nested_equal(state, again), module, "state_round_trip",
           "state_dict() after load_state_dict() differs from the state loaded")



# ---------------------------------------------------------------------------- trainers
@contract("fit_returns_metrics", kinds=("trainer",))
def check_trainer_fit(module: type[Module], env: CheckEnv) -> None:
    """``fit`` on a tiny context trains and returns val/test metrics and counters."""
    from hypergraph.trainers import TrainContext

    bundle = tiny_bundle()
    graph = knn_graph(bundle)
    model = _build_partner("model", module, env)
    model.setup(bundle.store.item_shape, bundle.num_outputs, bundle.task, device="cpu", seed=0)
    traversal = _build_partner("traversal", module, env)
    manager = _build_partner("manager", module, env)
    trainer = build_module(module, env)
    ctx = TrainContext(bundle=bundle, graph=graph, model=model, traversal=traversal,
                       manager=manager, streams=RngStreams(0), device=torch.device("cpu"))
    result = trainer.fit(ctx)
    rule = "fit_returns_metrics"
    for key in ("val", "test", "samples_seen", "steps", "epochs", "wall_s"):
        ensure(key in result, module, rule, f"fit() result lacks '{key}'")
    ensure(result["steps"] >= 1 and result["samples_seen"] >= 1, module, rule,
           f"fit() took {result['steps']} steps")
    ensure("loss" in result["test"], module, rule, "test metrics lack 'loss'")
