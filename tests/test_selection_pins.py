"""Pinned selections: a fingerprint of the first batches of every traversal, per seed.

Each case drives a traversal outside the trainer for :data:`STEPS` batches on a small fixed
graph: epoch starts, deterministic fake losses as feedback, an edge change and a withdrawal of
training nodes (what managers do), and a ``state_dict`` / ``load_state_dict`` round trip into a
fresh instance mid-way. The SHA-256 of every selected batch (ids and weights) must equal the
value recorded when the pins were written: a refactor that is meant to change no behaviour
proves it here. A deliberate change of selections updates :data:`PINS` (run this file with
``HYPERGRAPH_PRINT_PINS=1`` and ``-s`` to print the new values) and says why in its commit.
"""

from __future__ import annotations

import copy
import hashlib
import os
from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from hypergraph import registry
from hypergraph.graph import HyperGraph
from hypergraph.testing import fixture_graph, knn_graph, tiny_bundle
from hypergraph.traversals import Traversal, TraversalContext

STEPS = 36
EPOCH = 6  # batches between on_epoch_start calls
EDGE_CHANGE = 10  # before this batch, a manager removes edges
WITHDRAW = 17  # before this batch, a manager withdraws training nodes
RESUME = 23  # before this batch, the state moves to a fresh instance
SEEDS = (0, 1)
BATCH = 8

#: (case id, registered name, parameters, graph: "points" or "clusters")
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("comprehensive", "comprehensive", {}, "points"),
    ("uniform", "uniform", {}, "points"),
    ("infobatch", "infobatch", {}, "points"),
    ("rho_loss", "rho_loss", {"il_width": 8, "il_epochs": 2}, "points"),
    ("loss_topk", "loss_topk", {}, "points"),
    ("loss_topk-recompute", "loss_topk", {"recompute_every": 1, "pressure": 10.0}, "points"),
    ("random_walk", "random_walk", {}, "points"),
    ("random_walk-restart", "random_walk",
     {"restart": 0.2, "teleport_to": "degree", "no_return": 0, "walkers": 5}, "points"),
    ("cluster_hop", "cluster_hop", {}, "clusters"),
    ("ivalue", "ivalue", {"refresh": 8, "hops": 1}, "points"),  # the default before 2026-12-03
    ("ivalue-hops1", "ivalue", {"hops": 1}, "points"),  # the default until hops 0 (2026-12-03)
    ("ivalue-default", "ivalue", {}, "points"),
    ("ivalue-exact", "ivalue", {"engine": "exact", "signal": "reducible", "hops": 2,
                                "refresh": 8}, "points"),
    ("ivalue-walk", "ivalue",
     {"warp": 0.5, "return_delay": 0.5, "contra": 1.0, "trust": 1.0, "signal": "gated",
      "refresh": 3, "hops": 1}, "points"),
    ("ivalue-variance", "ivalue",
     {"signal": "variance", "dedup": 0.0, "stratify": "none", "transform": "z", "sweep": 0.25,
      "refresh": 8, "hops": 1}, "points"),
    ("stride", "stride", {"stride": 5}, "points"),
    ("components-epoch_dedup", "components", {"inner": "comprehensive", "dedup": 0.5},
     "points"),
    ("components-infobatch", "components",
     {"inner": "infobatch", "inner_params": {"prune_ratio": 0.5}, "dedup": 0.5, "cover": 0.5},
     "points"),
    ("components-rho_loss", "components",
     {"inner": "rho_loss", "inner_params": {"il_width": 8, "il_epochs": 2}, "dedup": 0.5,
      "cover": 0.25}, "points"),
]

