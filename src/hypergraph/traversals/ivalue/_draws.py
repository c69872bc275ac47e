"""Draws of IValue: strata (classes, near-duplicate cells), class quotas, the exploration
floor, value draws (rejection against a bound of the logits, or a cumulative table) and the
shuffled passes of the sweep. Every function draws from the generator it is given, only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hypergraph.traversals.ivalue._engines import ValueEngine

__all__ = ["Strata", "fill", "floor_draw", "make_strata", "quotas", "shuffled_pass",
           "stable_order", "table_draw", "take_from_pass", "value_draw"]


@dataclass
class Strata:
    """Training positions grouped into strata (classes, or one stratum of all nodes) for the
    value draws. ``order`` lists the positions stratum by stratum, stratum ``c`` spanning
    ``order[start[c]:start[c + 1]]``, and within a stratum cell by cell: a cell is one
    near-duplicate group's members in the stratum (one node without groups), cell ``j``
    spanning ``order[cells[j]:cells[j + 1]]`` and stratum ``c`` holding cells
    ``ccount[c]`` cells from ``cfirst[c]``. ``share`` is each stratum's mass under the
    exploration floor; ``ratio`` (with groups) each position's cell size over its group size;
    ``acc`` the running acceptance rate of value proposals per stratum; ``table`` the
    cumulative table of ``exp(logit)`` when draws use one (rebuilt lazily after a refresh);
    ``quota_plan`` what :func:`quotas` derives from the slot counts alone, by slot counts."""

    order: np.ndarray
    start: np.ndarray
    share: np.ndarray
    acc: np.ndarray
    cells: np.ndarray | None = None
    cfirst: np.ndarray | None = None
    ccount: np.ndarray | None = None
    ratio: np.ndarray | None = None
    table: np.ndarray | None = field(default=None)
    quota_plan: dict[bytes, tuple[np.ndarray, ...]] = field(default_factory=dict, repr=False)


def cum_within(w: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``c + (cumulative sum of w within stratum c) / (its total)`` for weights ``w`` laid out
    stratum by stratum (``start``): one increasing array, so that one ``searchsorted`` for
    ``c + u`` draws from stratum ``c`` in proportion to ``w``."""
    counts = np.diff(start)
    sid = np.repeat(np.arange(counts.size), counts)
    c = np.cumsum(w)
    before = np.concatenate([[0.0], c])[start[:-1]]
    total = np.concatenate([[0.0], c])[start[1:]] - before
    total = np.where(total > 0, total, 1.0)
    out: np.ndarray = sid + (c - before[sid]) / total[sid]
    return out


def make_strata(sid: np.ndarray, mult: np.ndarray, group: np.ndarray | None) -> Strata:
    """:class:`Strata` of the training positions by stratum id ``sid``, given each position's
    near-duplicate group size ``mult`` and group id ``group`` (``None``: no groups)."""
    k = int(sid.max(initial=0)) + 1
    mass = np.bincount(sid, 1.0 / mult, minlength=k)
    start = np.concatenate([[0], np.cumsum(np.bincount(sid, minlength=k))])
    share = mass / max(mass.sum(), 1e-300)
    if group is None:
        return Strata(np.argsort(sid, kind="stable"), start, share, np.full(k, 0.1))
    order = np.lexsort((group, sid))
    s_sid, s_grp = sid[order], group[order]
    new = np.ones(order.size, bool)
    new[1:] = (s_sid[1:] != s_sid[:-1]) | (s_grp[1:] != s_grp[:-1])
    cells = np.concatenate([np.flatnonzero(new), [order.size]])
    ccount = np.bincount(s_sid[new], minlength=k)
    cfirst = np.concatenate([[0], np.cumsum(ccount)[:-1]])
    size = np.diff(cells)
    ratio = np.empty(order.size)
    ratio[order] = np.repeat(size, size) / mult[order]
    return Strata(order, start, share, np.full(k, 0.1), cells, cfirst, ccount, ratio)


