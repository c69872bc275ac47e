"""Replay a search method against a table of recorded results (the table is the oracle).

A table has one column per slot and a score column (optionally a truth column). A combination
is one or more rows: when rows repeat a combination, ACE re-scoring it reads its rows in table
order (the first time the first row, and so on, cycling), and every other method (and ACE's
first visit) gets the first row. Rows are what a run visits: ``rows`` of the result are table
row indices in evaluation order, one per evaluation, and only combinations present in the table
are ever evaluated.

Optuna's samplers cannot be told which combinations exist. In replay, a trial whose combination
is not in the table fails (it costs no evaluation), a trial proposing a combination already
evaluated is completed with the known score (no evaluation either), and after 5 such trials in
a row the next evaluation is a uniformly random untried row (counted), so a stuck sampler ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hypergraph.ace._engine import ACE
from hypergraph.ace._space import Space
from hypergraph.exceptions import ConfigError, DataError, InvalidParameterError

__all__ = ["METHODS", "Table", "regret_curve", "replay", "run_ace"]

#: Methods :func:`replay` knows.
METHODS = ("ace", "random", "tpe", "gp")
_MAX_FREE_TRIALS = 5


class Table:
    """Recorded results: slot values, scores and optional truths per row.

    Args:
        slots: Slot names (column names).
        values: Per row, the slot values (strings) in slot order.
        score: Per row, the score a search sees.
        truth: Per row, the value the search is judged by (default: the score).
        maximize: Larger is better.
    """

    def __init__(self, slots: Sequence[str], values: Sequence[Sequence[str]],
                 score: Sequence[float] | np.ndarray,
                 truth: Sequence[float] | np.ndarray | None = None,
                 maximize: bool = True) -> None:
        if len(values) == 0:
            raise DataError("The table has no rows.")
        self.slots = list(slots)
        self.values = [tuple(str(v) for v in row) for row in values]
        self.score = np.asarray(score, dtype=float)
        self.truth = self.score.copy() if truth is None else np.asarray(truth, dtype=float)
        for name, col in (("score", self.score), ("truth", self.truth)):
            bad = np.flatnonzero(~np.isfinite(col))
            if len(bad):
                raise DataError(f"The table's {name} column has {len(bad)} missing or non-finite "
                                f"values (first at row {int(bad[0])}); drop those rows first.")
        self.maximize = maximize
        self.space = Space.from_combinations(self.slots, self.values)
        self.codes = np.array([self.space.encode(v) for v in self.values], dtype=np.int64)
        self.rows_of: dict[tuple[int, ...], list[int]] = {}
        for i, code in enumerate(self.codes):
            self.rows_of.setdefault(tuple(int(c) for c in code), []).append(i)

    @classmethod
    def from_csv(cls, path: str, slots: Sequence[str], score: str, truth: str | None = None,
                 maximize: bool = True) -> Table:
        """Read a CSV table (``pandas``), checking that the named columns exist.

        Raises:
            DataError: unreadable file, missing column, empty table or non-finite values.
        """
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as err:
            raise DataError(f"Cannot read the table '{path}': {err}.") from None
        needed = [*slots, score, *([truth] if truth else [])]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataError(f"The table '{path}' has no column {', '.join(map(repr, missing))}. "
                            f"Its columns: {', '.join(df.columns)}.")
        if len(set(slots)) != len(slots):
            raise DataError(f"--slots repeats a column: {', '.join(slots)}.")

        def numbers(col: str) -> np.ndarray:
            out = pd.to_numeric(df[col].replace("", "nan"), errors="coerce").to_numpy(float)
            return out

        return cls(slots, df[list(slots)].to_numpy().tolist(), numbers(score),
                   numbers(truth) if truth else None, maximize=maximize)

    def __len__(self) -> int:
        return len(self.values)

    def signed(self, values: np.ndarray) -> np.ndarray:
        """Values turned so that larger is better."""
        return values if self.maximize else -values


def replay(table: Table, method: str, budget: int, seed: int,
           ace_options: dict[str, Any] | None = None) -> list[int]:
    """Run ``method`` for ``budget`` evaluations against ``table``; the visited row indices.

    Args:
        table: The oracle.
        method: One of :data:`METHODS`.
        budget: Evaluations (capped at the number of distinct combinations, except ACE with
            ``repeats`` in ``ace_options``, which may re-score).
        seed: Seed of the method.
        ace_options: Keyword arguments of :class:`ACE` (method ``ace`` only).

    Raises:
        ConfigError: an unknown method.
        InvalidParameterError: ``budget < 1``.
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown replay method '{method}'. Valid choices: "
                          f"{', '.join(METHODS)}.")
    if budget < 1:
        raise InvalidParameterError(f"--budget must be >= 1. Got {budget} instead.")
    options = dict(ace_options or {})
    distinct = len(table.rows_of)
    if not options.get("repeats"):
        budget = min(budget, distinct)
    if method == "random":
        rng = np.random.default_rng(seed)
        keys = list(table.rows_of)
        order = rng.permutation(len(keys))[:budget]
        return [table.rows_of[keys[i]][0] for i in order]
    if method == "ace":
        return run_ace(table, budget, seed, options)[0]
    return _replay_optuna(table, method, budget, seed)