PINS: dict[str, tuple[str, str]] = {
    "comprehensive": ("9eacbce74b2ac342957be1df5af9bd9b3a755ed799a1ccb9853ce066cc89d9dc",
                      "9b516c339973e6e75eddcee2c10eabbd32193f3fd54781e54e3f7ed16ac3619d"),
    "uniform": ("cee3675920fd3450f60834fb2382204e0b98adeaf623bf613e12f23f47f2bad1",
                "30d2db9ef7a3d854ac408ddeca7a7f086e2df10d17b2f9d5e7db7d698b4162c5"),
    "infobatch": ("1e0ab7edaae5b5cf807747ec6b3bde2c810815dbeaa69a7c371ed7ed55f2aec7",
                  "e7c93a50d38f1297f646bbfad69c85b1493d14981fd9214a3d917e08427903b4"),
    "rho_loss": ("74369734bf8351e6ec3030b66da762eef300773d35113745ab31e59db4955673",
                 "fe5e4f285201972ed6354902272cc45bcfac1d782bff8895a110c3ba78224d87"),
    "loss_topk": ("dfe1c35b81e77d3814441c2f9cf6325dd3c953ae17312ec28f39655986d018b4",
                  "66563771945118412366b2ec56c2b5c8caf5f5128f7196cedb2ec6c6fae54dd6"),
    "loss_topk-recompute": ("62c176ca6670694842c3b64e3f3e328e57685f502861abb91aa0b7348772a7fc",
                            "6346a1a09b68921bf1e2fdea10964b481357be0ff4d3231fa9f12c3993841ac1"),
    "random_walk": ("00c824b85a400124a364ae95d6bc0896416d1289b5d6b2489d7316bb6cb41dea",
                    "683deb7ba3fb0ef4907dc0b489596133f2a54a2baeb28ec6bd90dcde49c020e3"),
    "random_walk-restart": ("3a66c26a808c522ba169026ba2ea36e13b40a986d3257353320acaab8750d18e",
                            "add92025158477cb7d6281c793ae252d4ef83544a9e1d84de02a45c6e33fd670"),
    "cluster_hop": ("32626519954d2161325cd7f68647d3a6d53a4d9cbb78fe6608c37fe1719f5b2b",
                    "39766eb4df9aa9713ac396e079a9ed96b0bb215922d68b555cb73c357a703ccf"),
    "ivalue": ("b2defea6e48c27140f701d0a5fba1236c1b3382f017559b123e1bddfacffb65d",
               "9dc0697c3f6ca2edfb96d5a664e09d810b244da760f8dcf5ab75afc3e81a05dd"),
    "ivalue-hops1": ("e3f924da65e5d6bad99fbb51724e6028ee4008bfe4bee7e769dbb9083561917c",
                     "14fcf352ff811444b5c4130b4dca5a2fb941c20db41e95354462d62bd50dd647"),
    "ivalue-default": ("8fc118f004dde7b279effc37006361166aea8419747c39ebb5f4e539b77bafb0",
                       "3b9b18850016a2a21c5c63df0decf70a97c8f2f03a9fd6b0501f2ef261177d39"),
    "ivalue-exact": ("86e08c0e541719c5fd35ecfaf618f98832bed33646de36eea78f074221295c01",
                     "88da2fc18bc94f45361da66154ff4dcc9fbec8e2f5ab05030e3052030c3f972f"),
    "ivalue-walk": ("09702746949513d6e64cfe3cbd243d994c65704f07342e6ec6d854b794b89788",
                    "81e5491b855b328118fae500c749344ffceafb549827fa2eeb5db6c5bcbf3c1a"),
    "ivalue-variance": ("fc5e389a50ee1781678f6217b1dd2671d6b790063d6d382b59a25a68f90c1f52",
                        "fcb243e8704b2339cfd53397d9e024f861b391a2661df7f52920083c70e406e1"),
    "stride": ("a28be189deb9ac2afc9b648d4d06a2c4a39dc850e41b36808d2fe6ca2e01220f",
               "0457f0bed7db1f59e1201a4ba4ea549cabb7824e5e7c8a57929a50f998b41cce"),
    "components-epoch_dedup": ("d1b99412bffb179ac88d7dbce4318ec74c10f803a8c4bfb8f0722ecf8896b13c",
                               "7323637eb0b3f491af30cab48af929ba9ed894dd09c6b3e45b60a73878b387f5"),
    "components-infobatch": ("b3555fb03a7531135d4497e9bd31923290cba1f0db9e829ac44b837529cc85b0",
                             "87658f6c845239ee2fa9efc95259cdea2656940ec2903cccecdf0c7074fde531"),
    "components-rho_loss": ("cbf7b4943b39afdf10f01f73d91d7d4a8c18a9d12b161ef2ffcbe7d3c86674eb",
                            "cf6f70982fb414463656942d4280dbbabf963bb4fef39619edd45b7599cc6b56"),
}