def floor_draw(rng: np.random.Generator, st: Strata, cls: np.ndarray) -> np.ndarray:
    """One draw of the exploration floor within stratum ``cls[j]`` per entry: a uniform
    node, or with near-duplicate groups a uniform cell (group) of the stratum, then a
    uniform member of it. O(1) per draw."""
    if st.cells is None:
        lo = st.start[cls]
        out: np.ndarray = st.order[lo + (rng.random(cls.size) * (st.start[cls + 1] - lo))
                                   .astype(np.int64)]
        return out
    assert st.cfirst is not None and st.ccount is not None
    cell = st.cfirst[cls] + (rng.random(cls.size) * st.ccount[cls]).astype(np.int64)
    lo = st.cells[cell]
    out = st.order[lo + (rng.random(cls.size) * (st.cells[cell + 1] - lo)).astype(np.int64)]
    return out


def table_draw(rng: np.random.Generator, st: Strata, cls: np.ndarray,
               engine: ValueEngine) -> np.ndarray:
    """Exact value draws within strata ``cls`` from a cumulative table of the current logits
    (O(n) to build, once per refresh)."""
    if st.table is None:
        lg = engine.logits(st.order)
        counts = np.diff(st.start)
        full = counts > 0
        top = np.zeros(counts.size)
        top[full] = np.maximum.reduceat(lg, st.start[:-1][full])
        st.table = cum_within(np.exp(lg - np.repeat(top, counts)), st.start)
    idx = np.searchsorted(st.table, cls + rng.random(cls.size), side="right")
    out: np.ndarray = st.order[np.minimum(idx, st.start[cls + 1] - 1)]
    return out