def run_ace(table: Table, budget: int, seed: int,
            options: dict[str, Any] | None = None) -> tuple[list[int], ACE]:
    """ACE against ``table`` for ``budget`` evaluations: visited rows and the engine at the end."""
    ace = ACE(table.space, seed=seed, maximize=table.maximize, **(options or {}))
    visits: dict[tuple[int, ...], int] = {}
    rows: list[int] = []
    while len(rows) < budget:
        combo = ace.ask(1)
        if not combo:
            break
        key = tuple(int(c) for c in table.space.encode(combo[0]))
        options_rows = table.rows_of[key]
        row = options_rows[visits.get(key, 0) % len(options_rows)]
        visits[key] = visits.get(key, 0) + 1
        rows.append(row)
        ace.tell(combo[0], float(table.score[row]))
    return rows, ace


def _replay_optuna(table: Table, method: str, budget: int, seed: int) -> list[int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler
    if method == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    else:
        sampler = optuna.samplers.GPSampler(seed=seed, deterministic_objective=False)
    direction = (optuna.study.StudyDirection.MAXIMIZE if table.maximize
                 else optuna.study.StudyDirection.MINIMIZE)
    study = optuna.create_study(sampler=sampler, direction=direction)
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        s: optuna.distributions.CategoricalDistribution(table.space.slots[s])
        for s in table.slots}
    rng = np.random.default_rng(seed + 7919)
    rows: list[int] = []
    done: set[tuple[int, ...]] = set()
    free = 0
    while len(rows) < budget and len(done) < len(table.rows_of):
        if free >= _MAX_FREE_TRIALS:
            left = [k for k in table.rows_of if k not in done]
            key = left[int(rng.integers(len(left)))]
            row = table.rows_of[key][0]
            params = dict(zip(table.slots, table.values[row], strict=True))
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions=dists, value=float(table.score[row])))
            rows.append(row)
            done.add(key)
            free = 0
            continue
        trial = study.ask(dists)
        key = tuple(int(c) for c in table.space.encode(
            [trial.params[s] for s in table.slots]))
        if key not in table.rows_of:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            free += 1
            continue
        row = table.rows_of[key][0]
        study.tell(trial, float(table.score[row]))
        if key in done:
            free += 1
            continue
        rows.append(row)
        done.add(key)
        free = 0
    return rows


def regret_curve(table: Table, rows: Sequence[int]) -> np.ndarray:
    """Per evaluation: best truth in the table minus the truth of the best-scored row so far.

    Ties in score are broken by the first visited. Non-negative; 0 = the best truth found.
    """
    score = table.signed(table.score)
    truth = table.signed(table.truth)
    best_truth = float(truth.max())
    out = np.empty(len(rows))
    best_row = -1
    best_score = -math.inf
    for i, r in enumerate(rows):
        if score[r] > best_score:
            best_score, best_row = float(score[r]), r
        out[i] = best_truth - truth[best_row]
    return out