@lru_cache(maxsize=2)
def _base_graph(kind: str) -> HyperGraph:
    if kind == "clusters":
        return fixture_graph("standard", cluster=True, seed=2)
    g = knn_graph(tiny_bundle(n=90, seed=3), k=5)
    src, dst, w = g.edge_list()
    twins = (src + dst) % 11 == 0  # near-duplicate pairs (symmetric), for ivalue's dedup
    g.set_edges(src, dst, np.where(twins, 1.0, w), symmetric=False)
    return g


def _graph(kind: str) -> HyperGraph:
    """A fresh copy (managers change graphs in place)."""
    g = _base_graph(kind)
    src, dst, w = g.edge_list()
    out = HyperGraph.from_edges(g.num_nodes, src, dst, w, split=g.split.copy(),
                                label=np.asarray(g.label).copy(), symmetric=False)
    out.store = g.store
    out.store_row = g.store_row.copy()
    out.members = g.members
    out.attrs = dict(g.attrs) if g.attrs else None
    return out


def _losses(ids: np.ndarray, step: int) -> np.ndarray:
    """Deterministic fake per-sample losses that change from step to step."""
    ids = np.asarray(ids, np.int64)
    return (((ids * 2654435761 + step * 40503) % 1000) / 400.0 + 0.01).astype(np.float32)


def _score(ids: np.ndarray) -> np.ndarray:
    """A fixed pseudo-loss per node (the trainer's forward pass, for rho_loss and loss_topk)."""
    ids = np.asarray(ids, np.int64)
    return (((ids * 2246822519) % 997) / 997.0 + 0.01).astype(np.float32)


def fingerprint(name: str, params: dict[str, Any], kind: str, seed: int) -> str:
    """SHA-256 over the first :data:`STEPS` selections of one traversal and seed."""
    graph = _graph(kind)
    cls = registry.resolve("traversal", name)
    assert issubclass(cls, Traversal)
    context = TraversalContext(score=_score, epochs=4)
    trav: Traversal = cls(**params)
    trav.setup(graph, BATCH, np.random.default_rng(seed), context)
    digest = hashlib.sha256()
    epoch = 0
    for step in range(STEPS):
        if step == EDGE_CHANGE:
            src, dst, _ = graph.edge_list()
            graph.remove_edges(src[::3], dst[::3])
            trav.on_graph_change(graph)
        if step == WITHDRAW:
            mask = np.ones(graph.num_nodes, bool)
            mask[graph.train_ids()[::5]] = False
            graph.set_active(mask)
            trav.on_graph_change(graph)
        if step == RESUME:
            state = copy.deepcopy(trav.state_dict())
            trav = cls(**params)
            trav.setup(graph, BATCH, np.random.default_rng(seed + 1000), context)
            trav.load_state_dict(state)
        if step % EPOCH == 0:
            trav.on_epoch_start(epoch)
            epoch += 1
        sel = trav.next_batch()
        digest.update(np.ascontiguousarray(sel.ids, np.int64).tobytes())
        digest.update(b"w" if sel.weights is None
                      else np.ascontiguousarray(sel.weights, np.float32).tobytes())
        if trav.needs_feedback:
            trav.feedback(sel.ids, _losses(sel.ids, step))
    return digest.hexdigest()


def test_every_built_in_traversal_is_pinned() -> None:
    assert set(registry.names("traversal")) <= {name for _, name, _, _ in CASES}


@pytest.mark.parametrize(("case", "name", "params", "kind"), CASES,
                         ids=[c[0] for c in CASES])
def test_selections_match_the_pins(plugin: None, case: str, name: str, params: dict[str, Any],
                                   kind: str) -> None:
    got = tuple(fingerprint(name, params, kind, seed) for seed in SEEDS)
    if os.environ.get("HYPERGRAPH_PRINT_PINS"):
        print(f'\n    "{case}": ("{got[0]}",\n{" " * (9 + len(case))}"{got[1]}"),')
    assert got == PINS[case], f"{case}: the selections changed"
