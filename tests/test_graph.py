"""The array-backed graph checked against networkx on random graphs (property tests)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypergraph.exceptions import DataError
from hypergraph.graph import HyperGraph

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# weights are multiples of 1/4 (exact in float32); 0 is a legal weight
WEIGHT = st.integers(0, 12).map(lambda k: k / 4.0)


@st.composite
def edge_lists(draw: st.DrawFn, n: int, max_edges: int = 30) -> list[tuple[int, int, float]]:
    m = draw(st.integers(0, max_edges))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), WEIGHT),
                          min_size=m, max_size=m))
    return [(u, v, w) for u, v, w in pairs if u != v]


@st.composite
def graphs(draw: st.DrawFn, min_nodes: int = 1, max_nodes: int = 12,
           ) -> tuple[HyperGraph, dict[tuple[int, int], float], bool]:
    """A random graph plus its reference edge dict ``(u, v) -> weight`` (directed entries)."""
    n = draw(st.integers(min_nodes, max_nodes))
    symmetric = draw(st.booleans())
    edges = draw(edge_lists(n))
    hyper = draw(st.lists(st.lists(st.integers(0, n - 1), min_size=1, max_size=4, unique=True),
                          max_size=4))
    split = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int8)
    label = np.array(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)), np.int64)
    g = HyperGraph.from_edges(
        n, [e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges],
        symmetric=symmetric, split=split, label=label, hyperedges=hyper or None,
        attrs={"colour": np.arange(n, dtype=np.int64) % 3},
    )
    return g, reference(edges, symmetric), symmetric


def reference(edges: list[tuple[int, int, float]], symmetric: bool,
              base: dict[tuple[int, int], float] | None = None) -> dict[tuple[int, int], float]:
    """Directed entries with the documented rule: duplicates keep the largest weight."""
    ref = dict(base or {})
    for u, v, w in edges:
        if u == v:
            continue
        pairs = [(u, v), (v, u)] if symmetric else [(u, v)]
        for key in pairs:
            ref[key] = max(ref.get(key, -1.0), w)
    return ref


def as_dict(g: HyperGraph) -> dict[tuple[int, int], float]:
    src, dst, w = g.edge_list()
    return {(int(a), int(b)): float(c) for a, b, c in zip(src, dst, w, strict=True)}


def to_nx(n: int, ref: dict[tuple[int, int], float]) -> nx.DiGraph:
    ref_g = nx.DiGraph()
    ref_g.add_nodes_from(range(n))
    ref_g.add_weighted_edges_from((u, v, w) for (u, v), w in ref.items())
    return ref_g


def assert_same_graph(a: HyperGraph, b: HyperGraph) -> None:
    for name in ("indptr", "indices", "weights", "split", "label", "store_row"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.incidence is None) == (b.incidence is None)
    if a.incidence is not None and b.incidence is not None:
        assert (a.incidence != b.incidence).nnz == 0
    assert set(a.attrs or {}) == set(b.attrs or {})
    for key in a.attrs or {}:
        np.testing.assert_array_equal(a.attrs[key], b.attrs[key])  # type: ignore[index]


def hyperedge_sets(g: HyperGraph) -> list[list[int]]:
    return [sorted(g.hyperedge(h).members.tolist()) for h in range(g.num_hyperedges)]


# --------------------------------------------------------------------------- CSR basics
@SETTINGS
@given(graphs())
def test_csr_matches_networkx(case: tuple[HyperGraph, dict, bool]) -> None:
    g, ref, _ = case
    g.validate()
    ref_g = to_nx(g.num_nodes, ref)
    assert as_dict(g) == ref
    assert g.num_edges == ref_g.number_of_edges()
    np.testing.assert_array_equal(g.degree(), [ref_g.out_degree(i) for i in range(g.num_nodes)])
    np.testing.assert_allclose(g.weighted_degree(),
                               [ref_g.out_degree(i, weight="weight") for i in range(g.num_nodes)])
    for i in range(g.num_nodes):
        ids, w = g.neighbors(i)
        assert np.all(np.diff(ids) > 0), "neighbours must be sorted and distinct"
        expected = sorted(ref_g.successors(i))
        assert ids.tolist() == expected
        assert w.tolist() == [ref_g[i][j]["weight"] for j in expected]
        assert g.degree(i) == len(expected)
        for j in range(g.num_nodes):
            assert g.has_edge(i, j) == ref_g.has_edge(i, j)
    is_sym = all(ref.get((v, u)) == w for (u, v), w in ref.items())
    assert g.is_symmetric() == is_sym


@SETTINGS
@given(graphs(), st.data())
def test_add_edges_in_bulk(case: tuple[HyperGraph, dict, bool], data: st.DataObject) -> None:
    g, ref, _ = case
    extra = data.draw(edge_lists(g.num_nodes, 12))
    sym = data.draw(st.booleans())
    version = g.version
    g.add_edges([e[0] for e in extra], [e[1] for e in extra], [e[2] for e in extra],
                symmetric=sym)
    g.validate()
    assert as_dict(g) == reference(extra, sym, ref)
    assert g.version > version
    np.testing.assert_allclose(
        g.weighted_degree(),
        np.bincount([u for u, _ in reference(extra, sym, ref)], minlength=g.num_nodes,
                    weights=list(reference(extra, sym, ref).values())) if ref or extra
        else np.zeros(g.num_nodes))


@SETTINGS
@given(graphs(), st.data())
def test_remove_edges_in_bulk(case: tuple[HyperGraph, dict, bool], data: st.DataObject) -> None:
    g, ref, _ = case
    n = g.num_nodes
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               max_size=10))
    existing = sorted(ref)
    if existing:
        pairs += data.draw(st.lists(st.sampled_from(existing), max_size=5))
    sym = data.draw(st.booleans())
    gone = {(u, v) for u, v in pairs} | ({(v, u) for u, v in pairs} if sym else set())
    expected = {k: w for k, w in ref.items() if k not in gone}
    removed = g.remove_edges([p[0] for p in pairs], [p[1] for p in pairs], symmetric=sym)
    g.validate()
    assert removed == len(ref) - len(expected)
    assert as_dict(g) == expected
    np.testing.assert_array_equal(g.degree(), np.bincount([u for u, _ in expected],
                                                          minlength=n).astype(np.int64))


def test_add_edges_rejects_bad_weights() -> None:
    g = HyperGraph.from_edges(3, [0], [1])
    with pytest.raises(DataError, match="weight"):
        g.add_edges([1], [2], [-1.0])
    with pytest.raises(DataError, match="weight"):
        g.add_edges([1], [2], [float("nan")])
    with pytest.raises(DataError, match="weights"):
        g.add_edges([1, 0], [2, 2], [1.0])
    assert as_dict(g) == {(0, 1): 1.0, (1, 0): 1.0}


def test_symmetric_flag() -> None:
    sym = HyperGraph.from_edges(3, [0, 1], [1, 2], [2.0, 3.0], symmetric=True)
    assert sym.is_symmetric() and as_dict(sym) == {(0, 1): 2.0, (1, 0): 2.0, (1, 2): 3.0,
                                                   (2, 1): 3.0}
    directed = HyperGraph.from_edges(3, [0, 1], [1, 2], [2.0, 3.0], symmetric=False)
    assert not directed.is_symmetric() and as_dict(directed) == {(0, 1): 2.0, (1, 2): 3.0}
    assert isinstance(sym.to_networkx(), nx.Graph) and not sym.to_networkx().is_directed()
    assert directed.to_networkx().is_directed()
    # self loops are dropped unless allowed
    assert HyperGraph.from_edges(2, [0, 0], [0, 1]).num_edges == 2
    assert HyperGraph.from_edges(2, [0], [0], allow_self_loops=True).num_edges == 1


# --------------------------------------------------------------------------- subgraphs
def check_subgraph(g: HyperGraph, ref: dict, ids: np.ndarray, sub: HyperGraph,
                   hyper_before: list[list[int]]) -> None:
    sub.validate()
    assert sub.num_nodes == ids.size
    pos = {int(old): new for new, old in enumerate(ids)}
    expected = {(pos[u], pos[v]): w for (u, v), w in ref.items() if u in pos and v in pos}
    assert as_dict(sub) == expected
    # networkx's induced subgraph, relabelled by position, agrees
    nx_sub = nx.relabel_nodes(to_nx(g.num_nodes, ref).subgraph(ids.tolist()), pos)
    assert {(u, v): d["weight"] for u, v, d in nx_sub.edges(data=True)} == expected
    for name in ("split", "label", "store_row"):
        np.testing.assert_array_equal(getattr(sub, name), getattr(g, name)[ids])
    assert sub.attrs is not None
    np.testing.assert_array_equal(sub.attrs["parent_id"], ids)
    np.testing.assert_array_equal(sub.attrs["colour"], g.attrs["colour"][ids])  # type: ignore[index]
    # hyperedges: members kept inside, re-indexed, empty hyperedges dropped, order preserved
    want = [sorted(pos[m] for m in h if m in pos) for h in hyper_before]
    assert hyperedge_sets(sub) == [h for h in want if h]


@SETTINGS
@given(graphs(), st.data())
def test_subgraph_by_ids(case: tuple[HyperGraph, dict, bool], data: st.DataObject) -> None:
    g, ref, _ = case
    ids = np.array(data.draw(st.permutations(range(g.num_nodes))), np.int64)
    ids = ids[: data.draw(st.integers(0, g.num_nodes))]
    sub = g.subgraph(ids)
    check_subgraph(g, ref, ids, sub, hyperedge_sets(g))
    # nested subgraphs keep ids of the original graph in parent_id
    if sub.num_nodes:
        inner = np.arange(sub.num_nodes)[::-1][: max(1, sub.num_nodes // 2)].copy()
        subsub = sub.subgraph(inner)
        np.testing.assert_array_equal(subsub.attrs["parent_id"], ids[inner])  # type: ignore[index]
        np.testing.assert_array_equal(subsub.store_row, g.store_row[ids[inner]])


@SETTINGS
@given(graphs(), st.data())
def test_subgraph_by_mask(case: tuple[HyperGraph, dict, bool], data: st.DataObject) -> None:
    g, ref, _ = case
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=g.num_nodes,
                                       max_size=g.num_nodes)), bool)
    sub = g.subgraph(mask)
    check_subgraph(g, ref, np.flatnonzero(mask), sub, hyperedge_sets(g))


@SETTINGS
@given(graphs(min_nodes=2))
def test_split_subgraph(case: tuple[HyperGraph, dict, bool]) -> None:
    g, ref, _ = case
    for split in ("train", "val", "test"):
        sub = g.split_subgraph(split)
        ids = g.ids_in_split(split)
        check_subgraph(g, ref, ids, sub, hyperedge_sets(g))
        assert np.all(sub.split == ("train", "val", "test").index(split))


def test_subgraph_of_cluster_nodes_keeps_members() -> None:
    g = HyperGraph.from_edges(4, [0, 1, 2], [1, 2, 3])
    g.store_row = np.array([-1, 5, -1, 6], np.int64)
    g.members = (np.array([0, 2, 2, 5, 5]), np.array([10, 11, 12, 13, 14]))
    g.validate()
    sub = g.subgraph([2, 0, 3])
    sub.validate()
    ptr, rows = sub.members  # type: ignore[misc]
    assert [rows[ptr[i]:ptr[i + 1]].tolist() for i in range(3)] == [[12, 13, 14], [10, 11], []]
    np.testing.assert_array_equal(sub.store_row, [-1, -1, 6])


def test_subgraph_rejects_bad_input() -> None:
    g = HyperGraph.from_edges(3, [0], [1])
    with pytest.raises(DataError, match="distinct"):
        g.subgraph([0, 0])
    with pytest.raises(DataError, match=r"\[0, 3\)"):
        g.subgraph([0, 3])
    with pytest.raises(DataError, match="one entry per node"):
        g.subgraph(np.array([True, False]))


# --------------------------------------------------------------------------- persistence
@SETTINGS
@given(case=graphs())
def test_save_load_round_trip(case: tuple[HyperGraph, dict, bool], tmp_path: Path) -> None:
    g, _, _ = case
    sub = g.subgraph(np.arange(g.num_nodes)[::-1].copy())  # adds parent_id
    for graph in (g, sub):
        path = tmp_path / "graph.npz"
        graph.save(path)
        back = HyperGraph.load(path)
        assert_same_graph(graph, back)
        assert hyperedge_sets(back) == hyperedge_sets(graph)
    assert not list(tmp_path.glob("*.tmp"))


def test_save_load_keeps_members(tmp_path: Path) -> None:
    g = HyperGraph.from_edges(2, [0], [1])
    g.store_row = np.array([-1, 3], np.int64)
    g.members = (np.array([0, 2, 2]), np.array([7, 8]))
    g.save(tmp_path / "g.npz")
    back = HyperGraph.load(tmp_path / "g.npz")
    assert back.members is not None
    np.testing.assert_array_equal(back.members[0], g.members[0])
    np.testing.assert_array_equal(back.members[1], g.members[1])


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        HyperGraph.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a graph")
    with pytest.raises(DataError, match="not a HyperGraph"):
        HyperGraph.load(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, indptr=np.zeros(1, np.int64))
    with pytest.raises(DataError, match="lacks arrays"):
        HyperGraph.load(partial)


# --------------------------------------------------------------------------- networkx interop
@SETTINGS
@given(graphs())
def test_networkx_round_trip(case: tuple[HyperGraph, dict, bool]) -> None:
    g, ref, _ = case
    ng = g.to_networkx()
    assert ng.number_of_nodes() == g.num_nodes
    assert ng.is_directed() == (not g.is_symmetric())
    got = {(u, v): d["weight"] for u, v, d in ng.edges(data=True)}
    if not ng.is_directed():
        got |= {(v, u): w for (u, v), w in got.items()}
    assert got == ref
    for i in range(g.num_nodes):
        assert ng.nodes[i]["split"] == g.split[i] and ng.nodes[i]["label"] == g.label[i]
    back = HyperGraph.from_networkx(ng)
    for name in ("indptr", "indices", "weights", "split", "label", "store_row"):
        np.testing.assert_array_equal(getattr(back, name), getattr(g, name), err_msg=name)


@SETTINGS
@given(st.integers(1, 12), st.data())
def test_from_networkx_matches_from_edges(n: int, data: st.DataObject) -> None:
    edges = data.draw(edge_lists(n))
    directed = data.draw(st.booleans())
    ng: nx.Graph = nx.DiGraph() if directed else nx.Graph()
    ng.add_nodes_from(range(n))
    for u, v, w in edges:  # networkx keeps the last weight; feed the max to compare
        if ng.has_edge(u, v):
            w = max(w, ng[u][v]["weight"])
        ng.add_edge(u, v, weight=w)
    g = HyperGraph.from_networkx(ng)
    assert as_dict(g) == reference(edges, not directed)


def test_from_networkx_relabels_in_order() -> None:
    ng = nx.Graph()
    ng.add_node("b", label=4, split=1)
    ng.add_node("a", label=2)
    ng.add_edge("a", "b", weight=0.5)
    g = HyperGraph.from_networkx(ng)
    assert g.num_nodes == 2 and as_dict(g) == {(0, 1): 0.5, (1, 0): 0.5}
    assert g.label.tolist() == [4, 2] and g.split.tolist() == [1, 0]


# --------------------------------------------------------------------------- permutation
@SETTINGS
@given(graphs(), st.data())
def test_invariance_to_node_permutation(case: tuple[HyperGraph, dict, bool],
                                        data: st.DataObject) -> None:
    g, ref, sym = case
    n = g.num_nodes
    perm = np.array(data.draw(st.permutations(range(n))), np.int64)  # old i -> new perm[i]
    edges = [(int(perm[u]), int(perm[v]), w) for (u, v), w in ref.items()]
    inv = np.argsort(perm)
    h = HyperGraph.from_edges(n, [e[0] for e in edges], [e[1] for e in edges],
                              [e[2] for e in edges], symmetric=False, split=g.split[inv],
                              label=g.label[inv], store_row=g.store_row[inv])
    np.testing.assert_array_equal(h.degree()[perm], g.degree())
    np.testing.assert_allclose(h.weighted_degree()[perm], g.weighted_degree())
    for i in range(n):
        ids, w = g.neighbors(i)
        hids, hw = h.neighbors(int(perm[i]))
        assert dict(zip(perm[ids].tolist(), w.tolist(), strict=True)) == dict(
            zip(hids.tolist(), hw.tolist(), strict=True))
    assert h.is_symmetric() == g.is_symmetric()
    a, b = g.to_scipy().toarray(), h.to_scipy().toarray()
    np.testing.assert_array_equal(b[np.ix_(perm, perm)], a)
    # the same node set, named differently, gives the very same subgraph
    ids = np.array(data.draw(st.permutations(range(n))), np.int64)[: data.draw(
        st.integers(0, n))]
    assert_same_graph_arrays(g.subgraph(ids), h.subgraph(perm[ids]))
    assert sorted(h.train_ids().tolist()) == sorted(perm[g.train_ids()].tolist())
    assert sym in (True, False)
    # removing the same edges, named differently, leaves the permuted adjacency
    gone = list(ref)[: data.draw(st.integers(0, len(ref)))]
    g.remove_edges([u for u, _ in gone], [v for _, v in gone], symmetric=False)
    h.remove_edges([int(perm[u]) for u, _ in gone], [int(perm[v]) for _, v in gone],
                   symmetric=False)
    a, b = g.to_scipy().toarray(), h.to_scipy().toarray()
    np.testing.assert_array_equal(b[np.ix_(perm, perm)], a)
    np.testing.assert_array_equal(h.degree()[perm], g.degree())


# --------------------------------------------------------------------------- edge order
@SETTINGS
@given(graphs(), st.data())
def test_invariance_to_edge_order(case: tuple[HyperGraph, dict, bool],
                                  data: st.DataObject) -> None:
    """The same edges in any order give the very same arrays, built at once or added."""
    g, _, sym = case
    src, dst, w = g.edge_list()
    order = np.array(data.draw(st.permutations(range(src.size))), np.int64)
    h = HyperGraph.from_edges(g.num_nodes, src[order], dst[order], w[order], symmetric=False,
                              split=g.split, label=g.label)
    assert_same_graph_arrays(g, h)
    extra = data.draw(edge_lists(g.num_nodes, max_edges=8))
    s = np.array([e[0] for e in extra], np.int64)
    d = np.array([e[1] for e in extra], np.int64)
    ew = np.array([e[2] for e in extra], np.float32)
    shuffled = np.array(data.draw(st.permutations(range(s.size))), np.int64)
    g.add_edges(s, d, ew, symmetric=sym)
    h.add_edges(s[shuffled], d[shuffled], ew[shuffled], symmetric=sym)
    assert_same_graph_arrays(g, h)


def assert_same_graph_arrays(a: HyperGraph, b: HyperGraph) -> None:
    for name in ("indptr", "indices", "weights", "split", "label", "store_row"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# --------------------------------------------------------------------------- misc
def test_views_and_validation() -> None:
    g = HyperGraph.from_edges(3, [0, 1], [1, 2], [0.5, 2.0], split=np.array([0, 1, 2]),
                              label=np.array([7, 8, 9]), hyperedges=[[0, 2]])
    node = g.node(1)
    assert node.split == "val" and node.label == 8 and node.degree == 2
    assert sorted(node.neighbors().tolist()) == [0, 2]
    assert [(e.dst, e.weight) for e in g.edges_of(1)] == [(0, 0.5), (2, 2.0)]
    assert g.hyperedge(0).members.tolist() == [0, 2]
    with pytest.raises(DataError):
        g.node(3)
    with pytest.raises(DataError):
        g.hyperedge(1)
    with pytest.raises(DataError, match="endpoints"):
        HyperGraph.from_edges(2, [0], [2])
    with pytest.raises(DataError, match="non-negative"):
        HyperGraph.from_edges(2, [0], [1], [-1.0])
    g.split = np.array([0, 1, 3], np.int8)
    with pytest.raises(DataError, match="split codes"):
        g.validate()


def test_random_nodes_respect_split(rng: np.random.Generator) -> None:
    g = HyperGraph.from_edges(6, [], [], split=np.array([0, 0, 1, 1, 2, 2]))
    assert set(g.random_nodes(200, rng, split="val").tolist()) == {2, 3}
    assert sorted(g.random_nodes(2, rng, split="test", replace=False).tolist()) == [4, 5]
    empty = HyperGraph.from_edges(2, [], [])
    with pytest.raises(DataError, match="No nodes"):
        empty.random_nodes(1, rng, split="val")