def value_draw(rng: np.random.Generator, st: Strata, cls: np.ndarray,
               engine: ValueEngine) -> np.ndarray:
    """One draw per entry of ``cls`` from ``softmax(logits)`` restricted to stratum
    ``cls[j]``: rejection from floor proposals of the stratum against an upper bound of the
    raw logits (exact in distribution, O(1) expected work per draw; the proposals of all
    entries in one vectorised pass per round), or a table when acceptance collapses."""
    if not cls.size or engine.use_table():
        return table_draw(rng, st, cls, engine) if cls.size else np.empty(0, np.int64)
    k = st.share.size
    demand = np.bincount(cls, minlength=k)
    # per-stratum counts as Python numbers (k is small): the same IEEE arithmetic as NumPy's
    short = demand.tolist()
    acc = st.acc.tolist()
    strata = range(k)
    bound = engine.raw_bound()
    xs: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    for _ in range(32):
        m = [min(math.ceil(max(d, 0) * (1.25 / a) + (2.0 / a if d > 0 else 0.0)), 1 << 16)
             for d, a in zip(short, acc, strict=True)]
        pc = np.repeat(np.arange(k), m)
        x = floor_draw(rng, st, pc)
        lg = engine.logits(x, groups=False)
        lg -= bound
        np.exp(lg, out=lg)
        if st.ratio is not None:  # floor proposals of a cell: 1 / its size, not 1 / m
            lg *= st.ratio[x]
        ok = rng.random(x.size) < lg
        pc = pc[ok]
        got = np.bincount(pc, minlength=k).tolist()
        for j in strata:
            if m[j] > 0:
                acc[j] = min(max(0.8 * acc[j] + 0.2 * got[j] / m[j], 1e-4), 1.0)
        xs.append(x[ok])
        cs.append(pc)
        short = [d - g for d, g in zip(short, got, strict=True)]
        if max(short) <= 0:
            break
    st.acc[:] = acc
    x, c = (xs[0], cs[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(cs))
    if len(xs) > 1:  # stratum by stratum, each in the order drawn
        o = stable_order(c, k)[0]
        x, c = x[o], c[o]
    # the first demand[c] accepted draws of every stratum (they are i.i.d.)
    rank = np.arange(c.size) - np.searchsorted(c, np.arange(k))[c]
    keep = rank < demand[c]
    x = x[keep]
    if max(short) > 0:  # a stratum the values almost never reach: table draws for the rest
        missing = np.repeat(np.arange(k), np.maximum(short, 0))
        x = np.concatenate([x, table_draw(rng, st, missing, engine)])
        x = x[np.argsort(np.concatenate([c[keep], missing]), kind="stable")]
    out = np.empty(cls.size, np.int64)
    out[stable_order(cls, k)[0]] = x
    return out


def fill(rng: np.random.Generator, st: Strata, cls: np.ndarray, explore: float,
         engine: ValueEngine) -> np.ndarray:
    """One draw per slot, slot ``j`` from stratum ``cls[j]``:
    ``(1 - explore) softmax(logits) + explore * floor`` restricted to the stratum."""
    floor = rng.random(cls.size) < explore
    if not floor.any():
        return value_draw(rng, st, cls, engine)
    out = np.empty(cls.size, np.int64)
    out[floor] = floor_draw(rng, st, cls[floor])
    out[~floor] = value_draw(rng, st, cls[~floor], engine)
    return out


def quotas(rng: np.random.Generator, st: Strata, v: np.ndarray) -> np.ndarray:
    """Stratum of every value slot of batches of ``v[b]`` slots, batch by batch: a stratum
    gets ``floor(v[b] * share)`` slots of batch ``b``, and the remaining slots go to strata
    drawn without replacement in proportion to the fractional parts (Gumbel top-k). What
    depends on ``v`` alone is computed once per ``v`` (``st.quota_plan``)."""
    share = st.share
    if share.size == 1:
        return np.zeros(int(v.sum()), np.int64)
    known = st.quota_plan.get(v.tobytes())
    if known is None:
        want = np.multiply.outer(v, share)
        base = want.astype(np.int64)  # floor (non-negative)
        rest = v - base.sum(axis=1)
        hit = np.arange(int(rest.max())) < rest[:, None]
        with np.errstate(divide="ignore"):
            frac = np.log(want - base)
        strata = np.tile(np.arange(share.size), v.size)
        known = st.quota_plan[v.tobytes()] = (base, frac, hit, np.nonzero(hit)[0], strata)
    base, frac, hit, rows, strata = known
    top = hit.shape[1]
    if top:
        key = frac - np.log(-np.log(rng.random(frac.shape)))
        pick = np.argsort(key, axis=1)[:, ::-1][:, :top]
        base = base.copy()
        base[rows, pick[hit]] += 1
    out: np.ndarray = np.repeat(strata, base.ravel())
    return out


_COUNT = np.arange(1024)
_COUNT.flags.writeable = False


def _counting(size: int) -> np.ndarray:
    """``np.arange(size)``, a read-only view of a cached range while it is long enough."""
    global _COUNT
    if size > _COUNT.size:
        grown = np.arange(max(size, 2 * _COUNT.size))
        grown.flags.writeable = False
        _COUNT = grown
    return _COUNT[:size]


def stable_order(a: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, a[order])`` with ``order = np.argsort(a, kind="stable")``, for integers ``a``
    with ``|a| < bound``: one sort of ``a * 2^b + position`` (distinct keys) where they fit in
    64 bits, which is faster than a stable argsort."""
    shift = max(a.size - 1, 1).bit_length()
    if max(bound, 1).bit_length() + shift > 61:
        order = np.argsort(a, kind="stable")
        return order, a[order]
    key = np.left_shift(a, shift, dtype=np.int64)
    key |= _counting(a.size)
    key.sort()
    order = key & ((1 << shift) - 1)
    key >>= shift
    return order, key


def shuffled_pass(rng: np.random.Generator, n: int, group: np.ndarray | None) -> np.ndarray:
    """A shuffled pass: every training node, or with near-duplicate groups one random
    member of each group (so a group of ``m`` copies is swept as often as a unique node)."""
    if group is None:
        return rng.permutation(n)
    key = rng.random(n)
    order = np.lexsort((key, group))
    first = np.ones(order.size, bool)
    first[1:] = group[order[1:]] != group[order[:-1]]
    return rng.permutation(order[first])


def take_from_pass(rng: np.random.Generator, perm: np.ndarray, cursor: int, k: int, n: int,
                   group: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The next ``k`` distinct nodes of the shuffled pass ``perm`` from ``cursor`` (a new
    :func:`shuffled_pass` at its end); returns them with the pass and cursor that follow."""
    out = perm[cursor:cursor + k]
    cursor += out.size
    if out.size < k:
        perm = shuffled_pass(rng, n, group)
        rest = perm[~np.isin(perm, out)][:k - out.size]
        # the new pass starts with the nodes not just taken; those taken come back later
        perm = np.concatenate([rest, perm[~np.isin(perm, rest)]])
        cursor = rest.size
        out = np.concatenate([out, rest])
    return out, perm, cursor
